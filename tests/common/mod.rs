//! What the integration tests share, by job: the collector process
//! ([`process`]), talking to it ([`client`]), reading its Avro output
//! ([`avro`]), a Kafka broker ([`kafka`]), object-store emulators
//! ([`stores`]) and nginx in front ([`front`]).
#![allow(dead_code)]

pub mod avro;
pub mod client;
pub mod front;
pub mod kafka;
pub mod process;
pub mod stores;

// Each test binary uses a part of the harness; the re-exports keep
// `common::Collector` and friends one path for all of them.
#[allow(unused_imports)]
pub use avro::*;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use front::*;
#[allow(unused_imports)]
pub use kafka::*;
#[allow(unused_imports)]
pub use process::*;
