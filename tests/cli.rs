//! The command line: `check-config`, startup errors, embedded defaults.

mod common;

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_divolte-collector"))
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/divolte-collector.toml");
    let out = bin().args(["check-config", example]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
}

#[test]
fn check_config_lists_every_error_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[global.server]\nport = 70000\nfoo = 1\n[mappings.m]\nsinks = [\"nowhere\"]\n").unwrap();
    let out = bin().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "divolte.global.server.port",
        "divolte.global.server.foo: unknown key",
        "divolte.mappings.m.sources: required",
        "divolte.mappings.m.sinks: unknown sink \"nowhere\"",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

#[test]
fn the_collector_refuses_to_start_on_an_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[global.server]\nshutdown_delay = \"soon\"\n").unwrap();
    let out = bin().arg("--config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("divolte.global.server.shutdown_delay"));
}

#[test]
fn embedded_defaults_listen_on_the_original_port_when_free() {
    // DIVOLTE_PORT keeps the test off 8290 in case something else holds it;
    // the override path is the one the original's reference.conf offers.
    let port = common::free_port();
    let mut child = bin().env("DIVOLTE_PORT", port.to_string()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut ok = false;
    for _ in 0..100 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
            let mut r = String::new();
            s.read_to_string(&mut r).unwrap();
            ok = r.ends_with("pong");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(ok, "no pong; log:\n{log}");
    assert!(status.success(), "{log}");
    assert!(log.contains("embedded defaults"), "{log}");
    assert!(log.contains("publish_dir=/tmp"), "startup log names the output directory:\n{log}");
}

#[test]
fn a_second_collector_on_the_same_port_refuses_to_start() {
    let first = common::Collector::start(common::Options::default());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("second.toml");
    std::fs::write(&file, format!("[global.server]\nport = {}\n", first.port)).unwrap();
    let out = bin().arg("--config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on 127.0.0.1:"), "{err}");
    assert!(first.get("/ping", "").ends_with("pong"), "the first one keeps serving");
}
