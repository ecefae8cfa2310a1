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
//! connections, which read their round's outcome.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Poll, Waker};

use crate::batch::ack::Round;

/// What an answer waits for: a round number, and in durable mode the round
/// whose outcome decides the answer.
#[derive(Debug, Clone)]
pub struct Ticket {
    number: u64,
    round: Option<Arc<Round>>,
}

/// A round handed off in durable mode, waiting for its sinks.
struct Unsettled {
    number: u64,
    round: Arc<Round>,
    /// Connections waiting for this round's outcome.
    waiters: Vec<Waker>,
}

struct State {
    /// Round that new appends belong to.
    next: u64,
    /// Last round handed off.
    handed: u64,
    /// Connections waiting for a hand-off.
    waiters: Vec<Waker>,
    /// The flusher, parked until someone waits.
    flusher: Option<Waker>,
    /// Durable mode: rounds handed off and not seen settled, by number.
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
        Self {
            state: RefCell::new(State {
                next: 1,
                handed: 0,
                waiters: Vec::new(),
                flusher: None,
                unsettled: VecDeque::new(),
                settler: None,
            }),
        }
    }
}

impl GroupCommit {
    /// The ticket for records appended now; `round` is the open round in
    /// durable mode.
    pub fn ticket(&self, round: Option<Arc<Round>>) -> Ticket {
        Ticket { number: self.state.borrow().next, round }
    }

    /// Completes once the ticket's round was handed off and, in durable
    /// mode, settled; `true` unless a sink could not make it durable.
    pub async fn wait(&self, ticket: &Ticket) -> bool {
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
        let Some(round) = &ticket.round else { return true };
        poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            if round.is_settled() {
                return Poll::Ready(());
            }
            // Not settled, so still listed: the settler removes a round
            // only once it is settled.
            if let Ok(i) = s.unsettled.binary_search_by_key(&ticket.number, |u| u.number) {
                s.unsettled[i].waiters.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await;
        round.outcome()
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
    /// mode closed as `round`); wake its waiters.
    pub fn complete_round(&self, round: Option<Arc<Round>>) {
        let waiters = {
            let mut s = self.state.borrow_mut();
            s.handed = s.next;
            // A round that settled already (nothing batched, or every batch
            // refused by a full queue) needs no settler.
            if let Some(round) = round.filter(|r| !r.is_settled()) {
                // The settler's waker goes to the round here rather than
                // the settler being woken for every round handed off.
                let pending = s.settler.as_ref().is_none_or(|w| round.poll_settled(w).is_pending());
                if pending {
                    let number = s.next;
                    s.unsettled.push_back(Unsettled { number, round, waiters: Vec::new() });
                }
            }
            s.next += 1;
            std::mem::take(&mut s.waiters)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// One round through the flusher's steps; the sink thread confirms
    /// its share, or loses it.
    async fn one_round(commit: &Rc<GroupCommit>, lose: bool) -> bool {
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
                assert!(one_round(&commit, false).await, "a confirmed round is answered as accepted");
                assert!(!one_round(&commit, true).await, "a lost share fails its round");
                assert!(one_round(&commit, false).await, "the next round starts clean");
                settler.cancel();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
