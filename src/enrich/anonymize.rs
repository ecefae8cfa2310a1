//! Client addresses cut down to their network (`global.mapper.anonymize_ip`):
//! IPv4 to its /24, IPv6 to its /48, written in the form the original
//! reports addresses. The stages apply it after the geo lookup and before
//! anything is mapped, dead-lettered or logged, and hide the headers that
//! carry addresses from mappings and dead letters.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::event::write_remote_host;

/// Headers in which proxies pass on a client's address.
const ADDRESS_HEADERS: [&str; 5] = ["x-forwarded-for", "forwarded", "x-real-ip", "true-client-ip", "cf-connecting-ip"];

/// `host` (an address as the original writes it) truncated to its network,
/// written into `out`. Anything that is not an address becomes empty: an
/// unknown form is never passed on whole.
pub fn truncate<'s>(host: &str, out: &'s mut Vec<u8>) -> &'s str {
    out.clear();
    if let Ok(ip) = host.parse::<IpAddr>() {
        write_remote_host(out, network(ip));
    }
    std::str::from_utf8(out).unwrap_or_default()
}

fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(v4.to_bits() & 0xffff_ff00)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network(IpAddr::V4(v4)),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !((1u128 << 80) - 1))),
        },
    }
}

fn is_address_header(name: &str) -> bool {
    ADDRESS_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// A client's address and request headers as anonymised records hold
/// them: the address truncated into `scratch`, and the headers without
/// those that carry addresses, copied into `kept` only when one had to go
/// (nearly never without a proxy).
pub fn apply<'s, 'h>(
    host: &str,
    headers: &'s [httparse::Header<'h>],
    scratch: &'s mut Vec<u8>,
    kept: &'s mut Vec<httparse::Header<'h>>,
) -> (&'s str, &'s [httparse::Header<'h>]) {
    let host = truncate(host, scratch);
    if !headers.iter().any(|h| is_address_header(h.name)) {
        return (host, headers);
    }
    kept.clear();
    kept.extend(headers.iter().filter(|h| !is_address_header(h.name)).copied());
    (host, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(host: &str) -> String {
        truncate(host, &mut Vec::new()).to_owned()
    }

    #[test]
    fn addresses_keep_their_network_only() {
        assert_eq!(cut("192.0.2.201"), "192.0.2.0");
        assert_eq!(cut("10.1.2.3"), "10.1.2.0");
        assert_eq!(cut("2001:db8:abcd:12:1:2:3:4"), "2001:db8:abcd:0:0:0:0:0");
        assert_eq!(cut("::ffff:198.51.100.7"), "198.51.100.0");
        assert_eq!(cut("not an address"), "");
    }

    #[test]
    fn address_headers_are_removed_and_others_kept() {
        let headers = [
            httparse::Header { name: "User-Agent", value: b"x" },
            httparse::Header { name: "X-Forwarded-For", value: b"203.0.113.9" },
            httparse::Header { name: "forwarded", value: b"for=203.0.113.9" },
        ];
        let (mut scratch, mut kept) = (Vec::new(), Vec::new());
        let (host, left) = apply("203.0.113.9", &headers, &mut scratch, &mut kept);
        assert_eq!(host, "203.0.113.0");
        assert_eq!(left.iter().map(|h| h.name).collect::<Vec<_>>(), ["User-Agent"]);
        let (mut scratch, mut kept) = (Vec::new(), Vec::new());
        let (_, left) = apply("203.0.113.9", &headers[..1], &mut scratch, &mut kept);
        assert_eq!(left.len(), 1);
        assert!(kept.is_empty(), "nothing copied when nothing goes");
    }
}
