//! Browsers that ask not to be tracked (`respect_gpc`, `respect_dnt`):
//! their events are answered as usual but not recorded, and counted.

use crate::http::Request;
use crate::metrics::Counter;

/// Which signals a browser source honours.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptOut {
    /// `Sec-GPC: 1`, Global Privacy Control.
    pub gpc: bool,
    /// `DNT: 1`, Do Not Track.
    pub dnt: bool,
}

impl OptOut {
    /// The counter of the signal by which `req` opts out, if it does.
    pub fn signal(self, req: &Request<'_>) -> Option<Counter> {
        let says_one = |name| req.headers_named(name).any(|v| v.trim_ascii() == b"1");
        if self.gpc && says_one("sec-gpc") {
            Some(Counter::OptedOutGpc)
        } else if self.dnt && says_one("dnt") {
            Some(Counter::OptedOutDnt)
        } else {
            None
        }
    }
}
