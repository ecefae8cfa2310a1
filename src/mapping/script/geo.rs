//! The fields of `ip2geo()` and how each is read from a lookup (the methods
//! that name them are in `methods.rs`).

use super::val::Val;
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
