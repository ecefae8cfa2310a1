//! A shard's open connections: counted against `max_connections`, closed
//! when idle during a drain, and the memory a burst of them took given
//! back once they are gone.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Duration;

use slab::Slab;

/// Connections closed since the most open at once, after which the shard
/// gives freed memory back to the system. The allocator keeps what a
/// burst of connections freed (their buffers and tasks, spread over its
/// heaps), so a process that once held thousands of connections would keep
/// their memory for good. Steady churn keeps the open count level and
/// never triggers it.
const GIVE_BACK_AFTER_CLOSES: usize = 1024;

/// How often the shard checks whether to give memory back.
const GIVE_BACK_CHECK: Duration = Duration::from_secs(1);

/// An open connection, as the shard sees it when draining.
struct OpenConnection {
    fd: RawFd,
    idle: Rc<Cell<bool>>,
}

/// The registry of a shard's open connections.
#[derive(Default)]
pub struct OpenConnections {
    open: RefCell<Slab<OpenConnection>>,
    /// Most open at once since memory was last given back.
    peak: Cell<usize>,
}

impl OpenConnections {
    /// Registers the connection on `fd`; `idle` tells whether it waits for
    /// a new request. Returns its key.
    pub fn insert(&self, fd: RawFd, idle: Rc<Cell<bool>>) -> usize {
        let mut open = self.open.borrow_mut();
        let key = open.insert(OpenConnection { fd, idle });
        self.peak.set(self.peak.get().max(open.len()));
        key
    }

    /// Forgets the connection `key`, before its socket is closed.
    pub fn remove(&self, key: usize) {
        self.open.borrow_mut().remove(key);
    }

    /// How many are open.
    pub fn len(&self) -> usize {
        self.open.borrow().len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.open.borrow().is_empty()
    }

    /// Ends the wait of every idle connection, which then closes.
    pub fn close_idle(&self) {
        for (_, c) in self.open.borrow().iter() {
            if c.idle.get() {
                // SAFETY: `fd` belongs to a live connection (it is removed
                // from the registry before its stream is dropped); shutting
                // down the read side only makes its pending read return 0.
                unsafe { libc::shutdown(c.fd, libc::SHUT_RD) };
            }
        }
    }

    /// Runs for the life of the shard: once many connections have closed
    /// since the most were open, returns the freed memory to the system.
    pub async fn give_back_memory(&self) {
        loop {
            glommio::timer::sleep(GIVE_BACK_CHECK).await;
            let open = self.len();
            if self.peak.get() - open >= GIVE_BACK_AFTER_CLOSES {
                self.peak.set(open);
                give_back();
            }
        }
    }
}

/// Returns the allocator's free memory to the system. glibc's
/// `malloc_trim` releases free pages inside its heaps as well as at their
/// ends; it walks every arena, a few milliseconds after a large burst.
#[cfg(target_env = "gnu")]
fn give_back() {
    // SAFETY: malloc_trim only touches the allocator's own free lists.
    unsafe { libc::malloc_trim(0) };
}

/// Other allocators return memory by themselves.
#[cfg(not(target_env = "gnu"))]
fn give_back() {}
