//! Genuine API Gateway events, built from real requests, and the Lambda
//! responses read back — the shapes AWS documents for HTTP API (payload
//! 2.0) and WebSocket APIs.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use serde_json::{Value, json};

/// What differs between the three WebSocket event types.
pub enum WsKind<'a> {
    /// `$connect`: the upgrade request's headers and query string.
    Connect {
        /// Request headers.
        headers: &'a HeaderMap,
        /// Raw query string.
        query: Option<&'a str>,
    },
    /// `$default`: a text message.
    Message {
        /// The message.
        body: &'a str,
    },
    /// `$disconnect`, with the close code API Gateway reports.
    Disconnect {
        /// WebSocket close status.
        code: u16,
        /// Human-readable reason.
        reason: &'a str,
    },
}

/// Where an event comes from.
pub struct Origin<'a> {
    /// API id (any string locally).
    pub api_id: &'a str,
    /// `host:port` of the API.
    pub domain: &'a str,
    /// Stage name (`$default` for the HTTP API).
    pub stage: &'a str,
    /// Caller address.
    pub source_ip: &'a str,
}

fn now_ms() -> i64 {
    i64::try_from(rollcall::domain::Timestamp::now().as_millis()).unwrap_or(i64::MAX)
}

fn request_id() -> String {
    rollcall::domain::ConnectionId::generate()
        .as_str()
        .to_owned()
}

/// Single-value headers as API Gateway sends them (duplicates joined by `,`).
fn header_map(headers: &HeaderMap, lowercase: bool, skip_cookie: bool) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        if skip_cookie && name == http::header::COOKIE {
            continue;
        }
        let Ok(v) = value.to_str() else { continue };
        let key = if lowercase {
            name.as_str().to_owned()
        } else {
            title_case(name.as_str())
        };
        out.entry(key)
            .and_modify(|e| {
                e.push(',');
                e.push_str(v)
            })
            .or_insert_with(|| v.to_owned());
    }
    out
}

/// WebSocket events carry headers in their original case (`Origin`, `Cookie`).
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn query_params(query: Option<&str>) -> (Value, Value) {
    let mut single = serde_json::Map::new();
    let mut multi: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        single.insert(k.to_string(), Value::String(v.to_string()));
        multi.entry(k.to_string()).or_default().push(v.to_string());
    }
    (Value::Object(single), json!(multi))
}

/// An HTTP API payload-2.0 event for one request.
pub fn http_event(
    origin: &Origin<'_>,
    method: &http::Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Value {
    let cookies: Vec<String> = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let (body, b64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (STANDARD.encode(body), true),
    };
    let (query, _) = query_params(uri.query());
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or(""),
        "headers": header_map(headers, true, true),
        "requestContext": {
            "accountId": "000000000000",
            "apiId": origin.api_id,
            "domainName": origin.domain,
            "domainPrefix": origin.domain.split('.').next().unwrap_or(origin.domain),
            "http": {
                "method": method.as_str(),
                "path": uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": origin.source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id(),
            "routeKey": "$default",
            "stage": origin.stage,
            "time": "",
            "timeEpoch": now_ms(),
        },
        "isBase64Encoded": b64,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if uri.query().is_some() {
        event["queryStringParameters"] = query;
    }
    if !body.is_empty() {
        event["body"] = Value::String(body);
    }
    event
}

/// A WebSocket API event for connection `id`.
pub fn ws_event(origin: &Origin<'_>, id: &str, connected_at: i64, kind: WsKind<'_>) -> Value {
    let (route, event_type) = match kind {
        WsKind::Connect { .. } => ("$connect", "CONNECT"),
        WsKind::Message { .. } => ("$default", "MESSAGE"),
        WsKind::Disconnect { .. } => ("$disconnect", "DISCONNECT"),
    };
    let mut event = json!({
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": request_id(),
            "requestTime": "",
            "messageDirection": "IN",
            "stage": origin.stage,
            "connectedAt": connected_at,
            "requestTimeEpoch": now_ms(),
            "identity": { "sourceIp": origin.source_ip },
            "requestId": request_id(),
            "domainName": origin.domain,
            "connectionId": id,
            "apiId": origin.api_id,
        },
        "isBase64Encoded": false,
    });
    match kind {
        WsKind::Connect { headers, query } => {
            let single = header_map(headers, false, false);
            let multi: BTreeMap<&String, Vec<&String>> =
                single.iter().map(|(k, v)| (k, vec![v])).collect();
            event["headers"] = json!(single);
            event["multiValueHeaders"] = json!(multi);
            if query.is_some_and(|q| !q.is_empty()) {
                let (single, multi) = query_params(query);
                event["queryStringParameters"] = single;
                event["multiValueQueryStringParameters"] = multi;
            }
        }
        WsKind::Message { body } => {
            event["requestContext"]["messageId"] = Value::String(request_id());
            event["body"] = Value::String(body.to_owned());
        }
        WsKind::Disconnect { code, reason } => {
            event["requestContext"]["disconnectStatusCode"] = json!(code);
            event["requestContext"]["disconnectReason"] = json!(reason);
        }
    }
    event
}

/// A Lambda proxy response, read back.
#[derive(Debug)]
pub struct LambdaReply {
    /// HTTP status.
    pub status: u16,
    /// Headers (single and multi-value merged), in order.
    pub headers: Vec<(String, String)>,
    /// `Set-Cookie` values (payload 2.0 `cookies`).
    pub cookies: Vec<String>,
    /// Decoded body.
    pub body: Vec<u8>,
}

/// Reads a serialised `LambdaResponse` (payload 1.0 or 2.0 shape).
pub fn read_reply(v: &Value) -> LambdaReply {
    let status = v["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(502);
    let mut headers = Vec::new();
    if let Some(h) = v["headers"].as_object() {
        for (k, val) in h {
            if let Some(s) = val.as_str() {
                headers.push((k.clone(), s.to_owned()));
            }
        }
    }
    if let Some(h) = v["multiValueHeaders"].as_object() {
        for (k, vals) in h {
            for s in vals
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                headers.push((k.clone(), s.to_owned()));
            }
        }
    }
    let cookies = v["cookies"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let text = v["body"].as_str().unwrap_or("");
    let body = if v["isBase64Encoded"].as_bool().unwrap_or(false) {
        STANDARD.decode(text).unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    LambdaReply {
        status,
        headers,
        cookies,
        body,
    }
}
