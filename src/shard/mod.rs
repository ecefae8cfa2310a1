//! Shards: one glommio executor per CPU, each pinned, each accepting its
//! own connections on a `SO_REUSEPORT` listener and running the whole
//! request path locally.
//!
//! A shard holds: its listener; one task per connection (the HTTP loop of
//! [`crate::http::serve`] with the shard's [`service::ShardService`]); a
//! flusher task that hands batches to the sinks (see [`commit`]); and a
//! registry of open connections ([`open`]) that closes idle ones when
//! draining and gives memory back after a burst. Work leaves a shard only
//! as batches on the sinks' bounded channels.
//!
//! Key components:
//! - [`Runtime`]: everything shards share, immutable after startup.
//! - [`run`]: starts the pool and blocks until every shard has stopped.
//! - [`routes::RouteTables`]: which path serves what, built from the plan.
//! - [`service::ShardService`]: routing, static answers and probes.
//! - [`stages::ShardStages`]: the event stages, from request to batch.
//! - [`commit::GroupCommit`]: answers wait until their events are handed off.
//! - [`status`]: the operator page on the admin address.
//! - [`cookies`], [`cors`], [`privacy`]: what browser endpoints add to
//!   their answers (server-set cookies, CORS headers) or hold back.

pub mod commit;
pub mod cookies;
pub mod cors;
mod open;
pub mod privacy;
pub mod routes;
pub mod service;
pub mod stages;
pub mod status;

use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::AsyncWriteExt;
use glommio::net::{TcpListener, TcpStream};
use glommio::{CpuSet, LocalExecutorPoolBuilder, PoolPlacement};

use crate::batch::SinkLanes;
use crate::http::{Peer, Persistence, Readiness, Response, Service, Status};
use crate::lifecycle::{Lifecycle, Phase};
use crate::metrics::{Counter, Registry};
use crate::plan::ServerPlan;
use crate::watchdog::{Heartbeats, HEARTBEAT_EVERY};
use open::OpenConnections;
use routes::RouteTables;
use service::ShardService;
use stages::EventStages;

/// What a reload can replace, swapped whole: shards move from one
/// generation to the next between two requests.
pub struct Generation {
    /// 1 at startup, one more at each reload.
    pub number: u64,
    /// What each path of each address serves.
    pub routes: RouteTables,
    /// The event stages' shared part (mappings, duplicate memory, geo).
    pub events: Arc<EventStages>,
    /// Sending side of each sink, by sink id.
    pub sinks: Vec<SinkLanes>,
    /// What the operator page shows besides counters.
    pub status: status::StatusInfo,
}

/// Everything the shards share. Built once at startup; only the current
/// [`Generation`] changes, at a reload.
pub struct Runtime {
    /// Addresses, limits and the drain's timeout.
    pub server: ServerPlan,
    /// Shared lifecycle state.
    pub lifecycle: Arc<Lifecycle>,
    /// Each shard's heartbeat, read by the watchdog.
    pub heartbeats: Arc<Heartbeats>,
    /// Metrics of every shard and sink.
    pub registry: Arc<Registry>,
    /// Shards listening so far; the collector is ready once all are.
    pub listening: AtomicUsize,
    /// When the process started.
    pub started: std::time::SystemTime,
    /// The generation shards move to.
    current: arc_swap::ArcSwap<Generation>,
    /// Its number: one load per request tells a shard whether to move.
    current_number: AtomicU64,
    /// The generation each shard runs.
    on_generation: Vec<AtomicU64>,
}

impl Runtime {
    /// A runtime for `shards` shards, running `first`.
    pub fn new(
        server: ServerPlan,
        registry: Arc<Registry>,
        lifecycle: Arc<Lifecycle>,
        shards: usize,
        first: Generation,
    ) -> Self {
        let number = first.number;
        registry.sinks.store(Arc::new(first.sinks.iter().map(|l| (l.name.clone(), l.metrics.clone())).collect()));
        Self {
            server,
            lifecycle,
            heartbeats: Arc::new(Heartbeats::new(shards)),
            registry,
            listening: AtomicUsize::new(0),
            started: std::time::SystemTime::now(),
            current: arc_swap::ArcSwap::from_pointee(first),
            current_number: AtomicU64::new(number),
            on_generation: (0..shards).map(|_| AtomicU64::new(number)).collect(),
        }
    }

    /// The current generation.
    pub fn generation(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// Makes `next` current; shards move to it between requests.
    pub fn install(&self, next: Generation) {
        let number = next.number;
        self.registry.sinks.store(Arc::new(next.sinks.iter().map(|l| (l.name.clone(), l.metrics.clone())).collect()));
        self.current.store(Arc::new(next));
        self.current_number.store(number, Ordering::Release);
    }

    /// The current generation's number (one atomic load).
    pub fn current_number(&self) -> u64 {
        self.current_number.load(Ordering::Acquire)
    }

    /// Shard `shard` now runs generation `number`.
    pub fn moved(&self, shard: usize, number: u64) {
        self.on_generation[shard].store(number, Ordering::Release);
    }

    /// Whether every shard that still runs has moved to generation `number`.
    pub fn all_shards_on(&self, number: u64) -> bool {
        self.on_generation
            .iter()
            .enumerate()
            .all(|(i, g)| g.load(Ordering::Acquire) >= number || self.heartbeats.is_stopped(i))
    }
}

/// How often an idle shard looks for a reloaded generation.
const GENERATION_CHECK: Duration = Duration::from_millis(100);

/// glommio reserves this much locked memory per shard for its I/O rings;
/// the collector does no buffered file I/O on shards, so the minimum does.
const SHARD_IO_MEMORY: usize = 512 * 1024;

/// Submission-queue entries of each of the shard's io_uring rings. The
/// kernel sizes a ring's cancel hash by its completion queue (2 x this),
/// and every cancel walks one bucket of the ring's pending polls, one poll
/// per idle connection. glommio cancels a timeout on the main ring each
/// time the reactor loops, and a closing connection cancels its poll. With
/// glommio's default of 128 (8 buckets) and 16,384 idle connections that
/// walk took 36% of the shard while it refused new connections; 4,096
/// gives the kernel's largest table (256 buckets): 4%, for 0.8 MiB more.
const RING_DEPTH: usize = 4096;

/// How long the shard runs ready tasks before it polls its ring again.
/// Under load the run queue never empties (connections that found data
/// yield and are ready again), so this bounds how long a connection
/// waiting on the ring goes unnoticed; glommio's default of 100 ms made
/// the latency tail (p99.9 ~90 ms at saturation).
const PREEMPT_EVERY: std::time::Duration = std::time::Duration::from_millis(1);

/// How often an accepting shard checks whether to stop.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Runs one shard per CPU in `cpus` until the lifecycle reaches `Stopping`
/// and every shard has drained.
///
/// # Errors
/// A shard could not start (CPU not available, port in use, locked-memory limit).
pub fn run(rt: Arc<Runtime>, cpus: &[usize]) -> std::io::Result<()> {
    let online = CpuSet::online().map_err(|e| std::io::Error::other(e.to_string()))?;
    let sets: Vec<CpuSet> = cpus.iter().map(|&cpu| online.clone().filter(|l| l.cpu == cpu)).collect();
    let next_shard = Arc::new(AtomicUsize::new(0));
    let handles = LocalExecutorPoolBuilder::new(PoolPlacement::Custom(sets))
        .name("shard")
        .io_memory(SHARD_IO_MEMORY)
        .ring_depth(RING_DEPTH)
        .preempt_timer(PREEMPT_EVERY)
        .on_all_shards(move || {
            let rt = rt.clone();
            let index = next_shard.fetch_add(1, Ordering::Relaxed);
            async move { serve_shard(rt, index).await }
        })
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut first_error = None;
    for result in handles.join_all() {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(std::io::Error::other(e.to_string()));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

type Connections = Rc<OpenConnections>;

/// The accept queue of each shard's listener (glommio's own choice).
const ACCEPT_BACKLOG: i32 = 1024;

/// A shard's listening socket. SO_REUSEPORT gives every shard its own
/// accept queue on the one port. SO_REUSEADDR is for the next start: the
/// collector closes connections itself (idle ones when it drains), which
/// leaves TIME_WAIT sockets on the port for a minute, and those only let a
/// new listener bind when they carry the option, inherited from this one.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(ACCEPT_BACKLOG)?;
    // SAFETY: the descriptor is a bound, listening TCP socket, and its
    // ownership moves from `socket` to the listener.
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

async fn serve_shard(rt: Arc<Runtime>, index: usize) -> std::io::Result<()> {
    let metrics = rt.registry.shards[index].clone();
    let service = Rc::new(ShardService::new(rt.clone(), metrics.clone(), index));
    // An idle shard moves to a reloaded generation too, so that the sinks
    // a reload replaced can drain.
    let mover = glommio::spawn_local({
        let s = service.clone();
        async move {
            loop {
                glommio::timer::sleep(GENERATION_CHECK).await;
                s.refresh();
            }
        }
    })
    .detach();
    let flusher = glommio::spawn_local({
        let p = service.clone();
        async move { p.run_flusher().await }
    })
    .detach();
    // Durable mode: the settler wakes answers whose records are durable,
    // the sweeper those that waited too long.
    let durable = match rt.server.delivery {
        crate::plan::Delivery::Durable(timeout) => {
            let (p, q) = (service.clone(), service.clone());
            vec![
                glommio::spawn_local(async move { p.run_settler().await }).detach(),
                glommio::spawn_local(async move { q.run_sweeper(timeout).await }).detach(),
            ]
        }
        crate::plan::Delivery::Fast => Vec::new(),
    };
    let heartbeat = glommio::spawn_local(beat(rt.clone(), index)).detach();
    let listener = listen(rt.server.listen)?;
    rt.listening.fetch_add(1, Ordering::Relaxed);
    tracing::info!(shard = index, address = %rt.server.listen, "Shard listening.");
    let connections: Connections = Rc::new(OpenConnections::default());
    let readiness = Readiness::new()?;
    let dispatcher = glommio::spawn_local({
        let r = readiness.clone();
        async move { r.run().await }
    })
    .detach();
    let give_back = glommio::spawn_local({
        let c = connections.clone();
        async move { c.give_back_memory().await }
    })
    .detach();

    if index == 0 {
        if let Some(addr) = rt.server.admin {
            // The operators' port (metrics, probes) is served by the first shard.
            let admin = listen(addr)?;
            tracing::info!(shard = index, address = %addr, "Serving /metrics, /ping and /ready on the admin address.");
            let history = Rc::new(status::History::default());
            glommio::spawn_local({
                let (history, rt) = (history.clone(), rt.clone());
                async move {
                    loop {
                        history.sample(&rt);
                        glommio::timer::sleep(status::SAMPLE_EVERY).await;
                    }
                }
            })
            .detach();
            let admin_service = Rc::new(ShardService::new_admin(rt.clone(), metrics.clone(), history));
            glommio::spawn_local(accept_until_stopped(
                admin,
                admin_service,
                connections.clone(),
                readiness.clone(),
                rt.clone(),
                index,
            ))
            .detach();
        }
    }
    accept_until_stopped(listener, service.clone(), connections.clone(), readiness.clone(), rt.clone(), index).await;
    tracing::info!(shard = index, open = connections.len(), "Shard stopped accepting; finishing connections.");

    let deadline = rt.lifecycle.drain_deadline(rt.server.shutdown_timeout);
    while !connections.is_empty() && Instant::now() < deadline {
        connections.close_idle();
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    service.flush_now();
    drop(flusher);
    durable.into_iter().for_each(|t| t.cancel());
    heartbeat.cancel();
    mover.cancel();
    give_back.cancel();
    dispatcher.cancel();
    rt.heartbeats.stopped(index);
    tracing::info!(shard = index, abandoned = connections.len(), "Shard stopped.");
    Ok(())
}

/// Advances the shard's heartbeat for the watchdog, for as long as the
/// shard wakes up.
async fn beat(rt: Arc<Runtime>, index: usize) {
    let stall_at = test_stall(index);
    loop {
        rt.heartbeats.beat(index);
        if stall_at.is_some_and(|at| Instant::now() >= at) {
            // Blocks the shard's thread, as a lost wake-up would.
            std::thread::sleep(Duration::MAX);
        }
        glommio::timer::sleep(HEARTBEAT_EVERY).await;
    }
}

/// In debug builds only, for the watchdog's tests: shard 0 stalls for good
/// `DIVOLTE_TEST_STALL_SHARD_AFTER_MS` milliseconds after it starts.
fn test_stall(index: usize) -> Option<Instant> {
    if !cfg!(debug_assertions) || index != 0 {
        return None;
    }
    let ms: u64 = std::env::var("DIVOLTE_TEST_STALL_SHARD_AFTER_MS").ok()?.parse().ok()?;
    Some(Instant::now() + Duration::from_millis(ms))
}

/// Accepts connections for `service` until the lifecycle reaches
/// `Stopping`, then closes the listener.
async fn accept_until_stopped(
    listener: TcpListener,
    service: Rc<ShardService>,
    connections: Connections,
    readiness: Rc<Readiness>,
    rt: Arc<Runtime>,
    index: usize,
) {
    let metrics = rt.registry.shards[index].clone();
    let mut stop = pin!(async {
        while rt.lifecycle.phase() < Phase::Stopping {
            glommio::timer::sleep(STOP_POLL).await;
        }
    });
    let (mut accept_errors, mut last_accept_warning) = (0u64, None);
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            stop.as_mut().await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(s)) => s,
            Some(Err(error)) => {
                // Out of descriptors (EMFILE) repeats until connections
                // close: log once a second, and let connections run.
                accept_errors += 1;
                if crate::metrics::log_due(&mut last_accept_warning) {
                    tracing::warn!(shard = index, %error, failures = accept_errors, "Accept failed.");
                }
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if connections.len() >= rt.server.max_connections {
            metrics.inc(Counter::ConnectionsRefused);
            glommio::spawn_local(refuse(stream, service.clone())).detach();
            continue;
        }
        metrics.inc(Counter::ConnectionsAccepted);
        glommio::spawn_local(connection(stream, service.clone(), connections.clone(), readiness.clone(), rt.clone()))
            .detach();
    }
}

async fn connection(
    mut stream: TcpStream,
    service: Rc<ShardService>,
    connections: Connections,
    readiness: Rc<Readiness>,
    rt: Arc<Runtime>,
) {
    let idle = Rc::new(Cell::new(false));
    let key = connections.insert(stream.as_raw_fd(), idle.clone());
    let _ = stream.set_nodelay(true);
    match (stream.peer_addr(), readiness.register(stream.as_raw_fd())) {
        (Ok(addr), Ok(input)) => {
            let mut host = Vec::with_capacity(40);
            crate::event::write_remote_host(&mut host, addr.ip());
            let host = String::from_utf8_lossy(&host);
            let peer = Peer { addr, host: &host };
            crate::http::serve(&mut stream, &input, peer, &*service, &rt.server.limits, &idle).await;
        }
        (_, Err(error)) => tracing::warn!(%error, "Could not watch a connection for input; closing it."),
        (Err(_), _) => {}
    }
    connections.remove(key);
    let _ = stream.close().await;
}

/// Answers a connection beyond `max_connections` with 503, then closes it.
async fn refuse(mut stream: TcpStream, service: Rc<ShardService>) {
    let mut answer = Vec::with_capacity(160);
    service.date().with_line(std::time::SystemTime::now(), |date| {
        Response::new(&mut answer, date, false, Persistence::Close).send(Status::SERVICE_UNAVAILABLE, &[], None, b"");
    });
    let _ = stream.write_all(&answer).await;
    let _ = stream.close().await;
}
