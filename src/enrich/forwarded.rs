//! The client address behind a proxy: `X-Forwarded-For`.
//!
//! As the original: the last `X-Forwarded-For` header, and within it the
//! text after the last comma, is the address the nearest proxy saw. It must
//! be an IP literal; anything else (a host name, garbage) keeps the peer
//! address, and nothing is ever resolved through DNS (the original's
//! `InetAddress.getByName` would have).

use std::net::IpAddr;

use crate::event::write_remote_host;

/// The forwarded client address from the `X-Forwarded-For` header values
/// (in arrival order), written into `scratch` in the form the original
/// reports; `None` when there is none or it is not an IP address.
pub fn forwarded_for<'s, 'h>(values: impl Iterator<Item = &'h [u8]>, scratch: &'s mut Vec<u8>) -> Option<&'s str> {
    let last_header = values.last()?;
    let last_entry = last_header.rsplit(|&b| b == b',').next()?;
    let text = std::str::from_utf8(last_entry.trim_ascii()).ok()?;
    let ip: IpAddr = text.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    scratch.clear();
    write_remote_host(scratch, ip);
    std::str::from_utf8(scratch).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(headers: &[&str]) -> Option<String> {
        let mut scratch = Vec::new();
        forwarded_for(headers.iter().map(|h| h.as_bytes()), &mut scratch).map(str::to_owned)
    }

    #[test]
    fn takes_the_last_entry_of_the_last_header() {
        assert_eq!(run(&["127.0.0.1,192.168.13.23"]).as_deref(), Some("192.168.13.23"));
        assert_eq!(run(&["10.0.0.1", "127.0.0.1, 192.168.13.23 "]).as_deref(), Some("192.168.13.23"));
        assert_eq!(run(&["2001:db8::7"]).as_deref(), Some("2001:db8:0:0:0:0:0:7"));
        assert_eq!(run(&["[::ffff:192.0.2.9]"]).as_deref(), Some("192.0.2.9"));
    }

    #[test]
    fn anything_but_an_ip_literal_keeps_the_peer() {
        assert_eq!(run(&[]), None);
        assert_eq!(run(&["proxy.example.com"]), None);
        assert_eq!(run(&["192.168.1.1, garbage"]), None);
        assert_eq!(run(&[""]), None);
        assert_eq!(run(&["999.1.1.1"]), None);
    }
}
