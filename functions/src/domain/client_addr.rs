//! [`ClientAddr`]: the address a request came from, as the front end saw it.
//!
//! The local server takes the TCP peer (`ConnectInfo`); the Lambda adapter
//! takes API Gateway's `requestContext.http.sourceIp` (API Gateway's own
//! peer, which a client cannot forge). Each puts it in the request's
//! extensions, where the handlers read it for rate limits.

use std::net::{IpAddr, Ipv6Addr};

/// A client's IP address (an IPv4-mapped IPv6 address is taken as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(IpAddr);

/// Not an IP address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address")]
pub struct ClientAddrError;

impl ClientAddr {
    /// The client at `ip`.
    pub fn new(ip: IpAddr) -> Self {
        Self(match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        })
    }

    /// Parses an address as API Gateway writes it (`203.0.113.7`, `2001:db8::1`).
    pub fn parse(s: &str) -> Result<Self, ClientAddrError> {
        s.trim()
            .parse::<IpAddr>()
            .map(Self::new)
            .map_err(|_| ClientAddrError)
    }

    /// The address.
    pub fn ip(self) -> IpAddr {
        self.0
    }

    /// What rate limits count per: the IPv4 address, or the IPv6 /64 (one
    /// host usually holds a whole /64, so counting single IPv6 addresses
    /// would let it rotate through 2^64 of them).
    pub fn limit_key(self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        }
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_ipv6_is_limited_per_64() {
        let a = ClientAddr::parse("203.0.113.7").unwrap();
        assert_eq!(a.limit_key(), "203.0.113.7");
        assert_eq!(ClientAddr::parse("::ffff:203.0.113.7").unwrap(), a);
        let b = ClientAddr::parse("2001:db8:1:2:3:4:5:6").unwrap();
        let c = ClientAddr::parse("2001:db8:1:2:ffff::1").unwrap();
        assert_eq!(b.limit_key(), "2001:db8:1:2::/64");
        assert_eq!(b.limit_key(), c.limit_key());
        assert_ne!(b, c);
        for bad in ["", "example.com", "1.2.3", "1.2.3.4:80"] {
            assert!(ClientAddr::parse(bad).is_err(), "{bad:?}");
        }
    }
}
