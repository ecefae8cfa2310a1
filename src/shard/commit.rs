//! Group commit: a response that acknowledges an event is written only
//! after the event's batch was handed to its sink (and, in durable mode,
//! after every sink made it durable), and one hand-off covers every
//! connection that appended in the same scheduler round.
//!
//! A connection that appended takes a ticket (the round its records belong
//! to) and waits for it. Waiting wakes the shard's flusher task, which is
//! queued behind every connection task already runnable; by the time it
//! runs, all of them have appended, and one `try_send` per lane hands the
//! lot over. Under load a round covers many requests; when idle it costs one
//! extra task switch.
//!
//! In durable mode a handed-off round waits in a list until its sinks
//! confirm or drop their shares ([`crate::batch::ack`]). The settler task
//! is the only one woken from the sinks' threads: it takes every settled
//! round off the list, in whatever order they settle, and wakes their
//! connections, which read their round's outcome. A sweeper task takes
//! rounds that outlived `delivery_timeout` off the list, so that no
//! request needs a timer of its own.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use crate::batch::ack::Round;

/// What an answer waits for: a round number, and in durable mode the round
/// whose outcome decides the answer.
#[derive(Debug, Clone)]
pub struct Ticket {
    number: u64,
    round: Option<Arc<Round>>,
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Handed off (fast mode) or durable in every sink.
    Accepted,
    /// A sink could not take or keep a record of the round.
    Lost,
    /// The round was not settled within `delivery_timeout`.
    TimedOut,
}

/// A round handed off in durable mode, waiting for its sinks.
struct Unsettled {
    number: u64,
    handed: Instant,
    round: Arc<Round>,
    /// Connections waiting for this round's outcome.
    waiters: Vec<Waker>,
}

#[derive(Default)]
struct State {
    /// Round that new appends belong to.
    next: u64,
    /// Last round handed off.
    handed: u64,
    /// Connections waiting for the hand-off of round `next`.
    waiters: Vec<Waker>,
    /// The flusher, parked until someone waits.
    flusher: Option<Waker>,
    /// Durable mode: rounds handed off and neither settled nor expired,
    /// by number.
    unsettled: VecDeque<Unsettled>,
    /// The settler's waker, registered with every unsettled round.
    settler: Option<Waker>,
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
    /// The ticket for records appended now; `round` is the open round in
    /// durable mode.
    pub fn ticket(&self, round: Option<Arc<Round>>) -> Ticket {
        Ticket { number: self.state.borrow().next, round }
    }

    /// Completes once the ticket's round was handed off and, in durable
    /// mode, settled or expired.
    pub async fn wait(&self, ticket: &Ticket) -> Outcome {
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            if s.handed >= ticket.number {
                return Poll::Ready(());
            }
            s.waiters.push(cx.waker().clone());
            if let Some(flusher) = s.flusher.take() {
                flusher.wake();
            }
            Poll::Pending
        })
        .await;
        let Some(round) = &ticket.round else { return Outcome::Accepted };
        poll_fn(|cx| {
            if round.is_settled() {
                return Poll::Ready(if round.outcome() { Outcome::Accepted } else { Outcome::Lost });
            }
            // Unsettled rounds leave the list only when they expire.
            let mut s = self.state.borrow_mut();
            match s.unsettled.binary_search_by_key(&ticket.number, |u| u.number) {
                Ok(i) => {
                    s.unsettled[i].waiters.push(cx.waker().clone());
                    Poll::Pending
                }
                Err(_) => Poll::Ready(Outcome::TimedOut),
            }
        })
        .await
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

    /// For the flusher: the current round was handed off (and in durable
    /// mode closed as `round`). Its waiters are woken, or in durable mode
    /// handed to the round, to be woken once it settles.
    pub fn complete_round(&self, round: Option<Arc<Round>>) {
        let waiters = {
            let mut s = self.state.borrow_mut();
            s.handed = s.next;
            let mut waiters = std::mem::take(&mut s.waiters);
            // A round that settled already (nothing batched, or every batch
            // refused by a full queue) needs no settler. Otherwise the
            // settler's waker goes to the round here rather than the
            // settler being woken for every round.
            if let Some(round) = round.filter(|r| !r.is_settled()) {
                if s.settler.as_ref().is_none_or(|w| round.poll_settled(w).is_pending()) {
                    let number = s.next;
                    let waiters = std::mem::take(&mut waiters);
                    s.unsettled.push_back(Unsettled { number, handed: Instant::now(), round, waiters });
                }
            }
            s.next += 1;
            waiters
        };
        for w in waiters {
            w.wake();
        }
    }

    /// The settler task's body (durable mode): takes settled rounds off
    /// the list and wakes their connections. It is woken by the sinks'
    /// threads only, through the waker each unsettled round holds.
    pub async fn run_settler(&self) {
        poll_fn(|cx| {
            let mut woken = Vec::new();
            {
                let mut s = self.state.borrow_mut();
                s.settler = Some(cx.waker().clone());
                s.unsettled.retain_mut(|u| {
                    let settled = u.round.poll_settled(cx.waker()).is_ready();
                    if settled {
                        woken.append(&mut u.waiters);
                    }
                    !settled
                });
            }
            for w in woken {
                w.wake();
            }
            Poll::<()>::Pending
        })
        .await;
    }

    /// The sweeper task's body (durable mode): rounds unsettled `timeout`
    /// after their hand-off leave the list, and their connections answer
    /// 503. Checked every tenth of the timeout (10 ms to 1 s).
    pub async fn run_sweeper(&self, timeout: Duration) {
        let every = (timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            glommio::timer::sleep(every).await;
            let mut woken = Vec::new();
            {
                let mut s = self.state.borrow_mut();
                let now = Instant::now();
                while s.unsettled.front().is_some_and(|u| now.duration_since(u.handed) >= timeout) {
                    woken.append(&mut s.unsettled.pop_front().expect("checked").waiters);
                }
            }
            for w in woken {
                w.wake();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// One round through the flusher's steps; the sink thread confirms
    /// its share, or loses it.
    async fn one_round(commit: &Rc<GroupCommit>, lose: bool) -> Outcome {
        let (round, own) = Round::open();
        let share = round.share();
        let ticket = commit.ticket(Some(round.clone()));
        let waiter = glommio::spawn_local({
            let c = commit.clone();
            async move { c.wait(&ticket).await }
        });
        commit.round_wanted().await;
        own.confirm();
        commit.complete_round(Some(round));
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(10));
            if lose {
                drop(share);
            } else {
                share.confirm();
            }
        });
        waiter.await
    }

    #[test]
    fn durable_answers_wait_for_their_sinks_and_learn_the_outcome() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let commit = Rc::new(GroupCommit::default());
                let settler = glommio::spawn_local({
                    let c = commit.clone();
                    async move { c.run_settler().await }
                })
                .detach();
                assert_eq!(one_round(&commit, false).await, Outcome::Accepted);
                assert_eq!(one_round(&commit, true).await, Outcome::Lost, "a lost share fails its round");
                assert_eq!(one_round(&commit, false).await, Outcome::Accepted, "the next round starts clean");
                settler.cancel();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
