//! The methods of each family of values (URI, user agent, bytes, geo),
//! one table per family: the compiler looks a method up in its table, and
//! a "no such method" message lists the table.

use super::geo::GeoField;
use super::program::{BytesFormat, Ty, UaField, UriPart};

/// What a URI method gives.
#[derive(Debug, Clone, Copy)]
pub enum UriMethod {
    /// A part, as text.
    Part(UriPart),
    /// The port, an int.
    Port,
    /// The query, parsed.
    Query,
}

/// Methods of a URI (`parse location() to uri`).
pub const URI: &[(&str, UriMethod)] = &[
    ("path", UriMethod::Part(UriPart::Path)),
    ("rawPath", UriMethod::Part(UriPart::RawPath)),
    ("scheme", UriMethod::Part(UriPart::Scheme)),
    ("host", UriMethod::Part(UriPart::Host)),
    ("port", UriMethod::Port),
    ("decodedQueryString", UriMethod::Part(UriPart::Query)),
    ("rawQueryString", UriMethod::Part(UriPart::RawQuery)),
    ("decodedFragment", UriMethod::Part(UriPart::Fragment)),
    ("rawFragment", UriMethod::Part(UriPart::RawFragment)),
    ("query", UriMethod::Query),
];

/// Methods of `userAgent()`.
pub const USER_AGENT: &[(&str, UaField)] = &[
    ("name", UaField::Name),
    ("family", UaField::Family),
    ("vendor", UaField::Vendor),
    ("type", UaField::Type),
    ("version", UaField::Version),
    ("deviceCategory", UaField::DeviceCategory),
    ("osFamily", UaField::OsFamily),
    ("osVersion", UaField::OsVersion),
    ("osVendor", UaField::OsVendor),
    ("bot", UaField::Bot),
];

/// Methods of bytes (a digest's result) that write them as text.
pub const BYTES: &[(&str, BytesFormat)] =
    &[("toHexLower", BytesFormat::HexLower), ("toHexUpper", BytesFormat::HexUpper), ("toBase64", BytesFormat::Base64)];

/// Methods of `ip2geo()`, with the type each gives.
pub const GEO: &[(&str, (GeoField, Ty))] = &[
    ("cityId", (GeoField::CityId, Ty::Int)),
    ("cityName", (GeoField::CityName, Ty::Str)),
    ("continentCode", (GeoField::ContinentCode, Ty::Str)),
    ("continentId", (GeoField::ContinentId, Ty::Int)),
    ("continentName", (GeoField::ContinentName, Ty::Str)),
    ("countryCode", (GeoField::CountryCode, Ty::Str)),
    ("countryId", (GeoField::CountryId, Ty::Int)),
    ("countryName", (GeoField::CountryName, Ty::Str)),
    ("latitude", (GeoField::Latitude, Ty::Double)),
    ("longitude", (GeoField::Longitude, Ty::Double)),
    ("metroCode", (GeoField::MetroCode, Ty::Int)),
    ("timeZone", (GeoField::TimeZone, Ty::Str)),
    ("mostSpecificSubdivisionCode", (GeoField::SubdivisionCode, Ty::Str)),
    ("mostSpecificSubdivisionId", (GeoField::SubdivisionId, Ty::Int)),
    ("mostSpecificSubdivisionName", (GeoField::SubdivisionName, Ty::Str)),
    ("postalCode", (GeoField::PostalCode, Ty::Str)),
    ("subdivisionCodes", (GeoField::SubdivisionCodes, Ty::StrList)),
    ("subdivisionIds", (GeoField::SubdivisionIds, Ty::IntList)),
    ("subdivisionNames", (GeoField::SubdivisionNames, Ty::StrList)),
    ("registeredCountryCode", (GeoField::RegisteredCountryCode, Ty::Str)),
    ("registeredCountryId", (GeoField::RegisteredCountryId, Ty::Int)),
    ("registeredCountryName", (GeoField::RegisteredCountryName, Ty::Str)),
    ("representedCountryCode", (GeoField::RepresentedCountryCode, Ty::Str)),
    ("representedCountryId", (GeoField::RepresentedCountryId, Ty::Int)),
    ("representedCountryName", (GeoField::RepresentedCountryName, Ty::Str)),
    ("autonomousSystemNumber", (GeoField::AsNumber, Ty::Int)),
    ("autonomousSystemOrganization", (GeoField::AsOrganization, Ty::Str)),
    ("domain", (GeoField::Domain, Ty::Str)),
    ("isp", (GeoField::Isp, Ty::Str)),
    ("organisation", (GeoField::Organisation, Ty::Str)),
    ("anonymousProxy", (GeoField::AnonymousProxy, Ty::Bool)),
    ("satelliteProvider", (GeoField::SatelliteProvider, Ty::Bool)),
];

/// What `name` means in `table`.
pub fn find<T: Copy>(table: &[(&str, T)], name: &str) -> Option<T> {
    table.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The method names of `table`, for messages.
pub fn names<T>(table: &[(&str, T)]) -> String {
    table.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_table_names_a_method_twice() {
        fn unique<T>(table: &[(&str, T)]) -> bool {
            let mut names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            names.sort_unstable();
            names.windows(2).all(|w| w[0] != w[1])
        }
        assert!(unique(URI) && unique(USER_AGENT) && unique(BYTES) && unique(GEO));
        assert_eq!(GEO.len(), 32);
    }
}
