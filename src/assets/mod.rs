//! Static resources the collector serves: the tracking tag of each browser
//! source, the event pixel and the test page. Built once at startup, then served from
//! memory by every shard.
//!
//! Key components:
//! - [`Tag`]: the tag with a source's settings baked in, minified, with a
//!   gzip variant and strong ETags.
//! - [`PIXEL_GIF`]: the pixel, with its ETag and cache headers.
//! - [`TEST_PAGE`]: the page at `/` when `serve_static_resources` is on.
//! - [`STATUS_PAGE`]: the operator page on the admin address.

mod pixel;
mod tag;

pub use pixel::{PIXEL_ETAG, PIXEL_GIF, PIXEL_HEADERS};
pub use tag::{accepts_gzip, Tag, TagSettings};

/// The test page (reference 1.6): loads `divolte.js` from the same
/// directory and has a button that signals a custom event.
pub const TEST_PAGE: &str = include_str!("index.html");

/// The operator page (`/status` on the admin address): one self-contained
/// page (styles and script inline, no external assets) that draws
/// `/status.json` every two seconds.
pub const STATUS_PAGE: &str = include_str!("status.html");
