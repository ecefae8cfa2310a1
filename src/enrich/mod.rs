//! Enrichment: what the collector adds to an event beyond what the request
//! says. Shard-local state only.
//!
//! Key components:
//! - [`useragent::UserAgentCache`]: parsed user agents, bounded, one per shard.
//! - [`forwarded::forwarded_for`]: the client address behind a proxy.
//! - [`geo::GeoDatabase`]: ip2geo lookups, reloaded when the file changes.
//! - [`dedup::DuplicateMemory`]: recently seen events, one table for all shards.
//! - [`anonymize`]: client addresses cut to their network, for privacy.

pub mod anonymize;
pub mod dedup;
pub mod forwarded;
pub mod geo;
pub mod useragent;
