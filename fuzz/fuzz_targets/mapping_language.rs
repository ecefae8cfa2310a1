//! The mapping language: lexer, parser and type checker against the
//! example's schema. Errors are expected; panics and hangs are not.
#![no_main]

use std::sync::{Arc, OnceLock};

use divolte::avro::RecordLayout;
use divolte::mapping::script::{Environment, Script};
use libfuzzer_sys::fuzz_target;

fn layout() -> &'static Arc<RecordLayout> {
    static L: OnceLock<Arc<RecordLayout>> = OnceLock::new();
    L.get_or_init(|| Arc::new(RecordLayout::parse(include_str!("../../examples/pagetype/schema.avsc")).unwrap()))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Script::compile(text, layout(), Environment { geo: true });
    }
});
