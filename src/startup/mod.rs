//! Phase two of startup: a validated [`Config`] is resolved into a
//! [`Plan`], each stage is built from its part of it (compiled mappings,
//! routes, running sinks), and the process runs until it has drained.

mod generation;
mod reload;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{Config, Cores};
use crate::enrich::dedup::DuplicateMemory;
use crate::enrich::geo::{self, GeoDatabase};
use crate::lifecycle::{Lifecycle, Phase};
use crate::mapping::{configured, Program};
use crate::metrics::Registry;
use crate::plan::{Plan, SinkKind};
use crate::shard::routes::RouteTables;
use crate::shard::{self, Runtime};
use crate::sink;
use crate::watchdog;

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
pub fn run(config: Config, config_path: Option<&std::path::Path>) -> Result<(), StartupError> {
    let config_source = config_path.map_or_else(|| "embedded defaults".to_owned(), |p| p.display().to_string());
    let plan = Plan::resolve(&config)?;
    let allowed = allowed_cpus()?;
    let cpus = shard_cpus(plan.server.cores.as_ref(), &allowed)?;
    ensure_free(plan.server.listen)?;
    if let Some(admin) = plan.server.admin {
        ensure_free(admin)?;
    }
    let others = keep_off_shard_cpus(&allowed, &cpus);
    let Built { runtime, sinks, geo } = build(&plan, cpus.len())?;
    let server = &plan.server.clone();
    watch_signals(runtime.lifecycle.clone(), server.shutdown_delay)?;
    reload::Reloader::new(config_path.map(Into::into), plan.clone(), runtime.clone(), sinks.clone(), geo)
        .spawn(server.watch_config)?;
    if let Some(limits) = watchdog::Limits::new(server.watchdog_timeout, server.shutdown_delay, server.shutdown_timeout)
    {
        watchdog::spawn(limits, runtime.heartbeats.clone(), runtime.lifecycle.clone())?;
    }
    tracing::info!(config = %config_source, address = %server.listen, shards = cpus.len(), cpus = ?cpus, other_threads_on = ?others, "Starting server on {}.", server.listen);

    let lifecycle = runtime.lifecycle.clone();
    let served = shard::run(runtime, &cpus);
    // Every shard has stopped and handed off its last batch; what the
    // connections left of shutdown_timeout is the sinks'.
    let sinks = std::mem::take(&mut *sinks.lock().unwrap_or_else(|e| e.into_inner()));
    sinks.drain(lifecycle.drain_deadline(server.shutdown_timeout));
    served?;
    tracing::info!("Stopped.");
    Ok(())
}

/// What the shards run on, with the sinks' flush threads already started.
pub struct Built {
    /// Routes, mappings, sink lanes and shared state.
    pub runtime: Arc<Runtime>,
    /// The sinks, to drain after the shards stop (and to reload).
    pub sinks: Arc<Mutex<sink::Sinks>>,
    /// The geo database, for a reload to keep.
    pub geo: Option<Arc<GeoDatabase>>,
}

/// Opens the ip2geo database at `path` and watches it for changes.
///
/// # Errors
/// The database cannot be read.
fn open_geo(path: Option<&std::path::Path>) -> Result<Option<Arc<GeoDatabase>>, StartupError> {
    let Some(path) = path else { return Ok(None) };
    let db = GeoDatabase::open(path)?;
    db.watch(geo::WATCH_INTERVAL)?;
    tracing::info!(path = %path.display(), kind = %db.database_type(), "Geo database loaded; reloaded when the file changes.");
    Ok(Some(db))
}

/// Builds each stage from its part of the plan, for `shards` shards: loads
/// the geo database, compiles the mappings, builds the routes and the tags,
/// and starts the sinks. Nothing listens yet.
///
/// # Errors
/// Anything in the plan that cannot be built or started.
pub fn build(plan: &Plan, shards: usize) -> Result<Built, StartupError> {
    let geo = open_geo(plan.enrichment.ip2geo_database.as_deref())?;
    let mappings = configured::build(&plan.mappings, geo.is_some())?;
    for m in &mappings {
        let kind = if matches!(m.program, Program::Script(_)) { "script" } else { "built-in" };
        tracing::info!(mapping = %m.name, kind, fields = m.layout.fields.len(), "Mapping compiled.");
    }
    let routes = RouteTables::build(&plan.server, &plan.sources, &plan.mappings)?;
    let schemas = generation::sink_schemas(plan, &mappings);
    let sink_json = generation::sink_json(&schemas)?;
    let sinks = sink::start(&plan.sinks, &schemas)?;
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
    let first = generation::build(generation::Parts {
        number: 1,
        plan,
        mappings,
        routes,
        geo: geo.clone(),
        duplicates: Arc::new(DuplicateMemory::new(plan.enrichment.duplicate_memory_size)),
        sinks: sinks.lanes(),
        sink_json,
    });
    let registry = Arc::new(Registry::new(shards));
    let runtime = Arc::new(Runtime::new(plan.server.clone(), registry, Arc::new(Lifecycle::default()), shards, first));
    Ok(Built { runtime, sinks: Arc::new(Mutex::new(sinks)), geo })
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
