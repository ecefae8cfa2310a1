//! Our HTTP/1.1 server layer: framing, keep-alive, pipelining and limits on
//! top of `httparse`'s tokenizer. It knows nothing about events; a
//! [`Service`] answers requests.
//!
//! Key components:
//! - [`serve`]: the per-connection loop (read, answer in order, write).
//! - [`Readiness`]: which connections have input, from one epoll instance.
//! - `exchange`: framing and answering the buffered requests, without I/O
//!   ([`answer_bytes`] drives it for tests and fuzzing).
//! - [`Service`]: what the collector answers with; [`Limits`], [`Peer`].
//! - [`Request`]: a borrowed view of one request.
//! - [`Response`]: appends one answer to the connection's write buffer.
//! - [`Error`]: every way a request can be refused, and its status code.
//! - [`DateCache`]: the `Date:` header, formatted once a second.
//! - [`coding`]: compressed request bodies, decoded with a bomb guard.

mod body;
pub mod coding;
mod conn;
mod date;
mod error;
mod exchange;
mod readiness;
mod request;
mod response;
mod service;
mod status;

pub use conn::serve;
pub use date::DateCache;
pub use error::Error;
pub use exchange::{answer_bytes, MAX_HEADERS};
pub use readiness::{Readiness, Registration};
pub use request::{Method, Request};
pub use response::{Persistence, Prepared, Response};
pub use service::{Limits, Peer, Service};
pub use status::Status;
