//! Phase two of startup: a validated [`Config`] is resolved into a
//! [`Plan`], each stage is built from its part of it (compiled mappings,
//! routes, running sinks), and the process runs until it has drained.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::avro::{dead_letter_schema, default_schema, JsonWriter, Unions};
use crate::config::{Config, Cores};
use crate::enrich::geo::{self, GeoDatabase};
use crate::lifecycle::{Lifecycle, Phase};
use crate::mapping::{configured, Program};
use crate::metrics::{Registry, ShardMetrics};
use crate::plan::{Plan, SinkId, SinkKind};
use crate::shard::routes::RouteTables;
use crate::shard::stages::{DeadLetterRoute, EventStages};
use crate::shard::status::{MappingStatus, StatusInfo};
use crate::shard::{self, Runtime};
use crate::sink;
use crate::watchdog::{self, Heartbeats};

/// A startup failure, for `main` to report.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

/// The CPUs to run shards on: the configured ones, or every CPU of
/// `allowed` (the process's, which respects `taskset`).
///
/// # Errors
/// A configured CPU is not one the process may run on.
fn shard_cpus(cores: Option<&Cores>, allowed: &[usize]) -> Result<Vec<usize>, StartupError> {
    match cores {
        None => Ok(allowed.to_vec()),
        Some(Cores::Count(n)) if *n <= allowed.len() => Ok(allowed[..*n].to_vec()),
        Some(Cores::Count(n)) => Err(format!(
            "divolte.global.server.cores = {n}, but this process may only use {} CPUs ({allowed:?})",
            allowed.len()
        )
        .into()),
        Some(Cores::List(list)) => match list.iter().find(|c| !allowed.contains(c)) {
            Some(bad) => {
                Err(format!("divolte.global.server.cores names CPU {bad}, but this process may only use {allowed:?}")
                    .into())
            }
            None => Ok(list.clone()),
        },
    }
}

/// The CPUs this process may run on (its affinity mask, which `taskset`
/// and cgroups narrow).
fn allowed_cpus() -> Result<Vec<usize>, StartupError> {
    Ok(core_affinity::get_core_ids()
        .ok_or("cannot read this process's CPU affinity")?
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// Confines the calling thread, and so every thread it starts afterwards
/// (flush threads, librdkafka's threads, signal and reload watchers), to
/// the `allowed` CPUs that no shard is pinned to, and returns them. Under
/// load a shard keeps its CPU busy; a flush thread woken there takes time
/// from requests, and a burst of producer work shows up as request
/// latency. When the shards take every allowed CPU, nothing changes and
/// the threads share the shards' CPUs (the result is empty). Shards pin
/// themselves.
///
/// A mask that cannot be set (a seccomp filter, say) is logged, and the
/// threads share the shards' CPUs.
fn keep_off_shard_cpus(allowed: &[usize], shards: &[usize]) -> Vec<usize> {
    let others: Vec<usize> = allowed.iter().copied().filter(|c| !shards.contains(c)).collect();
    if others.is_empty() {
        return others;
    }
    // SAFETY: `set` is a plain bit set that CPU_ZERO and CPU_SET fill within
    // its bounds, and sched_setaffinity only reads `size_of_val(&set)` bytes.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &cpu in &others {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set)
    };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        tracing::warn!(cpus = ?others, %error, "Cannot keep the flush threads off the shards' CPUs; they share them.");
        return Vec::new();
    }
    others
}

/// Fails when something already listens on `addr`. Shards bind with
/// SO_REUSEPORT, which would quietly share the port with another collector
/// running there; a plain bind first fails loudly, as the original did.
fn ensure_free(addr: SocketAddr) -> Result<(), StartupError> {
    drop(std::net::TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?);
    Ok(())
}

/// Runs the collector until a signal has drained it.
///
/// # Errors
/// Anything that keeps it from starting.
pub fn run(config: Config, config_source: &str) -> Result<(), StartupError> {
    let plan = Plan::resolve(&config)?;
    let allowed = allowed_cpus()?;
    let cpus = shard_cpus(plan.server.cores.as_ref(), &allowed)?;
    ensure_free(plan.server.listen)?;
    if let Some(admin) = plan.server.admin {
        ensure_free(admin)?;
    }
    let others = keep_off_shard_cpus(&allowed, &cpus);
    let Built { runtime, sinks } = build(&plan, cpus.len())?;
    let server = &plan.server;
    watch_signals(runtime.lifecycle.clone(), server.shutdown_delay)?;
    if let Some(limits) = watchdog::Limits::new(server.watchdog_timeout, server.shutdown_delay, server.shutdown_timeout)
    {
        watchdog::spawn(limits, runtime.heartbeats.clone(), runtime.lifecycle.clone())?;
    }
    tracing::info!(config = config_source, address = %server.listen, shards = cpus.len(), cpus = ?cpus, other_threads_on = ?others, "Starting server on {}.", server.listen);

    let lifecycle = runtime.lifecycle.clone();
    let served = shard::run(runtime, &cpus);
    // Every shard has stopped and handed off its last batch; what the
    // connections left of shutdown_timeout is the sinks'.
    sinks.drain(lifecycle.drain_deadline(server.shutdown_timeout));
    served?;
    tracing::info!("Stopped.");
    Ok(())
}

/// What the shards run on, with the sinks' flush threads already started.
pub struct Built {
    /// Routes, mappings, sink lanes and shared state.
    pub runtime: Arc<Runtime>,
    /// The sinks, to drain after the shards stop.
    pub sinks: sink::Sinks,
}

/// Builds each stage from its part of the plan, for `shards` shards: loads
/// the geo database, compiles the mappings, builds the routes and the tags,
/// and starts the sinks. Nothing listens yet.
///
/// # Errors
/// Anything in the plan that cannot be built or started.
pub fn build(plan: &Plan, shards: usize) -> Result<Built, StartupError> {
    let geo = match &plan.enrichment.ip2geo_database {
        None => None,
        Some(path) => {
            let db = GeoDatabase::open(path)?;
            db.watch(geo::WATCH_INTERVAL)?;
            tracing::info!(path = %path.display(), kind = %db.database_type(), "Geo database loaded; reloaded when the file changes.");
            Some(db)
        }
    };
    let mappings = configured::build(&plan.mappings, geo.is_some())?;
    for m in &mappings {
        let kind = if matches!(m.program, Program::Script(_)) { "script" } else { "built-in" };
        tracing::info!(mapping = %m.name, kind, fields = m.layout.fields.len(), "Mapping compiled.");
    }
    let routes = RouteTables::build(&plan.server, &plan.sources, &plan.mappings)?;
    // Validation made every mapping of a sink use one schema, and kept
    // mappings off dead-letter sinks.
    let schema_of = |sink| {
        if plan.sources.iter().any(|s| s.dead_letters == Some(sink)) {
            return dead_letter_schema();
        }
        let writer = mappings.iter().find(|m| m.sinks.contains(&sink));
        writer.map_or_else(|| default_schema().schema, |m| m.layout.schema.clone())
    };
    let sinks = sink::start(&plan.sinks, schema_of)?;
    let status = StatusInfo {
        started: std::time::SystemTime::now(),
        plan: format!("{plan:#?}"),
        mappings: mappings
            .iter()
            .map(|m| MappingStatus {
                name: m.name.clone(),
                schema: serde_json::to_string_pretty(&m.layout.schema).unwrap_or_default(),
                sinks: m.sinks.clone(),
            })
            .collect(),
        sink_json: (0..plan.sinks.len())
            .map(|id| JsonWriter::new(&schema_of(SinkId(id)), Unions::Plain))
            .collect::<Result<_, _>>()?,
    };
    let dead_letters = plan
        .sources
        .iter()
        .map(|s| s.dead_letters.map(|sink| DeadLetterRoute { sink, source: s.name.clone() }))
        .collect();
    for s in &plan.sinks {
        match &s.kind {
            SinkKind::File(f) => {
                tracing::info!(sink = %s.name, staging = %f.staging.display(), publish_dir = %f.store.describe(), threads = s.lanes, "File sink writes Avro files.");
            }
            SinkKind::Kafka(k) => {
                tracing::info!(sink = %s.name, topic = %k.topic, mode = ?k.mode, threads = s.lanes, "Kafka sink produces to a topic.");
            }
        }
    }
    let registry = Arc::new(Registry {
        shards: (0..shards).map(|_| Arc::new(ShardMetrics::default())).collect(),
        sinks: sinks.lanes.iter().map(|l| (l.name.clone(), l.metrics.clone())).collect(),
    });
    let runtime = Arc::new(Runtime {
        server: plan.server.clone(),
        routes,
        events: Arc::new(EventStages::new(&plan.enrichment, mappings, dead_letters, geo)),
        sinks: sinks.lanes.clone(),
        lifecycle: Arc::new(Lifecycle::default()),
        heartbeats: Arc::new(Heartbeats::new(shards)),
        registry,
        listening: std::sync::atomic::AtomicUsize::new(0),
        status,
    });
    Ok(Built { runtime, sinks })
}

/// On SIGTERM or SIGINT: `/ping` fails at once, traffic is served for
/// `delay`, then the shards stop accepting and drain.
fn watch_signals(lifecycle: Arc<Lifecycle>, delay: Duration) -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])?;
    std::thread::Builder::new().name("signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            tracing::info!(
                signal = sig,
                delay_ms = delay.as_millis() as u64,
                "Shutdown requested; /ping now answers 503."
            );
            lifecycle.advance(Phase::Draining);
            std::thread::sleep(delay);
            tracing::info!("Closing listeners.");
            lifecycle.advance(Phase::Stopping);
        }
    })?;
    Ok(())
}
