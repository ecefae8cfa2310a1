//! Which of a shard's connections have input to read, from one epoll
//! instance in edge-triggered mode: the way nginx waits.
//!
//! glommio waits for each read with a one-shot io_uring poll, armed again
//! for every request, and the kernel hands each completion to the shard as
//! task work with an inter-processor interrupt even while the shard is
//! busy (17% of the shard's time at saturation, in
//! `asm_sysvec_reschedule_ipi`). An epoll registration is made once per
//! connection instead; arriving data only puts the connection on epoll's
//! ready list, and the shard collects that list with one `epoll_wait` per
//! round of its ready tasks. The ring is used only when the shard has
//! nothing else to do, to wait for the epoll descriptor itself.
//!
//! A wait's deadline is kept in its slot and checked by a sweep every
//! [`SWEEP_EVERY`], instead of a timer per wait: inserting and removing a
//! glommio timer cost about 900 instructions per request, for deadlines
//! (head, idle, linger) of seconds.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::AsyncReadExt;
use slab::Slab;

/// Events collected by one `epoll_wait`; more are taken in the next round.
const EVENTS_PER_WAIT: usize = 256;

/// How often expired waits are ended: a deadline fires up to this late.
pub const SWEEP_EVERY: Duration = Duration::from_millis(50);

/// One registered connection, as the dispatcher sees it.
#[derive(Default)]
struct Slot {
    /// Input may have arrived since the connection last found none.
    ready: bool,
    /// The connection's task, while it waits.
    waker: Option<Waker>,
    /// When the wait ends without input.
    deadline: Option<Instant>,
    /// The sweep found the deadline passed.
    expired: bool,
}

/// A shard's epoll instance and the connections registered with it.
pub struct Readiness {
    epoll: OwnedFd,
    slots: RefCell<Slab<Slot>>,
}

impl Readiness {
    /// A new, empty epoll instance.
    ///
    /// # Errors
    /// The process is out of descriptors.
    pub fn new() -> io::Result<Rc<Self>> {
        // SAFETY: plain system call; the descriptor it returns is owned below.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Rc::new(Self { epoll, slots: RefCell::default() }))
    }

    /// Watches `fd` for input until the returned registration is dropped
    /// (before `fd` is closed).
    ///
    /// # Errors
    /// The kernel refused the registration (`max_user_watches`).
    pub fn register(self: &Rc<Self>, fd: RawFd) -> io::Result<Registration> {
        // Ready at first: the connection reads once before it waits.
        let token = self.slots.borrow_mut().insert(Slot { ready: true, ..Slot::default() });
        let mut event =
            libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32, u64: token as u64 };
        // SAFETY: both descriptors are open; `event` is a valid epoll_event.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) } < 0 {
            let error = io::Error::last_os_error();
            self.slots.borrow_mut().remove(token);
            return Err(error);
        }
        Ok(Registration { readiness: self.clone(), token, fd })
    }

    /// Runs for the life of the shard: wakes the connections that have
    /// input, and those whose wait ran out.
    pub async fn run(&self) {
        futures_lite::future::zip(self.dispatch(), self.sweep()).await;
    }

    /// Hands the events epoll collected to the connections waiting for them.
    async fn dispatch(&self) {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; EVENTS_PER_WAIT];
        loop {
            if self.hand_out(&mut events) {
                // Behind the tasks just woken: the next round's events
                // are collected after they ran.
                futures_lite::future::yield_now().await;
            } else {
                self.epoll_readable().await;
            }
        }
    }

    /// Collects the events ready now and marks their connections ready,
    /// waking those that wait; whether there were any.
    fn hand_out(&self, events: &mut [libc::epoll_event; EVENTS_PER_WAIT]) -> bool {
        // SAFETY: `events` has room for EVENTS_PER_WAIT entries; a zero
        // timeout never blocks the shard.
        let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), EVENTS_PER_WAIT as i32, 0) };
        let mut slots = self.slots.borrow_mut();
        for event in &events[..n.max(0) as usize] {
            if let Some(slot) = slots.get_mut(event.u64 as usize) {
                slot.ready = true;
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
            }
        }
        n > 0
    }

    /// Ends the waits whose deadline passed, every [`SWEEP_EVERY`].
    async fn sweep(&self) {
        loop {
            glommio::timer::sleep(SWEEP_EVERY).await;
            let now = Instant::now();
            for (_, slot) in self.slots.borrow_mut().iter_mut() {
                if slot.deadline.is_some_and(|d| d <= now) {
                    slot.deadline = None;
                    slot.expired = true;
                    if let Some(waker) = slot.waker.take() {
                        waker.wake();
                    }
                }
            }
        }
    }

    /// Waits in the shard's ring until the epoll instance has events.
    ///
    /// glommio has no public way to wait for an arbitrary descriptor, but
    /// a stream made from one arms a poll for input on it at once, and a
    /// read waits for that poll. The read of an epoll descriptor then
    /// fails (it is not a socket), which only says the poll fired. The
    /// stream owns a duplicate, so that dropping it leaves the instance
    /// open.
    async fn epoll_readable(&self) {
        // SAFETY: duplicates an open descriptor; the duplicate is owned below.
        let dup = unsafe { libc::fcntl(self.epoll.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            // Out of descriptors: look again soon instead.
            glommio::timer::sleep(Duration::from_millis(1)).await;
            return;
        }
        // SAFETY: `dup` is a fresh descriptor that the stream now owns.
        let mut watch = unsafe { glommio::net::TcpStream::from_raw_fd(dup) };
        let _ = watch.read(&mut [0; 1]).await;
    }
}

/// A connection registered for input; deregisters when dropped.
pub struct Registration {
    readiness: Rc<Readiness>,
    token: usize,
    fd: RawFd,
}

impl Registration {
    /// Reads what has arrived into `buf`, waiting up to `timeout` (and at
    /// most [`SWEEP_EVERY`] more) for input when none has, then `TimedOut`.
    /// `Ok(0)` is the end of the input.
    ///
    /// # Errors
    /// The socket failed, or no input came in time.
    pub async fn read(&self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let mut deadline = None;
        loop {
            if !self.take_ready() {
                let deadline = *deadline.get_or_insert_with(|| Instant::now() + timeout);
                if !(Wait { registration: self, deadline }).await {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                continue;
            }
            // SAFETY: the descriptor is open while registered, and `buf` is
            // valid for writes of `buf.len()` bytes.
            let n = unsafe { libc::recv(self.fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
            if n < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::WouldBlock {
                    continue;
                }
                return Err(error);
            }
            let n = n as usize;
            // A read that did not fill the buffer took all there was: more
            // input will come with an event. A full one may have left some.
            if n == buf.len() && n > 0 {
                self.mark_ready();
            }
            return Ok(n);
        }
    }

    /// Whether input may be there: an event came, or the last read filled
    /// its buffer, since a read last found none.
    pub fn may_have_input(&self) -> bool {
        self.readiness.slots.borrow()[self.token].ready
    }

    /// Whether input may be there, forgetting it: the next read that finds
    /// none waits for an event.
    fn take_ready(&self) -> bool {
        let mut slots = self.readiness.slots.borrow_mut();
        std::mem::take(&mut slots[self.token].ready)
    }

    fn mark_ready(&self) {
        self.readiness.slots.borrow_mut()[self.token].ready = true;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: the descriptor is still open (the registration is dropped
        // before its stream); removing it from the interest list only.
        unsafe {
            libc::epoll_ctl(self.readiness.epoll.as_raw_fd(), libc::EPOLL_CTL_DEL, self.fd, std::ptr::null_mut())
        };
        self.readiness.slots.borrow_mut().remove(self.token);
    }
}

/// Until the dispatcher marks the connection ready (then `true`) or the
/// sweep finds `deadline` passed (then `false`).
struct Wait<'a> {
    registration: &'a Registration,
    deadline: Instant,
}

impl Future for Wait<'_> {
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut slots = self.registration.readiness.slots.borrow_mut();
        let slot = &mut slots[self.registration.token];
        if slot.ready {
            return Poll::Ready(true);
        }
        if std::mem::take(&mut slot.expired) {
            return Poll::Ready(false);
        }
        slot.waker = Some(cx.waker().clone());
        slot.deadline = Some(self.deadline);
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        // A wait that ended leaves no waker or deadline behind.
        if let Some(slot) = self.registration.readiness.slots.borrow_mut().get_mut(self.registration.token) {
            slot.waker = None;
            slot.deadline = None;
            slot.expired = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    use super::*;

    /// One end of a socket pair registered with a running dispatcher (its
    /// descriptor, open until the test's future ends), and the other end
    /// to write to.
    struct Pair {
        readiness: Rc<Readiness>,
        input: Registration,
        ours: RawFd,
        theirs: UnixStream,
    }

    /// Runs `test` on a glommio executor, with a dispatcher, on a fresh pair.
    fn on_shard(test: impl FnOnce(Pair) -> Pin<Box<dyn Future<Output = ()>>> + Send + 'static) {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async move {
                let readiness = Readiness::new().unwrap();
                let dispatcher = glommio::spawn_local({
                    let r = readiness.clone();
                    async move { r.run().await }
                })
                .detach();
                let (ours, theirs) = UnixStream::pair().unwrap();
                let input = readiness.register(ours.as_raw_fd()).unwrap();
                test(Pair { readiness, input, ours: ours.as_raw_fd(), theirs }).await;
                drop(ours);
                dispatcher.cancel();
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn a_read_waits_for_input_and_wakes_when_it_arrives() {
        on_shard(|Pair { input, mut theirs, .. }| {
            Box::pin(async move {
                let writer = glommio::spawn_local(async move {
                    glommio::timer::sleep(Duration::from_millis(30)).await;
                    theirs.write_all(b"GET /").unwrap();
                    theirs
                });
                let started = Instant::now();
                let mut buf = [0; 64];
                let n = input.read(&mut buf, Duration::from_secs(10)).await.unwrap();
                assert_eq!(&buf[..n], b"GET /");
                assert!(started.elapsed() >= Duration::from_millis(30), "the read waited for the input");
                let mut theirs = writer.await;
                // And again: the wait is armed anew after each drained read.
                theirs.write_all(b"ping").unwrap();
                let n = input.read(&mut buf, Duration::from_secs(10)).await.unwrap();
                assert_eq!(&buf[..n], b"ping");
            })
        });
    }

    #[test]
    fn input_larger_than_the_buffer_is_read_without_a_new_event() {
        on_shard(|Pair { input, mut theirs, .. }| {
            Box::pin(async move {
                theirs.write_all(b"0123456789").unwrap();
                let mut got = Vec::new();
                let mut buf = [0; 4];
                // Edge-triggered epoll reports the ten bytes once; the
                // rest after a full read must not wait for another event.
                while got.len() < 10 {
                    let n = input.read(&mut buf, Duration::from_millis(500)).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(got, b"0123456789");
            })
        });
    }

    #[test]
    fn a_read_without_input_times_out() {
        on_shard(|Pair { input, theirs, .. }| {
            Box::pin(async move {
                let started = Instant::now();
                let error = input.read(&mut [0; 16], Duration::from_millis(50)).await.unwrap_err();
                assert_eq!(error.kind(), io::ErrorKind::TimedOut);
                assert!(started.elapsed() >= Duration::from_millis(50));
                // The peer stayed open all along: silence, not an end of input.
                drop(theirs);
            })
        });
    }

    #[test]
    fn shutting_down_the_read_side_ends_a_waiting_read() {
        on_shard(|Pair { input, ours, theirs, .. }| {
            Box::pin(async move {
                // The read finds nothing and waits; the drain's shutdown
                // must end it with the end of input, not a timeout.
                glommio::spawn_local(async move {
                    glommio::timer::sleep(Duration::from_millis(30)).await;
                    // SAFETY: `ours` is open until the test's future ends,
                    // after the read that this shutdown ends.
                    unsafe { libc::shutdown(ours, libc::SHUT_RD) };
                })
                .detach();
                let n = input.read(&mut [0; 16], Duration::from_secs(10)).await.unwrap();
                assert_eq!(n, 0);
                // The peer stayed open: the end of input was the shutdown's.
                drop(theirs);
            })
        });
    }

    #[test]
    fn input_may_be_there_until_a_read_drains_it_and_again_after_an_event() {
        on_shard(|Pair { input, mut theirs, .. }| {
            Box::pin(async move {
                // A new connection reads once before it waits.
                assert!(input.may_have_input());
                theirs.write_all(b"GET /").unwrap();
                let n = input.read(&mut [0; 64], Duration::from_secs(10)).await.unwrap();
                assert_eq!(n, 5);
                // The read did not fill its buffer: it took all there was.
                assert!(!input.may_have_input());
                theirs.write_all(b"ping").unwrap();
                let started = Instant::now();
                while !input.may_have_input() {
                    assert!(started.elapsed() < Duration::from_secs(10), "no event for the new input");
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                }
            })
        });
    }

    #[test]
    fn a_dropped_registration_frees_its_slot() {
        on_shard(|Pair { readiness, input, .. }| {
            Box::pin(async move {
                assert_eq!(readiness.slots.borrow().len(), 1);
                drop(input);
                assert_eq!(readiness.slots.borrow().len(), 0);
            })
        });
    }
}
