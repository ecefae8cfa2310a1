//! The fields of `ip2geo()`: which methods exist, their types, and how each
//! is read from a lookup.

use super::eval::Val;
use super::program::Ty;
use crate::enrich::geo::Geo;

/// One field of a geo lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoField {
    CityId,
    CityName,
    ContinentCode,
    ContinentId,
    ContinentName,
    CountryCode,
    CountryId,
    CountryName,
    Latitude,
    Longitude,
    MetroCode,
    TimeZone,
    SubdivisionCode,
    SubdivisionId,
    SubdivisionName,
    PostalCode,
    SubdivisionCodes,
    SubdivisionIds,
    SubdivisionNames,
    RegisteredCountryCode,
    RegisteredCountryId,
    RegisteredCountryName,
    RepresentedCountryCode,
    RepresentedCountryId,
    RepresentedCountryName,
    AsNumber,
    AsOrganization,
    Domain,
    Isp,
    Organisation,
    AnonymousProxy,
    SatelliteProvider,
}

impl GeoField {
    /// The field a method names, with its type.
    pub fn from_method(name: &str) -> Option<(Self, Ty)> {
        use GeoField as G;
        Some(match name {
            "cityId" => (G::CityId, Ty::Int),
            "cityName" => (G::CityName, Ty::Str),
            "continentCode" => (G::ContinentCode, Ty::Str),
            "continentId" => (G::ContinentId, Ty::Int),
            "continentName" => (G::ContinentName, Ty::Str),
            "countryCode" => (G::CountryCode, Ty::Str),
            "countryId" => (G::CountryId, Ty::Int),
            "countryName" => (G::CountryName, Ty::Str),
            "latitude" => (G::Latitude, Ty::Double),
            "longitude" => (G::Longitude, Ty::Double),
            "metroCode" => (G::MetroCode, Ty::Int),
            "timeZone" => (G::TimeZone, Ty::Str),
            "mostSpecificSubdivisionCode" => (G::SubdivisionCode, Ty::Str),
            "mostSpecificSubdivisionId" => (G::SubdivisionId, Ty::Int),
            "mostSpecificSubdivisionName" => (G::SubdivisionName, Ty::Str),
            "postalCode" => (G::PostalCode, Ty::Str),
            "subdivisionCodes" => (G::SubdivisionCodes, Ty::StrList),
            "subdivisionIds" => (G::SubdivisionIds, Ty::IntList),
            "subdivisionNames" => (G::SubdivisionNames, Ty::StrList),
            "registeredCountryCode" => (G::RegisteredCountryCode, Ty::Str),
            "registeredCountryId" => (G::RegisteredCountryId, Ty::Int),
            "registeredCountryName" => (G::RegisteredCountryName, Ty::Str),
            "representedCountryCode" => (G::RepresentedCountryCode, Ty::Str),
            "representedCountryId" => (G::RepresentedCountryId, Ty::Int),
            "representedCountryName" => (G::RepresentedCountryName, Ty::Str),
            "autonomousSystemNumber" => (G::AsNumber, Ty::Int),
            "autonomousSystemOrganization" => (G::AsOrganization, Ty::Str),
            "domain" => (G::Domain, Ty::Str),
            "isp" => (G::Isp, Ty::Str),
            "organisation" => (G::Organisation, Ty::Str),
            "anonymousProxy" => (G::AnonymousProxy, Ty::Bool),
            "satelliteProvider" => (G::SatelliteProvider, Ty::Bool),
            _ => return None,
        })
    }

    /// This field of `g`; absent where the database has no answer.
    pub fn read<'a>(self, g: &Geo) -> Option<Val<'a>> {
        use GeoField as G;
        let s = |v: &Option<String>| v.clone().map(|s| Val::Str(s.into()));
        let i = |v: Option<u32>| v.and_then(|n| i32::try_from(n).ok()).map(Val::Int);
        match self {
            G::CityId => i(g.city_id),
            G::CityName => s(&g.city_name),
            G::ContinentCode => s(&g.continent_code),
            G::ContinentId => i(g.continent_id),
            G::ContinentName => s(&g.continent_name),
            G::CountryCode => s(&g.country_code),
            G::CountryId => i(g.country_id),
            G::CountryName => s(&g.country_name),
            G::Latitude => g.latitude.map(Val::Double),
            G::Longitude => g.longitude.map(Val::Double),
            G::MetroCode => i(g.metro_code),
            G::TimeZone => s(&g.time_zone),
            G::SubdivisionCode => s(&g.most_specific_subdivision_code),
            G::SubdivisionId => i(g.most_specific_subdivision_id),
            G::SubdivisionName => s(&g.most_specific_subdivision_name),
            G::PostalCode => s(&g.postal_code),
            G::SubdivisionCodes => Some(Val::StrList(g.subdivision_codes.clone().into())),
            G::SubdivisionIds => {
                Some(Val::IntList(g.subdivision_ids.iter().filter_map(|n| i32::try_from(*n).ok()).collect()))
            }
            G::SubdivisionNames => Some(Val::StrList(g.subdivision_names.clone().into())),
            G::RegisteredCountryCode => s(&g.registered_country_code),
            G::RegisteredCountryId => i(g.registered_country_id),
            G::RegisteredCountryName => s(&g.registered_country_name),
            G::RepresentedCountryCode => s(&g.represented_country_code),
            G::RepresentedCountryId => i(g.represented_country_id),
            G::RepresentedCountryName => s(&g.represented_country_name),
            G::AsNumber => i(g.autonomous_system_number),
            G::AsOrganization => s(&g.autonomous_system_organization),
            G::Domain => s(&g.domain),
            G::Isp => s(&g.isp),
            G::Organisation => s(&g.organisation),
            G::AnonymousProxy => g.anonymous_proxy.map(Val::Bool),
            G::SatelliteProvider => g.satellite_provider.map(Val::Bool),
        }
    }
}
