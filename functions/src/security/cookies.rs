//! Reading `Cookie` headers and writing `Set-Cookie` ones.

use std::time::Duration;

use http::HeaderMap;
use http::header::COOKIE;

/// Name of the session cookie (Django's).
pub const SESSION_COOKIE: &str = "sessionid";

/// The value of cookie `name` in the request, if any (first wins).
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure`
/// when `secure`. `max_age = None` makes a session cookie; zero deletes.
pub fn set(name: &str, value: &str, max_age: Option<Duration>, secure: bool) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn delete(name: &str, secure: bool) -> String {
    set(name, "", Some(Duration::ZERO), secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn finds_a_cookie_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; sessionid=abc"));
        h.append(COOKIE, HeaderValue::from_static("csrftoken=\"x\""));
        assert_eq!(get(&h, "sessionid"), Some("abc"));
        assert_eq!(get(&h, "csrftoken"), Some("x"));
        assert_eq!(get(&h, "missing"), None);
    }

    #[test]
    fn session_cookies_are_httponly_lax_and_optionally_secure() {
        let c = set("sessionid", "t", Some(Duration::from_secs(60)), true);
        assert_eq!(
            c,
            "sessionid=t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(delete("sessionid", false).contains("Max-Age=0"));
    }
}
