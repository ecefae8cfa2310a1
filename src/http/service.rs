//! What the HTTP layer asks of the collector ([`Service`]), the limits it
//! enforces ([`Limits`]) and who is at the other end ([`Peer`]).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use super::{DateCache, Error, Request, Response};

/// Framing limits and timeouts of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request line plus headers; more gets 431, or 414 when the request line alone is longer.
    pub max_head_bytes: usize,
    /// Default body limit (a [`Service`] may lower or raise it per path); more gets 413.
    pub max_body_bytes: usize,
    /// A request must be complete this long after its first byte, else 408.
    pub request_timeout: Duration,
    /// An idle keep-alive connection is closed after this long.
    pub idle_timeout: Duration,
}

/// What the collector does with requests; the HTTP layer knows nothing else.
pub trait Service {
    /// Something the answers written so far depend on; the connection waits
    /// for [`Service::settle`] of the latest ticket before writing them.
    type Ticket;

    /// Largest body accepted for `path`.
    fn body_limit(&self, path: &str, default: usize) -> usize;

    /// Answers one request. Returns a ticket when the answer may only be
    /// sent after the service settled something.
    fn call(&self, req: &Request<'_>, res: &mut Response<'_>) -> Option<Self::Ticket>;

    /// Completes once `ticket` is settled: `true` when the answers may go
    /// out, `false` when what they acknowledge was not done, and the
    /// connection answers 503 instead and closes.
    fn settle(&self, ticket: Self::Ticket) -> impl Future<Output = bool>;

    /// Whether the server is draining: finish the current requests, then close.
    fn draining(&self) -> bool;

    /// The shard's date cache.
    fn date(&self) -> &DateCache;

    /// Told about every request refused by the HTTP layer (for counting).
    fn rejected(&self, error: Error);
}

/// The client end of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// Its address.
    pub addr: SocketAddr,
    /// The address as text, formatted once per connection.
    pub host: &'a str,
}
