//! A thread-per-core clickstream collector, wire- and output-compatible
//! with Divolte Collector.
//!
//! # The model
//!
//! One shard (a glommio executor) runs pinned on each configured CPU. Each
//! shard binds the listen port with `SO_REUSEPORT`, so the kernel spreads
//! connections over shards, and a request never leaves the shard that read
//! it until its record is encoded:
//!
//! ```text
//! socket → http → event → enrich → mapping → avro → batch ─┬→ file flush threads
//!         (one shard per core, no locks)                   └→ Kafka flush threads
//!                          (channels bounded by an atomic record count per lane)
//! ```
//!
//! Batches cross to dedicated flush threads through crossbeam channels,
//! bounded in records by an atomic count per lane; that is the only place
//! data crosses threads. The
//! duplicate memory (one table of atomics) and the geo database (behind an
//! `ArcSwap`) are shared read-mostly structures without locks.
//! Nothing on the request path takes a lock or blocks. A response that
//! acknowledges an event is written after the event's batch was handed to
//! its sink ([`shard::commit`]). One shared atomic ([`lifecycle`]) drives
//! `/ping` and the drain on SIGTERM.
#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod assets;
pub mod avro;
pub mod batch;
pub mod config;
pub mod enrich;
pub mod event;
pub mod http;
pub mod lifecycle;
pub mod mapping;
pub mod metrics;
pub mod plan;
pub mod shard;
pub mod sink;
pub mod startup;
pub mod watchdog;
