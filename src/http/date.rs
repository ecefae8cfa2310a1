//! The `Date:` header, formatted at most once a second per shard.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Caches the formatted `Date: ...\r\n` line for the current second. One per
/// shard; formatting a date per response would cost more than the rest of
/// the response head together.
#[derive(Debug, Default)]
pub struct DateCache {
    inner: RefCell<(u64, String)>,
}

impl DateCache {
    /// Calls `f` with the `Date: ...\r\n` header line for `now`.
    pub fn with_line<R>(&self, now: SystemTime, f: impl FnOnce(&[u8]) -> R) -> R {
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut cached = self.inner.borrow_mut();
        if cached.0 != secs || cached.1.is_empty() {
            cached.0 = secs;
            cached.1 = format!("Date: {}\r\n", httpdate::fmt_http_date(now));
        }
        f(cached.1.as_bytes())
    }
}
