//! Phase two of startup: a validated [`Config`] becomes runtime objects
//! (compiled mappings, routes, running sinks), and the process runs until
//! it has drained.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::assets::{Tag, TagSettings};
use crate::avro::default_schema;
use crate::config::{BrowserSourceConfig, Config, Cores, SourceConfig};
use crate::enrich::dedup::DuplicateMemory;
use crate::enrich::geo::{self, GeoDatabase};
use crate::http::Limits;
use crate::lifecycle::{Lifecycle, Phase};
use crate::mapping::{configured, Program};
use crate::metrics::{Registry, ShardMetrics};
use crate::shard::{self, Endpoint, JsonEndpoint, Routes, Runtime};
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

/// The listen address (`host` unset means loopback, as the original).
///
/// # Errors
/// `host` is not an IP address.
pub fn listen_addr(config: &Config) -> Result<SocketAddr, StartupError> {
    let s = &config.global.server;
    let ip: IpAddr = match s.host.as_deref() {
        None | Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(h) => h.parse()?,
    };
    Ok(SocketAddr::new(ip, s.port))
}

/// The admin address for metrics and probes, when `metrics_port` is set.
///
/// # Errors
/// `metrics_host` is not an IP address.
pub fn admin_addr(config: &Config) -> Result<Option<SocketAddr>, StartupError> {
    let s = &config.global.server;
    let Some(port) = s.metrics_port else { return Ok(None) };
    let ip = match s.metrics_host.as_deref() {
        Some(h) => h.parse()?,
        None => listen_addr(config)?.ip(),
    };
    let addr = SocketAddr::new(ip, port);
    ensure_free(addr)?;
    Ok(Some(addr))
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
    let allowed = allowed_cpus()?;
    let cpus = shard_cpus(config.global.server.cores.as_ref(), &allowed)?;
    ensure_free(listen_addr(&config)?)?;
    let others = keep_off_shard_cpus(&allowed, &cpus);
    let Built { runtime, sinks } = build(&config, cpus.len())?;
    let server = &config.global.server;
    watch_signals(runtime.lifecycle.clone(), server.shutdown_delay.0)?;
    if let Some(limits) =
        watchdog::Limits::new(server.watchdog_timeout.0, server.shutdown_delay.0, server.shutdown_timeout.0)
    {
        watchdog::spawn(limits, runtime.heartbeats.clone(), runtime.lifecycle.clone())?;
    }
    tracing::info!(config = config_source, address = %runtime.addr, shards = cpus.len(), cpus = ?cpus, other_threads_on = ?others, "Starting server on {}.", runtime.addr);

    let lifecycle = runtime.lifecycle.clone();
    let served = shard::run(runtime, &cpus);
    // Every shard has stopped and handed off its last batch; what the
    // connections left of shutdown_timeout is the sinks'.
    sinks.drain(lifecycle.drain_deadline(server.shutdown_timeout.0));
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

/// Loads the geo database, compiles the mappings, builds the routes and the
/// tags, and starts the sinks, for `shards` shards. Nothing listens yet.
///
/// # Errors
/// Anything in the configuration that cannot be built or started.
pub fn build(config: &Config, shards: usize) -> Result<Built, StartupError> {
    let addr = listen_addr(config)?;
    let sources: Vec<(&String, &SourceConfig)> = config.sources.iter().flatten().collect();
    let geo = match &config.global.mapper.ip2geo_database {
        None => None,
        Some(path) => {
            let db = GeoDatabase::open(path)?;
            db.watch(geo::WATCH_INTERVAL)?;
            tracing::info!(path = %path.display(), kind = %db.database_type(), "Geo database loaded; reloaded when the file changes.");
            Some(db)
        }
    };
    let mappings = configured::build(config, geo.is_some())?;
    for m in &mappings {
        let kind = if matches!(m.program, Program::Script(_)) { "script" } else { "built-in" };
        tracing::info!(mapping = %m.name, kind, fields = m.layout.fields.len(), "Mapping compiled.");
    }
    let mappings_by_source = (0..sources.len())
        .map(|s| mappings.iter().enumerate().filter(|(_, m)| m.sources.contains(&s)).map(|(i, _)| i).collect())
        .collect();

    let mut routes = Routes::with_hasher(ahash::RandomState::new());
    if config.global.server.serve_static_resources {
        routes.insert("/".to_owned(), Endpoint::TestPage);
        routes.insert("/index.html".to_owned(), Endpoint::TestPage);
    }
    routes.insert("/ping".to_owned(), Endpoint::Ping);
    routes.insert("/ready".to_owned(), Endpoint::Ready);
    let admin_addr = admin_addr(config)?;
    let mut admin_routes = Routes::with_hasher(ahash::RandomState::new());
    if admin_addr.is_some() {
        for (path, endpoint) in
            [("/metrics", Endpoint::Metrics), ("/ping", Endpoint::Ping), ("/ready", Endpoint::Ready)]
        {
            admin_routes.insert(path.to_owned(), endpoint);
        }
    } else {
        routes.insert("/metrics".to_owned(), Endpoint::Metrics);
    }
    let mut tags = Vec::new();
    let mut beacon = Vec::new();
    let mut json = Vec::new();
    for (i, (name, source)) in sources.iter().enumerate() {
        let b = match source {
            SourceConfig::Browser(b) => b,
            SourceConfig::Json(j) => {
                tracing::info!(source = %name, event_path = %j.event_path, "JSON source.");
                // An exact JSON path wins over the test page, as in the original.
                routes.insert(j.event_path.clone(), Endpoint::JsonEvent { source: i });
                tags.push(None);
                beacon.push(false);
                json.push(Some(JsonEndpoint {
                    party_parameter: j.party_id_parameter.clone(),
                    max_body: j.maximum_body_size.div_ceil(4096).max(1) * 4096,
                }));
                continue;
            }
        };
        json.push(None);
        let prefix = b.normalized_prefix();
        let (event_path, tag_path) = (format!("{prefix}{}", b.event_suffix), format!("{prefix}{}", b.javascript.name));
        tracing::info!(source = %name, event_path = %event_path, tag_path = %tag_path, "Browser source.");
        if !b.http_response_delay.0.is_zero() {
            tracing::warn!(source = %name, "http_response_delay is not supported and is ignored.");
        }
        routes.insert(event_path, Endpoint::BrowserEvent { source: i });
        routes.insert(tag_path, Endpoint::Tag { source: i });
        tags.push(Some(Tag::build(&tag_settings(b), b.javascript.debug)?));
        beacon.push(b.javascript.use_beacon);
    }

    // Validation made every mapping of a sink use one schema.
    let sinks = sink::start(config, |sink| {
        let writer = mappings.iter().find(|m| m.sinks.contains(&sink));
        writer.map_or_else(|| default_schema().schema, |m| m.layout.schema.clone())
    })?;
    for (name, s) in config.active_sinks() {
        match s {
            crate::config::SinkConfig::Hdfs(h) => {
                tracing::info!(sink = %name, working_dir = %h.file_strategy.working_dir, publish_dir = %h.file_strategy.publish_dir, threads = config.global.hdfs.threads, "File sink writes Avro files.");
            }
            crate::config::SinkConfig::Kafka(k) => {
                tracing::info!(sink = %name, topic = %k.topic, mode = ?k.mode, threads = config.global.kafka.threads, "Kafka sink produces to a topic.");
            }
            _ => {}
        }
    }
    let registry = Arc::new(Registry {
        shards: (0..shards).map(|_| Arc::new(ShardMetrics::default())).collect(),
        sinks: sinks.lanes.iter().map(|l| (l.name.clone(), l.metrics.clone())).collect(),
    });
    let server = &config.global.server;
    let runtime = Arc::new(Runtime {
        addr,
        limits: Limits {
            max_head_bytes: server.max_header_bytes,
            max_body_bytes: server.max_body_bytes,
            request_timeout: server.header_read_timeout.0,
            idle_timeout: server.idle_timeout.0,
        },
        routes,
        admin_routes,
        admin_addr,
        tags,
        beacon,
        json,
        mappings,
        mappings_by_source,
        sinks: sinks.lanes.clone(),
        lifecycle: Arc::new(Lifecycle::default()),
        heartbeats: Arc::new(Heartbeats::new(shards)),
        registry,
        listening: std::sync::atomic::AtomicUsize::new(0),
        user_agent_cache_size: config.global.mapper.user_agent_parser.cache_size,
        max_connections: server.max_connections,
        shutdown_timeout: server.shutdown_timeout.0,
        debug_requests: server.debug_requests,
        use_x_forwarded_for: server.use_x_forwarded_for,
        duplicates: DuplicateMemory::new(config.global.mapper.duplicate_memory_size),
        geo,
    });
    Ok(Built { runtime, sinks })
}

/// What a browser source bakes into its tag.
fn tag_settings(b: &BrowserSourceConfig) -> TagSettings {
    TagSettings {
        party_cookie: b.party_cookie.clone(),
        // The original caps cookie lifetimes at Java's Integer.MAX_VALUE seconds.
        party_timeout_seconds: b.party_timeout.0.as_secs().min(i32::MAX as u64),
        session_cookie: b.session_cookie.clone(),
        session_timeout_seconds: b.session_timeout.0.as_secs().min(i32::MAX as u64),
        cookie_domain: b.cookie_domain.clone().unwrap_or_default(),
        same_site: b.cookie_same_site.clone().unwrap_or_default(),
        secure: b.cookie_secure,
        logging: b.javascript.logging,
        script_name: b.javascript.name.clone(),
        event_suffix: b.event_suffix.clone(),
        auto_page_view: b.javascript.auto_page_view_event,
        event_timeout_millis: b.javascript.event_timeout.0.as_millis() as u64,
        beacon: b.javascript.use_beacon,
    }
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
