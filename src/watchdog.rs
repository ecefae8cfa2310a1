//! The watchdog: a thread that ends the process when a shard stops making
//! progress or a drain overruns its time, so that the service manager
//! (systemd's `Restart=on-failure`, Kubernetes) starts a working collector
//! instead of leaving a wedged one that still holds its port.
//!
//! Each shard runs a task that advances its heartbeat every
//! [`HEARTBEAT_EVERY`]. The task is a timer, so it needs nothing but a
//! shard that still wakes up: one that stopped polling its ring, or that
//! some code blocks, stops beating. A shard that has stopped on purpose
//! (after its drain) says so, and is no longer watched.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lifecycle::{Lifecycle, Phase};

/// How often a shard advances its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(250);

/// How far a drain may overrun `shutdown_delay` + `shutdown_timeout` (the
/// connections' time and the sinks' together) before the process gives up.
pub const DRAIN_MARGIN: Duration = Duration::from_secs(5);

/// The process's exit code when the watchdog ends it (EX_SOFTWARE).
pub const EXIT_CODE: i32 = 70;

/// A heartbeat value: not started yet.
const NOT_STARTED: u64 = 0;
/// A heartbeat value: stopped on purpose.
const STOPPED: u64 = u64::MAX;

/// One heartbeat counter per shard.
#[derive(Debug)]
pub struct Heartbeats {
    beats: Vec<AtomicU64>,
}

impl Heartbeats {
    /// Counters for `shards` shards, none started.
    pub fn new(shards: usize) -> Self {
        Self { beats: (0..shards).map(|_| AtomicU64::new(NOT_STARTED)).collect() }
    }

    /// Shard `shard` made progress.
    pub fn beat(&self, shard: usize) {
        let _ = self.beats[shard]
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| (b != STOPPED).then(|| (b + 1).min(STOPPED - 1)));
    }

    /// Shard `shard` has stopped on purpose; it is no longer watched.
    pub fn stopped(&self, shard: usize) {
        self.beats[shard].store(STOPPED, Ordering::Relaxed);
    }

    /// Whether shard `shard` has stopped on purpose.
    pub fn is_stopped(&self, shard: usize) -> bool {
        self.beats[shard].load(Ordering::Relaxed) == STOPPED
    }
}

/// What the watchdog enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A started shard must beat at least this often.
    pub stall: Duration,
    /// A drain must end within this long of the shutdown signal.
    pub drain: Duration,
}

impl Limits {
    /// The limits for a server's `watchdog_timeout`, `shutdown_delay` and
    /// `shutdown_timeout`; `None` when the watchdog is off.
    pub fn new(watchdog_timeout: Duration, shutdown_delay: Duration, shutdown_timeout: Duration) -> Option<Self> {
        (!watchdog_timeout.is_zero())
            .then(|| Self { stall: watchdog_timeout, drain: shutdown_delay + shutdown_timeout + DRAIN_MARGIN })
    }
}

/// Why the watchdog ends the process.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Stalled { shard: usize, silent: Duration },
    DrainOverrun { draining: Duration },
}

/// What the watchdog remembers between checks.
struct Watch {
    limits: Limits,
    /// Per shard: the last heartbeat seen and when it changed.
    seen: Vec<(u64, Instant)>,
    drain_began: Option<Instant>,
    last_check: Instant,
}

impl Watch {
    fn new(limits: Limits, shards: usize, now: Instant) -> Self {
        Self { limits, seen: vec![(NOT_STARTED, now); shards], drain_began: None, last_check: now }
    }

    /// Looks at the heartbeats and the phase at `now`.
    fn check(&mut self, beats: &Heartbeats, phase: Phase, now: Instant) -> Option<Verdict> {
        // The watchdog itself did not run for a while: the whole process
        // (or the machine) was paused, by SIGSTOP, a debugger or a
        // suspended VM. That time counts against no shard and no drain.
        let gap = now - self.last_check;
        self.last_check = now;
        if gap > self.limits.stall / 2 {
            for (_, since) in &mut self.seen {
                *since += gap;
            }
            if let Some(began) = &mut self.drain_began {
                *began += gap;
            }
        }
        for (shard, (last, since)) in self.seen.iter_mut().enumerate() {
            let beat = beats.beats[shard].load(Ordering::Relaxed);
            if beat != *last {
                (*last, *since) = (beat, now);
            } else if beat != NOT_STARTED && beat != STOPPED && now - *since > self.limits.stall {
                return Some(Verdict::Stalled { shard, silent: now - *since });
            }
        }
        if phase != Phase::Running {
            let began = *self.drain_began.get_or_insert(now);
            if now - began > self.limits.drain {
                return Some(Verdict::DrainOverrun { draining: now - began });
            }
        }
        None
    }
}

/// Starts the watchdog thread over `beats` and `lifecycle`.
///
/// # Errors
/// The thread cannot be started.
pub fn spawn(limits: Limits, beats: Arc<Heartbeats>, lifecycle: Arc<Lifecycle>) -> std::io::Result<()> {
    let every = (limits.stall / 4).min(Duration::from_secs(1));
    std::thread::Builder::new().name("watchdog".into()).spawn(move || {
        let mut watch = Watch::new(limits, beats.beats.len(), Instant::now());
        loop {
            std::thread::sleep(every);
            let Some(verdict) = watch.check(&beats, lifecycle.phase(), Instant::now()) else { continue };
            match verdict {
                Verdict::Stalled { shard, silent } => tracing::error!(
                    shard,
                    silent_ms = silent.as_millis() as u64,
                    exit_code = EXIT_CODE,
                    "A shard has made no progress; exiting so that the collector is restarted."
                ),
                Verdict::DrainOverrun { draining } => tracing::error!(
                    draining_ms = draining.as_millis() as u64,
                    limit_ms = limits.drain.as_millis() as u64,
                    exit_code = EXIT_CODE,
                    "The drain overran shutdown_delay + shutdown_timeout; exiting."
                ),
            }
            std::process::exit(EXIT_CODE);
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { stall: Duration::from_secs(5), drain: Duration::from_secs(30) };

    /// Checks once a second from `from` to `to` seconds after `t0`; the
    /// first verdict, with the second it came at.
    fn watch_over(
        watch: &mut Watch,
        beats: &Heartbeats,
        phase: Phase,
        t0: Instant,
        from: u64,
        to: u64,
    ) -> Option<(u64, Verdict)> {
        (from..=to).find_map(|s| watch.check(beats, phase, t0 + Duration::from_secs(s)).map(|v| (s, v)))
    }

    #[test]
    fn a_shard_that_stops_beating_is_named_and_one_that_never_started_or_stopped_is_not() {
        let beats = Heartbeats::new(3);
        let t0 = Instant::now();
        let mut watch = Watch::new(LIMITS, 3, t0);
        beats.beat(0);
        beats.beat(1);
        assert_eq!(watch_over(&mut watch, &beats, Phase::Running, t0, 1, 3), None);
        beats.beat(0);
        beats.stopped(1);
        assert_eq!(watch_over(&mut watch, &beats, Phase::Running, t0, 4, 4), None);
        beats.beat(1);
        // Shard 0 last beat at 4 s; shard 2 never started; shard 1 stopped
        // (and stays stopped).
        assert_eq!(
            watch_over(&mut watch, &beats, Phase::Running, t0, 5, 20),
            Some((10, Verdict::Stalled { shard: 0, silent: Duration::from_secs(6) }))
        );
    }

    #[test]
    fn a_drain_may_take_its_limit_and_no_more() {
        let beats = Heartbeats::new(1);
        let t0 = Instant::now();
        let mut watch = Watch::new(LIMITS, 1, t0);
        assert_eq!(watch_over(&mut watch, &beats, Phase::Running, t0, 1, 100), None);
        assert_eq!(
            watch_over(&mut watch, &beats, Phase::Draining, t0, 101, 200),
            Some((132, Verdict::DrainOverrun { draining: Duration::from_secs(31) }))
        );
        let limits = Limits::new(Duration::from_secs(10), Duration::from_secs(2), Duration::from_secs(60)).unwrap();
        assert_eq!(limits.drain, Duration::from_secs(2 + 60) + DRAIN_MARGIN);
        assert!(Limits::new(Duration::ZERO, Duration::ZERO, Duration::ZERO).is_none(), "0 turns it off");
    }

    #[test]
    fn a_pause_of_the_whole_process_counts_against_no_shard() {
        let beats = Heartbeats::new(1);
        let t0 = Instant::now();
        let mut watch = Watch::new(LIMITS, 1, t0);
        beats.beat(0);
        assert_eq!(watch_over(&mut watch, &beats, Phase::Draining, t0, 1, 2), None);
        // SIGSTOP for a minute, then SIGCONT: the watchdog wakes first.
        assert_eq!(watch_over(&mut watch, &beats, Phase::Draining, t0, 62, 62), None);
        beats.beat(0);
        assert_eq!(watch_over(&mut watch, &beats, Phase::Draining, t0, 63, 63), None);
        // A real stall afterwards is still caught.
        assert_eq!(
            watch_over(&mut watch, &beats, Phase::Draining, t0, 64, 200),
            Some((69, Verdict::Stalled { shard: 0, silent: Duration::from_secs(6) }))
        );
    }
}
