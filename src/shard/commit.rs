//! Group commit: a response that acknowledges an event is written only
//! after the event's batch was handed to its sink, and one hand-off covers
//! every connection that appended in the same scheduler round.
//!
//! A connection that appended takes a ticket (the round its records belong
//! to) and waits for it. Waiting wakes the shard's flusher task, which is
//! queued behind every connection task already runnable; by the time it
//! runs, all of them have appended, and one `try_send` per lane hands the
//! lot over. Under load a round covers many requests; when idle it costs one
//! extra task switch.

use std::cell::RefCell;
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// A round number; settled once the round's batches were handed off.
pub type Ticket = u64;

#[derive(Default)]
struct State {
    /// Round that new appends belong to.
    next: Ticket,
    /// Last round handed off.
    done: Ticket,
    /// Connections waiting for a round.
    waiters: Vec<Waker>,
    /// The flusher, parked until someone waits.
    flusher: Option<Waker>,
}

/// One shard's group-commit state. Single-threaded by construction.
pub struct GroupCommit {
    state: RefCell<State>,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self { state: RefCell::new(State { next: 1, ..State::default() }) }
    }
}

impl GroupCommit {
    /// The ticket for records appended now.
    pub fn ticket(&self) -> Ticket {
        self.state.borrow().next
    }

    /// Completes once round `ticket` was handed off.
    pub async fn wait(&self, ticket: Ticket) {
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            if s.done >= ticket {
                return Poll::Ready(());
            }
            s.waiters.push(cx.waker().clone());
            if let Some(flusher) = s.flusher.take() {
                flusher.wake();
            }
            Poll::Pending
        })
        .await;
    }

    /// For the flusher: completes when a connection waits for a round.
    pub async fn round_wanted(&self) {
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            if s.waiters.is_empty() {
                s.flusher = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }

    /// For the flusher: the current round was handed off; wake its waiters.
    pub fn complete_round(&self) {
        let waiters = {
            let mut s = self.state.borrow_mut();
            s.done = s.next;
            s.next += 1;
            std::mem::take(&mut s.waiters)
        };
        for w in waiters {
            w.wake();
        }
    }
}
