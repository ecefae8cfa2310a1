//! Our HTTP/1.1 server layer: framing, keep-alive, pipelining and limits on
//! top of `httparse`'s tokenizer. It knows nothing about events; a
//! [`Service`] answers requests.
//!
//! Key components:
//! - [`serve`]: the per-connection loop (read, frame, answer in order, write).
//! - [`Request`]: a borrowed view of one request.
//! - [`Response`]: appends one answer to the connection's write buffer.
//! - [`Error`]: every way a request can be refused, and its status code.
//! - [`DateCache`]: the `Date:` header, formatted once a second.

mod body;
mod conn;
mod date;
mod error;
mod request;
mod response;
mod status;

pub use conn::{answer_bytes, serve, Limits, Peer, Service, MAX_HEADERS};
pub use date::DateCache;
pub use error::Error;
pub use request::{Method, Request};
pub use response::Response;
pub use status::Status;
