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
