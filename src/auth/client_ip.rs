//! Which address a request really came from, for sign-in throttling. By default that is the
//! socket's peer. Behind a reverse proxy every request has the proxy's address, so one attacker
//! would lock everyone out; naming the proxies (`HERALD_TRUSTED_PROXIES`) makes Herald read
//! `X-Forwarded-For` instead, but only when the peer is one of them, and only up to the first
//! address that is not (a client can write anything it likes at the left of that header).

use std::net::IpAddr;
use std::str::FromStr;

/// An address or CIDR block of trusted reverse proxies (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    base: IpAddr,
    prefix: u8,
}

impl FromStr for ProxyNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let base: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an IP address or CIDR block"))?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}' has a prefix length outside 0–{max}"))?,
        };
        Ok(Self { base, prefix })
    }
}

impl ProxyNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                masked(u32::from(b).into(), 32, self.prefix)
                    == masked(u32::from(a).into(), 32, self.prefix)
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                masked(u128::from(b), 128, self.prefix) == masked(u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
    let keep = u32::from(prefix).min(width);
    if keep == 0 {
        0
    } else {
        bits >> (width - keep)
    }
}

/// The client's address: the peer itself, unless the peer is a trusted proxy, in which case the
/// rightmost `X-Forwarded-For` entry that is not a trusted proxy (or the leftmost entry, when
/// every one is).
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a str>,
    trusted: &[ProxyNet],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = forwarded_for
        .into_iter()
        .flat_map(|v| v.split(','))
        .map_while(|h| h.trim().parse::<IpAddr>().ok())
        .collect();
    hops.iter()
        .rev()
        .copied()
        .find(|ip| !is_trusted(*ip))
        .or_else(|| hops.first().copied())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ProxyNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_socket_address_counts() {
        assert_eq!(
            client_address(ip("10.0.0.5"), ["1.2.3.4"], &[]),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn a_trusted_proxy_forwards_the_client_and_spoofed_entries_are_ignored() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("10.0.0.5"), ["1.2.3.4"], &trusted),
            ip("1.2.3.4")
        );
        // The client wrote "9.9.9.9" itself; the proxy appended what it saw.
        assert_eq!(
            client_address(ip("10.0.0.5"), ["9.9.9.9, 1.2.3.4"], &trusted),
            ip("1.2.3.4")
        );
        // Two proxies in a row.
        assert_eq!(
            client_address(ip("10.0.0.5"), ["5.6.7.8", "10.1.1.1"], &trusted),
            ip("5.6.7.8")
        );
        // An untrusted peer cannot claim to be someone else.
        assert_eq!(
            client_address(ip("8.8.8.8"), ["1.2.3.4"], &trusted),
            ip("8.8.8.8")
        );
        // No header: the proxy itself.
        assert_eq!(client_address(ip("10.0.0.5"), [], &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn cidr_blocks_parse_and_match() {
        let n: ProxyNet = "fd00::/8".parse().unwrap();
        assert!(n.contains(ip("fd12::1")));
        assert!(!n.contains(ip("fe80::1")));
        let single: ProxyNet = "127.0.0.1".parse().unwrap();
        assert!(single.contains(ip("::ffff:127.0.0.1")));
        assert!(!single.contains(ip("127.0.0.2")));
        assert!("10.0.0.0/33".parse::<ProxyNet>().is_err());
        assert!("nope".parse::<ProxyNet>().is_err());
        assert!("0.0.0.0/0"
            .parse::<ProxyNet>()
            .unwrap()
            .contains(ip("8.8.8.8")));
    }
}
