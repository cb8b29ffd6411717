//! The `Origin` check for state-changing forms and WebSocket upgrades
//! (cross-site request forgery and cross-site WebSocket hijacking).
//!
//! A request's origin is accepted when it is in the configured allow-list, or
//! when it names the very host the request was sent to (`Origin` authority ==
//! `Host`): a browser sets both, and a foreign page cannot make them agree.

use http::HeaderMap;
use http::header::{HOST, ORIGIN};

/// What the `Origin` header says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginVerdict {
    /// Same origin or allow-listed.
    Allowed,
    /// An origin we do not trust.
    Foreign,
    /// No `Origin` header (non-browser clients, some same-origin GETs).
    Missing,
}

/// The allow-list, normalised to `scheme://host[:port]`, lowercase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    allowed: Vec<String>,
}

impl OriginPolicy {
    /// A policy from a list such as `https://app.example.com,http://localhost:8000`.
    /// Entries that are not origins are returned as errors.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let norm = normalize(entry)
                .ok_or_else(|| format!("{entry:?} is not an origin like https://example.com"))?;
            allowed.push(norm);
        }
        Ok(Self { allowed })
    }

    /// Adds one origin to the list.
    pub fn allow(&mut self, origin: &str) -> Result<(), String> {
        let norm = normalize(origin).ok_or_else(|| format!("{origin:?} is not an origin"))?;
        if !self.allowed.contains(&norm) {
            self.allowed.push(norm);
        }
        Ok(())
    }

    /// Judges the request's `Origin` against this policy and its `Host`.
    pub fn check(&self, headers: &HeaderMap) -> OriginVerdict {
        let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
            return OriginVerdict::Missing;
        };
        let Some(origin) = normalize(origin) else {
            return OriginVerdict::Foreign;
        };
        if self.allowed.contains(&origin) {
            return OriginVerdict::Allowed;
        }
        let host = headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase);
        let authority = origin.split_once("://").map(|(_, a)| a);
        match (host, authority) {
            (Some(h), Some(a)) if h == a => OriginVerdict::Allowed,
            _ => OriginVerdict::Foreign,
        }
    }
}

/// `scheme://host[:port]` in lowercase without a trailing slash; `None` for
/// anything else (including the opaque origin `null`).
fn normalize(origin: &str) -> Option<String> {
    let lower = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://")?;
    let scheme_ok = matches!(scheme, "http" | "https");
    let authority_ok = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    (scheme_ok && authority_ok).then_some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn same_origin_and_listed_origins_pass() {
        let p = OriginPolicy::parse("https://app.example.com").unwrap();
        assert_eq!(
            p.check(&headers(Some("http://127.0.0.1:8000"), "127.0.0.1:8000")),
            OriginVerdict::Allowed
        );
        assert_eq!(
            p.check(&headers(
                Some("https://APP.example.com/"),
                "api.example.com"
            )),
            OriginVerdict::Allowed
        );
    }

    #[test]
    fn foreign_null_and_missing_origins_are_told_apart() {
        let p = OriginPolicy::default();
        assert_eq!(
            p.check(&headers(Some("https://evil.example"), "127.0.0.1:8000")),
            OriginVerdict::Foreign
        );
        assert_eq!(
            p.check(&headers(Some("null"), "127.0.0.1:8000")),
            OriginVerdict::Foreign
        );
        assert_eq!(
            p.check(&headers(None, "127.0.0.1:8000")),
            OriginVerdict::Missing
        );
    }

    #[test]
    fn bad_entries_in_the_list_are_errors() {
        assert!(OriginPolicy::parse("example.com").is_err());
        assert!(OriginPolicy::parse(" , ").unwrap().allowed.is_empty());
    }
}
