//! The APIs: which function each route reaches (as API Gateway matches
//! routes), who may invoke it, throttling, access logs and the functions'
//! own log groups.

use std::collections::BTreeMap;

use serde_json::json;

use super::eval::{ACCOUNT, Eval, REGION};
use super::iam::Statement;
use super::model::{function, functions, of_type, resource, target};
use super::pair;

/// `(route key, binary)` of every route of the API `api`.
fn routes(api: &str) -> Vec<(String, String)> {
    let eval = Eval::new(&[]);
    of_type("AWS::ApiGatewayV2::Route")
        .into_iter()
        .map(resource)
        .filter(|r| target(&r["Properties"]["ApiId"]) == api)
        .map(|r| {
            let key = r["Properties"]["RouteKey"]
                .as_str()
                .expect("RouteKey")
                .to_owned();
            let to = eval.string(&r["Properties"]["Target"]);
            let integration = to.strip_prefix("integrations/").expect("integrations/…");
            let uri = &resource(integration)["Properties"]["IntegrationUri"];
            let function = match uri.get("Fn::GetAtt") {
                Some(_) => target(uri).to_owned(),
                None => {
                    let sub = uri["Fn::Sub"].as_str().expect("IntegrationUri");
                    let end = sub.find(".Arn}").expect("${Function.Arn}");
                    let start = sub[..end].rfind("${").expect("${Function.Arn}") + 2;
                    sub[start..end].to_owned()
                }
            };
            let binary = functions()
                .into_iter()
                .find(|f| f.logical == function)
                .unwrap_or_else(|| panic!("{key}: integration to {function}, not a function"))
                .binary;
            (key, binary)
        })
        .collect()
}

/// The binary API Gateway's HTTP API hands `method path` to: an exact
/// route (a trailing slash does not count), else the longest greedy
/// `{proxy+}` prefix, else `$default`.
fn http_function_for(method: &str, path: &str) -> String {
    let routes = routes("HttpApi");
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let exact = routes.iter().find(|(key, _)| {
        key.split_once(' ')
            .is_some_and(|(m, p)| (m == method || m == "ANY") && p == trimmed)
    });
    if let Some((_, binary)) = exact {
        return binary.clone();
    }
    let greedy = routes
        .iter()
        .filter_map(|(key, binary)| {
            let (m, p) = key.split_once(' ')?;
            let prefix = p.strip_suffix("{proxy+}")?;
            ((m == method || m == "ANY") && path.starts_with(prefix) && path.len() > prefix.len())
                .then_some((prefix.len(), binary))
        })
        .max_by_key(|(len, _)| *len);
    if let Some((_, binary)) = greedy {
        return binary.clone();
    }
    routes
        .iter()
        .find(|(key, _)| key == "$default")
        .map(|(_, b)| b.clone())
        .expect("a $default route")
}

#[test]
fn routes_reach_the_functions_that_serve_them() {
    let ws: BTreeMap<String, String> = routes("WebSocketApi").into_iter().collect();
    assert_eq!(
        ws,
        [
            pair("$connect", "ws_connect"),
            pair("$disconnect", "ws_disconnect"),
            pair("$default", "ws_default"),
        ]
        .into()
    );
    let api = &resource("WebSocketApi")["Properties"];
    assert_eq!(api["ProtocolType"], "WEBSOCKET");
    assert_eq!(api["RouteSelectionExpression"], "$request.body.action");
    assert_eq!(resource("HttpApi")["Properties"]["ProtocolType"], "HTTP");

    // Every path the shared router answers, as the README lists them, and
    // some it refuses (404/405 from http_pages).
    let expected = [
        ("GET", "/log_in/", "http_login"),
        ("GET", "/log_in", "http_login"),
        ("POST", "/log_in/", "http_login"),
        ("POST", "/api/log_in", "http_login"),
        ("GET", "/sign_up/", "http_signup"),
        ("GET", "/sign_up", "http_signup"),
        ("POST", "/sign_up/", "http_signup"),
        ("POST", "/api/sign_up", "http_signup"),
        ("POST", "/log_out/", "http_logout"),
        ("POST", "/api/log_out", "http_logout"),
        ("GET", "/", "http_pages"),
        ("HEAD", "/", "http_pages"),
        ("GET", "/api/users", "http_pages"),
        ("POST", "/api/ws_ticket", "http_pages"),
        ("GET", "/healthz", "http_pages"),
        ("GET", "/static/rollcall.js", "http_pages"),
        ("GET", "/static/rollcall.css", "http_pages"),
        ("GET", "/log_out/", "http_pages"),
        ("DELETE", "/api/users", "http_pages"),
        ("GET", "/nowhere", "http_pages"),
    ];
    for (method, path, binary) in expected {
        assert_eq!(http_function_for(method, path), binary, "{method} {path}");
    }
    for (key, _) in routes("HttpApi") {
        // HTTP API route keys cannot end in '/' (except the root).
        assert!(key == "GET /" || !key.ends_with('/'), "{key}");
    }

    // Each integrated function may be invoked by API Gateway, for its API only.
    let eval = Eval::new(&[]);
    for (api, binary) in routes("WebSocketApi")
        .into_iter()
        .map(|(_, b)| ("WebSocketApi", b))
        .chain(routes("HttpApi").into_iter().map(|(_, b)| ("HttpApi", b)))
    {
        let logical = function(&binary).logical;
        let permitted = of_type("AWS::Lambda::Permission").into_iter().any(|p| {
            let p = eval
                .value(&resource(p)["Properties"])
                .expect("permission properties");
            p["FunctionName"] == logical.as_str()
                && p["Principal"] == "apigateway.amazonaws.com"
                && p["SourceArn"]
                    == format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/*").as_str()
        });
        assert!(permitted, "{binary} may not be invoked by {api}");
    }
}

#[test]
fn apis_are_throttled_and_log_access_and_functions_log_with_retention() {
    let eval = Eval::new(&[]);
    for stage in of_type("AWS::ApiGatewayV2::Stage") {
        let p = eval.value(&resource(stage)["Properties"]).expect("stage");
        let d = &p["DefaultRouteSettings"];
        assert!(
            d["ThrottlingBurstLimit"].is_string() && d["ThrottlingRateLimit"].is_string(),
            "{stage}: throttling"
        );
        let logs = p["AccessLogSettings"]["DestinationArn"]
            .as_str()
            .expect("access logs");
        assert!(logs.starts_with("arn:aws:logs:"), "{stage}: {logs}");
        assert!(
            p["AccessLogSettings"]["Format"]
                .as_str()
                .is_some_and(|f| f.contains("$context.requestId")),
            "{stage}"
        );
    }
    // The WebSocket stage carries 100,000 pinging pages with room for
    // reconnect waves, within API Gateway's account-wide 10,000 requests/s
    // (which the management API's posts share) and its 5,000 burst.
    let ws = eval
        .value(&resource("WebSocketStage")["Properties"])
        .expect("stage");
    let env = eval.environment(&function("ws_default").logical);
    let ping: f64 = env["ROLLCALL_CLIENT_PING_SECS"].parse().expect("ping");
    let pings = 100_000.0 / ping;
    let rate: f64 = ws["DefaultRouteSettings"]["ThrottlingRateLimit"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("rate");
    let burst: f64 = ws["DefaultRouteSettings"]["ThrottlingBurstLimit"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("burst");
    assert!(
        rate >= 1.2 * pings && rate <= 10_000.0 - pings,
        "rate {rate}/s for {pings:.0} pings/s"
    );
    assert!((rate / 2.0..=5_000.0).contains(&burst), "burst {burst}");

    // Log-in and sign-up (an Argon2id hash each) are throttled harder.
    let http = eval
        .value(&resource("HttpStage")["Properties"])
        .expect("stage");
    for route in [
        "POST /log_in",
        "POST /api/log_in",
        "POST /sign_up",
        "POST /api/sign_up",
    ] {
        assert_eq!(
            http["RouteSettings"][route]["ThrottlingRateLimit"], "10",
            "{route}"
        );
        assert!(
            routes("HttpApi").iter().any(|(k, _)| k == route),
            "{route} is a route"
        );
    }
    for group in of_type("AWS::Logs::LogGroup") {
        assert_eq!(
            resource(group)["Properties"]["RetentionInDays"],
            json!({ "Ref": "LogRetentionDays" }),
            "{group}"
        );
    }
    for f in functions() {
        let logging = &resource(&f.logical)["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"], "JSON", "{}", f.binary);
        let group = target(&logging["LogGroup"]);
        assert_eq!(resource(group)["Type"], "AWS::Logs::LogGroup");
        // Its role may write there, and nowhere else.
        let logs: Vec<Statement> = eval
            .statements(&f.role)
            .into_iter()
            .filter(|s| s.actions.iter().any(|a| a.starts_with("logs:")))
            .collect();
        let own = eval.attribute(group, "Arn");
        assert_eq!(logs.len(), 1, "{}", f.binary);
        assert_eq!(logs[0].resources, vec![own], "{}", f.binary);
        assert_eq!(
            logs[0].actions,
            vec!["logs:CreateLogStream", "logs:PutLogEvents"],
            "{}",
            f.binary
        );
    }
}
