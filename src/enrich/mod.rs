//! Enrichment: what the collector adds to an event beyond what the request
//! says. Shard-local state only.
//!
//! Key components:
//! - [`useragent::UserAgentCache`]: parsed user agents, bounded, one per shard.
//! - [`forwarded::forwarded_for`]: the client address behind a proxy.

pub mod forwarded;
pub mod useragent;
