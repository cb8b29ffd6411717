//! The neutral request/response types and the small builders every handler
//! uses: HTML with security headers, JSON, redirects, cookies, body parsing.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::AppError;

/// A request as both front ends hand it over: method, URI, headers, body.
pub type Request = http::Request<Bytes>;
/// A response: every body rollcall sends is text.
pub type Response = http::Response<String>;

/// Largest request body accepted (forms and JSON are tiny).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// How errors are rendered for a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A small HTML page (forms and pages).
    Html,
    /// `{"error": …}` / `{"errors": {…}}` (the JSON API).
    Json,
}

/// The default Content-Security-Policy of pages: only our own scripts,
/// styles and connections; no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn base(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = http::Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    r
}

/// An HTML page: no caching (pages show live, per-user data), strict CSP.
pub fn html(status: StatusCode, body: String) -> Response {
    html_with_csp(status, body, CSP)
}

/// An HTML page with a specific Content-Security-Policy.
pub fn html_with_csp(status: StatusCode, body: String, csp: &str) -> Response {
    let mut r = base(status, "text/html; charset=utf-8", body);
    let h = r.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert("content-security-policy", v);
    }
    r
}

/// A JSON response.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    let mut r = base(status, "application/json", body);
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A static text asset (script or stylesheet), cacheable for a while.
pub fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = base(StatusCode::OK, content_type, body.to_owned());
    r.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// A response with no body.
pub fn empty(status: StatusCode) -> Response {
    let mut r = http::Response::new(String::new());
    *r.status_mut() = status;
    r
}

/// `302 Found` to a same-site path.
pub fn redirect(location: &str) -> Response {
    let mut r = empty(StatusCode::FOUND);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(LOCATION, v);
    }
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Adds a `Set-Cookie` header.
pub fn set_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(SET_COOKIE, v);
    }
    r
}

/// A minimal HTML error page; `message` is escaped.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} {reason}</title></head>\
         <body><h1>{code} {reason}</h1><p>{}</p><p><a href=\"/\">rollcall</a></p></body></html>",
        escape_html(message),
        code = status.as_u16(),
    );
    html(status, body)
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

fn content_type(req: &Request) -> &str {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn media_type_is(req: &Request, expected: &str) -> bool {
    content_type(req)
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
}

/// Whether the request says `Content-Type: application/json` (parameters
/// aside).
pub fn is_json(req: &Request) -> bool {
    media_type_is(req, "application/json")
}

fn checked_body(req: &Request) -> Result<&[u8], AppError> {
    if req.body().len() > MAX_BODY_BYTES {
        return Err(AppError::PayloadTooLarge);
    }
    Ok(req.body())
}

/// A submitted `application/x-www-form-urlencoded` form.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of `name`, or `""`.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Parses a form body (415 for another content type, 413 if too large).
pub fn form(req: &Request) -> Result<Form, AppError> {
    if !media_type_is(req, "application/x-www-form-urlencoded") {
        return Err(AppError::UnsupportedMediaType(
            "Forms must be sent as application/x-www-form-urlencoded.",
        ));
    }
    let body = checked_body(req)?;
    Ok(Form(form_urlencoded::parse(body).into_owned().collect()))
}

/// Parses a JSON body (415 for another content type, 400 if malformed).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, AppError> {
    if !media_type_is(req, "application/json") {
        return Err(AppError::UnsupportedMediaType(
            "Send JSON with Content-Type: application/json.",
        ));
    }
    let body = checked_body(req)?;
    serde_json::from_slice(body)
        .map_err(|e| AppError::BadRequest(format!("Malformed JSON body: {e}.")))
}

/// The first value of query parameter `name`.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_carry_security_headers() {
        let r = html(StatusCode::OK, "x".into());
        for h in [
            "content-security-policy",
            "x-frame-options",
            "x-content-type-options",
        ] {
            assert!(r.headers().contains_key(h), "{h}");
        }
    }

    #[test]
    fn forms_need_their_content_type_and_a_bounded_body() {
        let req = http::Request::post("/")
            .body(Bytes::from_static(b"a=1"))
            .unwrap();
        assert!(matches!(form(&req), Err(AppError::UnsupportedMediaType(_))));
        let req = http::Request::post("/")
            .header(
                CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .body(Bytes::from_static(b"a=1&b=%3Cx%3E&a=2"))
            .unwrap();
        let f = form(&req).unwrap();
        assert_eq!((f.get("a"), f.get("b"), f.get("c")), ("1", "<x>", ""));
        let big = Bytes::from(vec![b'a'; MAX_BODY_BYTES + 1]);
        let req = http::Request::post("/")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(big)
            .unwrap();
        assert!(matches!(form(&req), Err(AppError::PayloadTooLarge)));
    }

    #[test]
    fn query_params_are_decoded() {
        assert_eq!(
            query_param(Some("a=1&token=x%2By"), "token").as_deref(),
            Some("x+y")
        );
        assert_eq!(query_param(None, "token"), None);
    }
}
