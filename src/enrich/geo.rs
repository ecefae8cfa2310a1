//! ip2geo: a MaxMind GeoIP2 / GeoLite2 database, loaded at startup and
//! swapped for a new copy when the file changes, without pausing shards.
//!
//! Lookups read the current database through an `ArcSwap` (no lock); a
//! watcher thread checks the file's modification time and, when it
//! changed, loads the new file (`.mmdb`, or `.mmdb.gz` decompressed in
//! memory) and swaps it in. A file that fails to load keeps the old copy.
//! Every field of the original's `ip2geo()` is decoded; databases that lack
//! some (a Country database has no cities) leave those absent instead of
//! failing, as the original did (its issue #156).

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use maxminddb::Reader;
use serde::Deserialize;

/// How often the watcher looks at the database file.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(10);

/// Only the English name is read; serde skips the other languages without
/// building a map of them (that map was most of a lookup's cost).
#[derive(Debug, Default, Deserialize)]
struct English<'a> {
    #[serde(default, borrow)]
    en: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
struct Named<'a> {
    #[serde(default)]
    geoname_id: Option<u32>,
    #[serde(default, borrow)]
    iso_code: Option<&'a str>,
    #[serde(default, borrow)]
    code: Option<&'a str>,
    #[serde(default, borrow)]
    names: English<'a>,
}

impl Named<'_> {
    fn english(&self) -> Option<String> {
        self.names.en.map(str::to_owned)
    }
}

#[derive(Debug, Default, Deserialize)]
struct Location<'a> {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default, deserialize_with = "any_width")]
    metro_code: Option<u32>,
    #[serde(default, borrow)]
    time_zone: Option<&'a str>,
}

/// An unsigned integer of whatever width the database stored: MaxMind's
/// City files hold `metro_code` as 16 bits, other writers use 32, and the
/// reader refuses a width other than the one asked for, which made the
/// whole record fail for every US address.
fn any_width<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    struct AnyWidth;
    impl serde::de::Visitor<'_> for AnyWidth {
        type Value = Option<u32>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an unsigned integer")
        }

        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(u32::try_from(n).ok())
        }
    }
    deserializer.deserialize_any(AnyWidth)
}

#[derive(Debug, Default, Deserialize)]
struct Postal<'a> {
    #[serde(default, borrow)]
    code: Option<&'a str>,
}

#[derive(Debug, Default, Deserialize)]
struct Traits<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(default, borrow)]
    autonomous_system_organization: Option<&'a str>,
    #[serde(default, borrow)]
    domain: Option<&'a str>,
    #[serde(default, borrow)]
    isp: Option<&'a str>,
    #[serde(default, borrow)]
    organization: Option<&'a str>,
    #[serde(default)]
    is_anonymous_proxy: Option<bool>,
    #[serde(default)]
    is_satellite_provider: Option<bool>,
}

/// A database record, any of City, Country, ISP or ASN shape.
#[derive(Debug, Default, Deserialize)]
struct Record<'a> {
    #[serde(default, borrow)]
    city: Named<'a>,
    #[serde(default, borrow)]
    continent: Named<'a>,
    #[serde(default, borrow)]
    country: Named<'a>,
    #[serde(default, borrow)]
    registered_country: Named<'a>,
    #[serde(default, borrow)]
    represented_country: Named<'a>,
    #[serde(default, borrow)]
    subdivisions: Vec<Named<'a>>,
    #[serde(default, borrow)]
    location: Location<'a>,
    #[serde(default, borrow)]
    postal: Postal<'a>,
    #[serde(default, borrow)]
    traits: Traits<'a>,
}

/// Everything `ip2geo()` offers, for one address. Names are English.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Geo {
    /// `cityId()`
    pub city_id: Option<u32>,
    /// `cityName()`
    pub city_name: Option<String>,
    /// `continentCode()`
    pub continent_code: Option<String>,
    /// `continentId()`
    pub continent_id: Option<u32>,
    /// `continentName()`
    pub continent_name: Option<String>,
    /// `countryCode()`
    pub country_code: Option<String>,
    /// `countryId()`
    pub country_id: Option<u32>,
    /// `countryName()`
    pub country_name: Option<String>,
    /// `latitude()`
    pub latitude: Option<f64>,
    /// `longitude()`
    pub longitude: Option<f64>,
    /// `metroCode()`
    pub metro_code: Option<u32>,
    /// `timeZone()`
    pub time_zone: Option<String>,
    /// `mostSpecificSubdivisionCode()`
    pub most_specific_subdivision_code: Option<String>,
    /// `mostSpecificSubdivisionId()`
    pub most_specific_subdivision_id: Option<u32>,
    /// `mostSpecificSubdivisionName()`
    pub most_specific_subdivision_name: Option<String>,
    /// `postalCode()`
    pub postal_code: Option<String>,
    /// `subdivisionCodes()`
    pub subdivision_codes: Vec<String>,
    /// `subdivisionIds()`
    pub subdivision_ids: Vec<u32>,
    /// `subdivisionNames()`
    pub subdivision_names: Vec<String>,
    /// `registeredCountryCode()`
    pub registered_country_code: Option<String>,
    /// `registeredCountryId()`
    pub registered_country_id: Option<u32>,
    /// `registeredCountryName()`
    pub registered_country_name: Option<String>,
    /// `representedCountryCode()`
    pub represented_country_code: Option<String>,
    /// `representedCountryId()`
    pub represented_country_id: Option<u32>,
    /// `representedCountryName()`
    pub represented_country_name: Option<String>,
    /// `autonomousSystemNumber()`
    pub autonomous_system_number: Option<u32>,
    /// `autonomousSystemOrganization()`
    pub autonomous_system_organization: Option<String>,
    /// `domain()`
    pub domain: Option<String>,
    /// `isp()`
    pub isp: Option<String>,
    /// `organisation()`
    pub organisation: Option<String>,
    /// `anonymousProxy()`
    pub anonymous_proxy: Option<bool>,
    /// `satelliteProvider()`
    pub satellite_provider: Option<bool>,
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

impl From<&Record<'_>> for Geo {
    fn from(r: &Record<'_>) -> Self {
        let last = r.subdivisions.last();
        Self {
            city_id: r.city.geoname_id,
            city_name: r.city.english(),
            continent_code: owned(r.continent.code),
            continent_id: r.continent.geoname_id,
            continent_name: r.continent.english(),
            country_code: owned(r.country.iso_code),
            country_id: r.country.geoname_id,
            country_name: r.country.english(),
            latitude: r.location.latitude,
            longitude: r.location.longitude,
            metro_code: r.location.metro_code,
            time_zone: owned(r.location.time_zone),
            most_specific_subdivision_code: last.and_then(|s| owned(s.iso_code)),
            most_specific_subdivision_id: last.and_then(|s| s.geoname_id),
            most_specific_subdivision_name: last.and_then(Named::english),
            postal_code: owned(r.postal.code),
            subdivision_codes: r.subdivisions.iter().filter_map(|s| owned(s.iso_code)).collect(),
            subdivision_ids: r.subdivisions.iter().filter_map(|s| s.geoname_id).collect(),
            subdivision_names: r.subdivisions.iter().filter_map(Named::english).collect(),
            registered_country_code: owned(r.registered_country.iso_code),
            registered_country_id: r.registered_country.geoname_id,
            registered_country_name: r.registered_country.english(),
            represented_country_code: owned(r.represented_country.iso_code),
            represented_country_id: r.represented_country.geoname_id,
            represented_country_name: r.represented_country.english(),
            autonomous_system_number: r.traits.autonomous_system_number,
            autonomous_system_organization: owned(r.traits.autonomous_system_organization),
            domain: owned(r.traits.domain),
            isp: owned(r.traits.isp),
            organisation: owned(r.traits.organization),
            anonymous_proxy: r.traits.is_anonymous_proxy,
            satellite_provider: r.traits.is_satellite_provider,
        }
    }
}

/// Reads a database file, decompressing `.gz`.
fn load(path: &Path) -> Result<Reader<Vec<u8>>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|e| format!("{}: {e}", path.display()))?;
        out
    } else {
        raw
    };
    Reader::from_source(bytes).map_err(|e| format!("{}: not a MaxMind database: {e}", path.display()))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The current database, shared by every shard.
pub struct GeoDatabase {
    path: PathBuf,
    reader: ArcSwap<Reader<Vec<u8>>>,
}

impl GeoDatabase {
    /// Loads the database at `path`.
    ///
    /// # Errors
    /// The file cannot be read or is not a MaxMind database.
    pub fn open(path: &Path) -> Result<Arc<Self>, String> {
        let reader = load(path)?;
        Ok(Arc::new(Self { path: path.to_owned(), reader: ArcSwap::from_pointee(reader) }))
    }

    /// The database's type, e.g. `GeoLite2-City`.
    pub fn database_type(&self) -> String {
        self.reader.load().metadata().database_type.clone()
    }

    /// What the database knows about `ip`; `None` when nothing.
    pub fn lookup(&self, ip: IpAddr) -> Option<Geo> {
        let reader = self.reader.load();
        // IPv4-mapped IPv6 (from a dual-stack listener) is looked up as IPv4.
        let found = reader.lookup(ip.to_canonical()).ok()?;
        let record: Record<'_> = found.decode().ok()??;
        Some(Geo::from(&record))
    }

    /// Starts a thread that reloads the file when its modification time
    /// changes, checking every `interval`.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn watch(self: &Arc<Self>, interval: Duration) -> std::io::Result<JoinHandle<()>> {
        let db = Arc::downgrade(self);
        let mut seen = modified(&self.path);
        std::thread::Builder::new().name("geo-reload".into()).spawn(move || loop {
            std::thread::sleep(interval);
            let Some(db) = db.upgrade() else { return };
            let now = modified(&db.path);
            if now == seen {
                continue;
            }
            match load(&db.path) {
                Ok(reader) => {
                    db.reader.store(Arc::new(reader));
                    seen = now;
                    tracing::info!(path = %db.path.display(), "Reloaded the geo database.");
                }
                Err(error) => {
                    tracing::warn!(%error, "Cannot reload the geo database; keeping the loaded one.");
                    seen = now;
                }
            }
        })
    }
}
