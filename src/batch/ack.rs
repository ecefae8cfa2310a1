//! Durable answers: a shard's round of batches and the shares of it that
//! sinks hold until the records they carry are durable.
//!
//! In `delivery = "durable"` mode every batch a shard hands off carries a
//! [`Share`] of the shard's current [`Round`]. A sink confirms its share
//! once the records are durable (a file block synced, a Kafka record
//! acknowledged by the broker or synced to the spool); a share dropped
//! without confirmation (records lost, a full queue, a flush thread gone)
//! marks the round failed. When the last share is gone the round is
//! settled and the shard is woken, from whichever thread that was.
//!
//! Failing is the default on purpose: no code path can lose a record and
//! still let its request be answered as accepted.

use std::future::poll_fn;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Poll, Waker};

use atomic_waker::AtomicWaker;

/// One group commit round of one shard, shared with the sinks holding its
/// batches.
#[derive(Debug)]
pub struct Round {
    /// Shares not yet confirmed or dropped.
    pending: AtomicUsize,
    /// A share was dropped unconfirmed.
    failed: AtomicBool,
    /// The shard task waiting for the round to settle.
    waker: AtomicWaker,
}

impl Round {
    /// A new round and the share its shard keeps while it still adds
    /// batches (so the round cannot settle before it is complete).
    pub fn open() -> (Arc<Self>, Share) {
        let round =
            Arc::new(Self { pending: AtomicUsize::new(1), failed: AtomicBool::new(false), waker: AtomicWaker::new() });
        let own = Share { round: round.clone() };
        (round, own)
    }

    /// A share for one more holder.
    pub fn share(self: &Arc<Self>) -> Share {
        self.pending.fetch_add(1, Ordering::Relaxed);
        Share { round: self.clone() }
    }

    /// Whether every share was confirmed or dropped.
    pub fn is_settled(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// Ready once the round is settled; until then `waker` is woken (from
    /// whichever thread releases the last share).
    pub fn poll_settled(&self, waker: &Waker) -> Poll<()> {
        if self.is_settled() {
            return Poll::Ready(());
        }
        self.waker.register(waker);
        // A share released between the check and the registration woke
        // nobody: look again.
        if self.is_settled() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Completes when every share was confirmed or dropped; `true` when
    /// every one was confirmed.
    pub async fn settled(&self) -> bool {
        poll_fn(|cx| self.poll_settled(cx.waker())).await;
        self.outcome()
    }

    /// Whether no share was dropped unconfirmed (so far).
    pub fn outcome(&self) -> bool {
        !self.failed.load(Ordering::Acquire)
    }
}

/// A claim on a [`Round`]: confirm it once the records it covers are
/// durable; dropping it unconfirmed fails the round.
#[derive(Debug)]
pub struct Share {
    round: Arc<Round>,
}

impl Share {
    /// Another share of the same round, for a part of what this one covers
    /// (one Kafka record of a batch).
    pub fn split(&self) -> Share {
        self.round.share()
    }

    /// What this share covers is durable (or covered by another share).
    pub fn confirm(self) {
        release(&self.into_round());
    }

    /// The share's round, without the failure its drop would report.
    fn into_round(self) -> Arc<Round> {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again; the Arc is moved
        // out exactly once.
        unsafe { std::ptr::read(&this.round) }
    }

    /// The share as a pointer, for a C library's per-message opaque; never
    /// null, and aligned (so never a small integer).
    pub fn into_raw(self) -> *mut std::ffi::c_void {
        Arc::into_raw(self.into_round()).cast_mut().cast()
    }

    /// The share behind a pointer from [`Share::into_raw`].
    ///
    /// # Safety
    /// `ptr` came from `into_raw` and is turned back exactly once.
    pub unsafe fn from_raw(ptr: *mut std::ffi::c_void) -> Self {
        // SAFETY: the caller passes a pointer from `into_raw`, once.
        Self { round: unsafe { Arc::from_raw(ptr.cast_const().cast::<Round>()) } }
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        self.round.failed.store(true, Ordering::Release);
        release(&self.round);
    }
}

fn release(round: &Round) {
    if round.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
        round.waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settle(round: &Round) -> Option<bool> {
        futures_lite::future::block_on(futures_lite::future::poll_once(round.settled()))
    }

    #[test]
    fn a_round_settles_when_every_share_is_confirmed() {
        let (round, own) = Round::open();
        let a = round.share();
        let b = a.split();
        own.confirm();
        a.confirm();
        assert_eq!(settle(&round), None, "one share is still out");
        let t = std::thread::spawn(move || b.confirm());
        t.join().unwrap();
        assert_eq!(settle(&round), Some(true));
    }

    #[test]
    fn a_dropped_share_fails_the_round() {
        let (round, own) = Round::open();
        let lost = round.share();
        own.confirm();
        drop(lost);
        assert_eq!(settle(&round), Some(false));
    }

    #[test]
    fn a_share_released_on_another_thread_wakes_the_waiter() {
        let (round, own) = Round::open();
        let far = round.share();
        own.confirm();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            far.confirm();
        });
        assert!(futures_lite::future::block_on(round.settled()));
        t.join().unwrap();
    }
}
