//! The process lifecycle, shared by every shard as one atomic.
//!
//! `Running` → (SIGTERM) `Draining`: `/ping` answers 503 so load balancers
//! take the host out, traffic is still served for `shutdown_delay` →
//! `Stopping`: listeners close, connections finish their current requests
//! and close, then sinks flush, all within one `shutdown_timeout` counted
//! from the moment the phase began; then the process exits.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Lifecycle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Serving normally.
    Running = 0,
    /// Shutdown signalled: `/ping` fails, everything else still served.
    Draining = 1,
    /// Listeners closed; connections are finishing.
    Stopping = 2,
}

/// The shared lifecycle state.
#[derive(Debug, Default)]
pub struct Lifecycle {
    phase: AtomicU8,
    /// When `Stopping` began.
    stopping_since: OnceLock<Instant>,
}

/// `/ping` body while running.
pub const PING_OK: &str = "pong";
/// `/ping` body once shutdown has begun (the original's wording).
pub const PING_SHUTTING_DOWN: &str = "No p*ng for you, shutting down";

impl Lifecycle {
    /// Current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Running,
            1 => Phase::Draining,
            _ => Phase::Stopping,
        }
    }

    /// Moves forward to `phase` (never backwards).
    pub fn advance(&self, phase: Phase) {
        if phase == Phase::Stopping {
            self.stopping_since.get_or_init(Instant::now);
        }
        self.phase.fetch_max(phase as u8, Ordering::AcqRel);
    }

    /// When the drain of connections and sinks must be over: `timeout`
    /// after `Stopping` began (or after now, before it has).
    pub fn drain_deadline(&self, timeout: Duration) -> Instant {
        *self.stopping_since.get().unwrap_or(&Instant::now()) + timeout
    }

    /// Whether `/ping` should report the host healthy.
    pub fn is_live(&self) -> bool {
        self.phase() == Phase::Running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_moves_forward() {
        let l = Lifecycle::default();
        assert!(l.is_live());
        let before = Instant::now();
        l.advance(Phase::Stopping);
        l.advance(Phase::Draining);
        assert_eq!(l.phase(), Phase::Stopping);
        assert!(!l.is_live());
        // One deadline, however often it is asked for.
        let first = l.drain_deadline(Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(l.drain_deadline(Duration::from_secs(10)), first);
        assert!(first >= before + Duration::from_secs(10));
    }
}
