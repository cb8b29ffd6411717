//! [`TrustedProxies`]: the reverse proxies whose `X-Forwarded-For` is
//! believed, and [`TrustedProxies::client_of`], which finds the client
//! behind them.
//!
//! Only the entries the trusted proxies themselves appended are believed:
//! walking `X-Forwarded-For` from the right, every address that is a trusted
//! proxy is skipped and the first one that is not is the client. What a
//! client wrote at the left of the header itself is never reached unless
//! every hop after it is trusted, so a client cannot choose its address.
//! With no proxies listed (the default) the header is ignored.

use std::net::IpAddr;

use http::HeaderMap;

use super::ClientAddr;

/// A list of proxy addresses and networks (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || format!("{entry:?} is not an IP address or network (10.0.0.0/8)");
            let (ip, bits) = match entry.split_once('/') {
                Some((ip, bits)) => (ip, Some(bits)),
                None => (entry, None),
            };
            let ip = ClientAddr::parse(ip).map_err(|_| bad())?.ip();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(bad)?,
                None => max,
            };
            nets.push((ip, bits));
        }
        Ok(Self(nets))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ClientAddr::new(ip).ip();
        self.0
            .iter()
            .any(|(net, bits)| same_prefix(*net, ip, *bits))
    }

    /// The client behind `peer` (the TCP peer): `peer` itself unless it is
    /// a trusted proxy, else the rightmost `X-Forwarded-For` address that is
    /// not a trusted proxy (an unreadable entry ends the walk at the last
    /// trusted hop).
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> ClientAddr {
        let mut client = ClientAddr::new(peer);
        if !self.contains(peer) {
            return client;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Ok(addr) = ClientAddr::parse(hop) else {
                break;
            };
            client = addr;
            if !self.contains(addr.ip()) {
                break;
            }
        }
        client
    }
}

fn same_prefix(net: IpAddr, ip: IpAddr, bits: u8) -> bool {
    let (a, b, len) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    let shift = len - u32::from(bits);
    shift >= len || (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_hops_added_by_trusted_proxies_are_believed() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, ::1").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let client = |peer, h: &HeaderMap| proxies.client_of(ip(peer), h).to_string();
        // A direct client: its header is ignored.
        assert_eq!(client("203.0.113.7", &xff(&["1.2.3.4"])), "203.0.113.7");
        // Behind one proxy: the address it appended.
        assert_eq!(client("10.1.2.3", &xff(&["198.51.100.9"])), "198.51.100.9");
        // A client-written entry at the left is not reached.
        assert_eq!(
            client("10.1.2.3", &xff(&["6.6.6.6, 198.51.100.9", "10.9.9.9"])),
            "198.51.100.9"
        );
        // Garbage ends the walk at the last trusted hop; no header, the proxy.
        assert_eq!(client("10.1.2.3", &xff(&["nonsense"])), "10.1.2.3");
        assert_eq!(client("::1", &HeaderMap::new()), "::1");
        assert!(TrustedProxies::default().is_empty());
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/x"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }
}
