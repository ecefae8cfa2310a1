//! Counters and their Prometheus text exposition.
//!
//! Every counter is named once, in [`Counter`]. Each shard owns a
//! [`ShardMetrics`] block of atomics that only it writes; a scrape sums the
//! blocks of all shards and sinks. Nothing is locked, and a counter update is
//! one uncontended atomic add on a cache line no other core writes.
//!
//! Key components:
//! - [`Counter`]: every shard counter with its metric name, labels and help.
//! - [`ShardMetrics`]: one shard's counters.
//! - [`SinkMetrics`]: one sink's counters, written by its flush threads.
//! - [`Registry`]: everything a scrape reads; [`Registry::render`].

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

macro_rules! counters {
    ($($variant:ident => ($name:literal, $labels:literal, $help:literal),)*) => {
        /// Every shard-side counter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Counter {
            $(
                #[doc = $help]
                $variant,
            )*
        }

        impl Counter {
            /// All counters, in exposition order.
            pub const ALL: &'static [Counter] = &[$(Counter::$variant,)*];

            /// Metric name, label set and help text.
            pub fn describe(self) -> (&'static str, &'static str, &'static str) {
                match self {
                    $(Counter::$variant => ($name, $labels, $help),)*
                }
            }
        }
    };
}

counters! {
    RequestsEvent => ("divolte_http_requests_total", "endpoint=\"browser_event\"", "Requests received, by endpoint."),
    RequestsJson => ("divolte_http_requests_total", "endpoint=\"json_event\"", "Requests received, by endpoint."),
    RequestsTag => ("divolte_http_requests_total", "endpoint=\"tag\"", "Requests received, by endpoint."),
    RequestsTestPage => ("divolte_http_requests_total", "endpoint=\"test_page\"", "Requests received, by endpoint."),
    RequestsPing => ("divolte_http_requests_total", "endpoint=\"ping\"", "Requests received, by endpoint."),
    RequestsReady => ("divolte_http_requests_total", "endpoint=\"ready\"", "Requests received, by endpoint."),
    RequestsMetrics => ("divolte_http_requests_total", "endpoint=\"metrics\"", "Requests received, by endpoint."),
    RequestsNotFound => ("divolte_http_requests_total", "endpoint=\"not_found\"", "Requests received, by endpoint."),
    RequestsMethodNotAllowed => ("divolte_http_requests_total", "endpoint=\"method_not_allowed\"", "Requests received, by endpoint."),
    RequestsBatch => ("divolte_http_requests_total", "endpoint=\"browser_batch\"", "Requests received, by endpoint."),
    RequestsPreflight => ("divolte_http_requests_total", "endpoint=\"preflight\"", "Requests received, by endpoint."),
    ErrorMalformed => ("divolte_http_errors_total", "status=\"400\"", "Requests refused by the HTTP layer, by status."),
    ErrorTimeout => ("divolte_http_errors_total", "status=\"408\"", "Requests refused by the HTTP layer, by status."),
    ErrorBodyTooLarge => ("divolte_http_errors_total", "status=\"413\"", "Requests refused by the HTTP layer, by status."),
    ErrorUriTooLong => ("divolte_http_errors_total", "status=\"414\"", "Requests refused by the HTTP layer, by status."),
    ErrorHeaderTooLarge => ("divolte_http_errors_total", "status=\"431\"", "Requests refused by the HTTP layer, by status."),
    ErrorUnsupportedEncoding => ("divolte_http_errors_total", "status=\"501\"", "Requests refused by the HTTP layer, by status."),
    ErrorUnsupportedMediaType => ("divolte_http_errors_total", "status=\"415\"", "Requests refused by the HTTP layer, by status."),
    ErrorDecodedTooLarge => ("divolte_http_errors_total", "status=\"413\",cause=\"decompressed\"", "Requests refused by the HTTP layer, by status."),
    ConnectionsAccepted => ("divolte_connections_accepted_total", "", "TCP connections accepted."),
    ConnectionsRefused => ("divolte_connections_refused_total", "", "Connections refused because the shard was at max_connections."),
    EventsReceived => ("divolte_events_received_total", "source=\"browser\"", "Events received, before validation."),
    EventsReceivedJson => ("divolte_events_received_total", "source=\"json\"", "Events received, before validation."),
    EventsNotModified => ("divolte_events_not_modified_total", "", "Pixel requests answered 304 for the sentinel ETag and not logged."),
    RejectedPartyId => ("divolte_events_rejected_total", "reason=\"invalid_party_id\"", "Events dropped because a required parameter was missing or invalid."),
    RejectedSessionId => ("divolte_events_rejected_total", "reason=\"invalid_session_id\"", "Events dropped because a required parameter was missing or invalid."),
    RejectedIncomplete => ("divolte_events_rejected_total", "reason=\"incomplete\"", "Events dropped because a required parameter was missing or invalid."),
    RejectedInvalidBody => ("divolte_events_rejected_total", "reason=\"invalid_body\"", "Events dropped because a required parameter was missing or invalid."),
    EventsDuplicate => ("divolte_events_duplicate_total", "", "Events the duplicate memory had seen before."),
    OptedOutGpc => ("divolte_events_opted_out_total", "signal=\"gpc\"", "Browser events not recorded because the browser asked not to be tracked."),
    OptedOutDnt => ("divolte_events_opted_out_total", "signal=\"dnt\"", "Browser events not recorded because the browser asked not to be tracked."),
    EventsCorrupt => ("divolte_events_corrupt_total", "", "Events whose checksum did not match."),
    DiscardedCorrupt => ("divolte_events_discarded_total", "reason=\"corrupt\"", "Events a mapping discarded on purpose."),
    DiscardedDuplicate => ("divolte_events_discarded_total", "reason=\"duplicate\"", "Events a mapping discarded on purpose."),
    DiscardedBot => ("divolte_events_discarded_total", "reason=\"bot\"", "Events a mapping discarded on purpose."),
    RecordsMapped => ("divolte_records_mapped_total", "", "Records produced by mappings."),
    RecordsMappingFailed => ("divolte_records_dropped_total", "cause=\"mapping_error\"", "Records lost before reaching a sink, by cause."),
    MappingJsonMismatches => ("divolte_mapping_json_mismatches_total", "", "JSON values a mapping could not convert to their field's type; the field kept its value."),
    RecordsQueueFull => ("divolte_records_dropped_total", "cause=\"queue_full\"", "Records lost before reaching a sink, by cause."),
    DeadLetters => ("divolte_dead_letters_total", "", "Dead letters written for events that were refused or could not be mapped."),
    DurableLost => ("divolte_durable_unavailable_total", "cause=\"lost\"", "Durable mode: answers sent as 503 because a sink could not make their records durable, or in time."),
    DurableTimedOut => ("divolte_durable_unavailable_total", "cause=\"timeout\"", "Durable mode: answers sent as 503 because a sink could not make their records durable, or in time."),
    UserAgentCacheHits => ("divolte_user_agent_cache_hits_total", "", "User-agent lookups answered from the shard cache."),
    UserAgentCacheMisses => ("divolte_user_agent_cache_misses_total", "", "User-agent lookups that parsed."),
}

/// One shard's counters. Written only by that shard.
#[derive(Debug)]
pub struct ShardMetrics {
    values: Vec<AtomicU64>,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        Self { values: Counter::ALL.iter().map(|_| AtomicU64::new(0)).collect() }
    }
}

impl ShardMetrics {
    /// Adds `n` to `c`.
    #[inline]
    pub fn add(&self, c: Counter, n: u64) {
        self.values[c as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one to `c`.
    #[inline]
    pub fn inc(&self, c: Counter) {
        self.add(c, 1);
    }

    /// Current value of `c`.
    pub fn get(&self, c: Counter) -> u64 {
        self.values[c as usize].load(Ordering::Relaxed)
    }

    /// Sets `c` to `v` (for values a shard tracks itself, such as cache hits).
    pub fn set(&self, c: Counter, v: u64) {
        self.values[c as usize].store(v, Ordering::Relaxed);
    }
}

/// Records of each sink kept for the operator page.
pub const RECENT: usize = 5;

/// One sink's counters, shared by its flush threads.
#[derive(Debug, Default)]
pub struct SinkMetrics {
    /// Records written (synced) to the sink.
    pub delivered: AtomicU64,
    /// Records lost in the sink (write errors).
    pub failed: AtomicU64,
    /// Records sent again after a retriable delivery error.
    pub retried: AtomicU64,
    /// The [`Part`]s failing now, one bit each: set by a part's failure,
    /// cleared by its next success. Drives `/ready`.
    failing: std::sync::atomic::AtomicU8,
    /// Files published (file sinks).
    pub files_published: AtomicU64,
    /// Write errors.
    pub errors: AtomicU64,
    /// A file sink's failed attempts, by [`StoreErrorCause`].
    pub store_errors: [AtomicU64; StoreErrorCause::ALL.len()],
    /// Records written to a Kafka sink's disk spool.
    pub spooled: AtomicU64,
    /// Bytes in a Kafka sink's disk spool now.
    pub spool_bytes: AtomicU64,
    /// Records waiting for each flush thread (index = lane). Shards add
    /// before sending, flush threads subtract once written; the bound on
    /// it is the sink's queue size.
    pub queued: Vec<AtomicU64>,
    /// The last few records the sink received (encoded), for the operator
    /// page; taken at most once a second, by the flush threads.
    pub recent: arc_swap::ArcSwap<Vec<Vec<u8>>>,
    /// When `recent` was last taken, ms since the epoch.
    recent_at: AtomicU64,
}

impl SinkMetrics {
    /// Counters for a sink with `lanes` flush threads.
    pub fn new(lanes: usize) -> Self {
        Self { queued: (0..lanes).map(|_| AtomicU64::new(0)).collect(), ..Self::default() }
    }

    /// Adds the last of `values` (a batch's, oldest first) to the
    /// [`RECENT`] records kept for the operator page, unless some were
    /// added less than a second ago.
    pub fn remember<'a>(&self, values: impl DoubleEndedIterator<Item = &'a [u8]>) {
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let last = self.recent_at.load(Ordering::Relaxed);
        if now < last + 1000
            || self.recent_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        let mut newest: Vec<Vec<u8>> = values.rev().take(RECENT).map(<[u8]>::to_vec).collect();
        newest.reverse();
        let before = self.recent.load();
        let keep = RECENT - newest.len();
        let mut kept: Vec<Vec<u8>> = before[before.len().saturating_sub(keep)..].to_vec();
        kept.append(&mut newest);
        self.recent.store(Arc::new(kept));
    }

    /// Whether every part of the sink succeeded (or had nothing to do)
    /// since its last failure.
    pub fn is_healthy(&self) -> bool {
        self.failing.load(Ordering::Relaxed) == 0
    }

    /// Records the outcome of an attempt by `part`.
    pub fn set_healthy(&self, part: Part, healthy: bool) {
        if healthy {
            self.failing.fetch_and(!(part as u8), Ordering::Relaxed);
        } else {
            self.failing.fetch_or(part as u8, Ordering::Relaxed);
        }
    }

    /// Records waiting in all lanes.
    pub fn queued_total(&self) -> u64 {
        self.queued.iter().map(|q| q.load(Ordering::Relaxed)).sum()
    }
}

/// A part of a sink whose health is tracked on its own, so that one
/// part's success cannot hide another's failure: a file written to the
/// staging disk says nothing of the store it is published to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A Kafka sink's deliveries to its brokers.
    Brokers = 1,
    /// A file sink's staging disk: creating, writing and syncing files.
    Disk = 2,
    /// A file sink's store: publishing files to it.
    Store = 4,
}

/// Why a file sink's attempt to write or publish a file failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorCause {
    /// The local disk (a full or vanished staging or publish directory).
    Disk,
    /// The store did not answer (refused or timed-out connections).
    Unreachable,
    /// The store answered no (no such bucket, credentials refused or expired).
    Refused,
    /// The store asked to slow down.
    Throttled,
    /// The store failed on its side (a 5xx) or anything else.
    Other,
}

impl StoreErrorCause {
    /// Every cause, in label order.
    pub const ALL: [Self; 5] = [Self::Disk, Self::Unreachable, Self::Refused, Self::Throttled, Self::Other];

    /// The `cause` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Disk => "disk",
            Self::Unreachable => "unreachable",
            Self::Refused => "refused",
            Self::Throttled => "throttled",
            Self::Other => "other",
        }
    }
}

/// A per-sink series: name, type, help, and the counter it reads.
type SinkSeries = (&'static str, &'static str, &'static str, fn(&SinkMetrics) -> u64);

/// Everything a scrape reads.
#[derive(Debug, Default)]
pub struct Registry {
    /// Per-shard counters, one block per shard.
    pub shards: Vec<Arc<ShardMetrics>>,
    /// Per-sink counters of the running sinks, by sink name; replaced at a
    /// reload (a sink that stays keeps its counters).
    pub sinks: arc_swap::ArcSwap<Vec<(String, Arc<SinkMetrics>)>>,
    /// Configuration reloads that took effect.
    pub reloads_ok: AtomicU64,
    /// Configuration reloads refused (the running configuration stayed).
    pub reloads_failed: AtomicU64,
}

impl Registry {
    /// Counters for `shards` shards; the sinks' come with the first generation.
    pub fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards).map(|_| Arc::new(ShardMetrics::default())).collect(),
            sinks: arc_swap::ArcSwap::from_pointee(Vec::new()),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }

    /// Sum of `c` over all shards.
    pub fn total(&self, c: Counter) -> u64 {
        self.shards.iter().map(|s| s.get(c)).sum()
    }

    /// Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut last_name = "";
        for &c in Counter::ALL {
            let (name, labels, help) = c.describe();
            if name != last_name {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                last_name = name;
            }
            let total = self.total(c);
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {total}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {total}");
            }
        }
        let name = "divolte_config_reloads_total";
        let _ = writeln!(out, "# HELP {name} Configuration reloads, by result.\n# TYPE {name} counter");
        let _ = writeln!(out, "{name}{{result=\"ok\"}} {}", self.reloads_ok.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}{{result=\"failed\"}} {}", self.reloads_failed.load(Ordering::Relaxed));
        // Per shard, to see how the kernel spreads connections.
        for (name, counter, help) in [
            ("divolte_shard_events_received_total", Counter::EventsReceived, "Events received, by shard."),
            (
                "divolte_shard_events_duplicate_total",
                Counter::EventsDuplicate,
                "Duplicate events, by the shard that saw the repeat.",
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (i, shard) in self.shards.iter().enumerate() {
                let _ = writeln!(out, "{name}{{shard=\"{i}\"}} {}", shard.get(counter));
            }
        }
        let sink_series: [SinkSeries; 9] = [
            ("divolte_sink_delivered_total", "counter", "Records a sink delivered.", |m| {
                m.delivered.load(Ordering::Relaxed)
            }),
            ("divolte_sink_failed_total", "counter", "Records a sink lost to errors.", |m| {
                m.failed.load(Ordering::Relaxed)
            }),
            ("divolte_sink_retried_total", "counter", "Records a sink sent again after a retriable error.", |m| {
                m.retried.load(Ordering::Relaxed)
            }),
            ("divolte_sink_errors_total", "counter", "Sink write errors.", |m| m.errors.load(Ordering::Relaxed)),
            ("divolte_sink_files_published_total", "counter", "Files a file sink published.", |m| {
                m.files_published.load(Ordering::Relaxed)
            }),
            ("divolte_sink_spooled_total", "counter", "Records a Kafka sink wrote to its disk spool.", |m| {
                m.spooled.load(Ordering::Relaxed)
            }),
            ("divolte_sink_spool_bytes", "gauge", "Bytes in a Kafka sink's disk spool.", |m| {
                m.spool_bytes.load(Ordering::Relaxed)
            }),
            (
                "divolte_sink_queue_records",
                "gauge",
                "Records waiting for a sink's flush threads.",
                SinkMetrics::queued_total,
            ),
            (
                "divolte_sink_healthy",
                "gauge",
                "1 while the sink delivers, 0 after a failure until the next success.",
                |m| u64::from(m.is_healthy()),
            ),
        ];
        let sinks = self.sinks.load();
        for (name, kind, help, field) in sink_series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (sink, m) in sinks.iter() {
                let _ = writeln!(out, "{name}{{sink=\"{sink}\"}} {}", field(m));
            }
        }
        let name = "divolte_sink_store_errors_total";
        let _ =
            writeln!(out, "# HELP {name} A file sink's failed writes and publishes, by cause.\n# TYPE {name} counter");
        for (sink, m) in sinks.iter() {
            for (cause, count) in StoreErrorCause::ALL.iter().zip(&m.store_errors) {
                let _ = writeln!(
                    out,
                    "{name}{{sink=\"{sink}\",cause=\"{}\"}} {}",
                    cause.label(),
                    count.load(Ordering::Relaxed)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP divolte_build_info Build information.\n# TYPE divolte_build_info gauge\ndivolte_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

/// Whether a log line that a flood repeats (drops, accept errors) may be
/// written now: at most once a second, with `last` the time it last was.
pub fn log_due(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    let due = last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
    if due {
        *last = Some(now);
    }
    due
}

#[cfg(test)]
mod tests {
    use super::{Part, SinkMetrics};

    #[test]
    fn a_part_that_succeeds_does_not_clear_another_parts_failure() {
        let m = SinkMetrics::new(1);
        assert!(m.is_healthy());
        m.set_healthy(Part::Store, false);
        m.set_healthy(Part::Disk, true);
        assert!(!m.is_healthy(), "a file written to disk says nothing of the store");
        m.set_healthy(Part::Disk, false);
        m.set_healthy(Part::Store, true);
        assert!(!m.is_healthy());
        m.set_healthy(Part::Disk, true);
        assert!(m.is_healthy());
    }
}
