//! The configuration loader: TOML, the Divolte keys, environment
//! substitution and validation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = divolte::config::from_toml_with_env(text, |name| (name == "DIVOLTE_PORT").then(|| "8290".to_owned()));
    }
});
