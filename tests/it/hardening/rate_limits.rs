//! Log-in and sign-up rate limits, through the real servers.

use std::sync::Arc;

use rollcall::store::memory::MemoryStore;
use rollcall_local_server::gateway::GatewayOptions;
use rollcall_local_server::node::Backend;
use rollcall_tests::app::spawn_with;
use rollcall_tests::client::Visitor;
use rollcall_tests::gateway::spawn_gateway;
use rollcall_tests::redis_server::{redis_url, unique_prefix};
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::{Value, json};

fn retry_after_secs(r: &rollcall_tests::client::Reply) -> u64 {
    r.retry_after
        .as_deref()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds: {:?}", r.retry_after))
}

#[tokio::test]
async fn a_name_that_failed_too_often_is_refused_with_429_even_with_its_password() {
    let app = spawn_with(
        &Backend::Memory,
        &[("ROLLCALL_LOGIN_FAILURES_PER_USER", "3/15m")],
    )
    .await;
    let v = Visitor::new(&app.base);
    let name = unique_name("brute");
    v.sign_up(&name, PASSWORD).await;
    for _ in 0..3 {
        let r = v
            .post_json(
                "/api/log_in",
                &json!({"username": name, "password": "wrong password"}),
                None,
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = v
        .post_json(
            "/api/log_in",
            &json!({"username": name, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    let secs = retry_after_secs(&r);
    assert!((1..=900).contains(&secs), "{secs}");
    let body: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(
        body["error"],
        format!("Too many attempts; try again in {secs} seconds.")
    );
    // The form shows the same refusal, on the form.
    let r = v
        .submit("/log_in/", &[("username", &name), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, 429);
    assert!(r.retry_after.is_some());
    assert!(
        r.body.contains("<form") && r.body.contains("Too many attempts; try again in"),
        "{}",
        r.body
    );
    // Another name is not affected.
    let other = unique_name("other");
    v.sign_up(&other, PASSWORD).await;
    v.log_in(&other, PASSWORD).await;
}

#[tokio::test]
async fn log_ins_from_one_address_are_limited() {
    let app = spawn_with(
        &Backend::Memory,
        &[("ROLLCALL_LOGIN_RATE_PER_ADDR", "5/1m")],
    )
    .await;
    let v = Visitor::new(&app.base);
    for i in 0..5 {
        let r = v
            .post_json(
                "/api/log_in",
                &json!({"username": format!("nobody{i}"), "password": "x"}),
                None,
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = v
        .post_json(
            "/api/log_in",
            &json!({"username": "nobody", "password": "x"}),
            None,
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(retry_after_secs(&r) <= 60);
}

#[tokio::test]
async fn sign_ups_from_one_address_are_limited_and_the_form_says_when_to_retry() {
    let app = spawn_with(
        &Backend::Memory,
        &[("ROLLCALL_SIGNUP_RATE_PER_ADDR", "2/1h")],
    )
    .await;
    let v = Visitor::new(&app.base);
    v.sign_up(&unique_name("one"), PASSWORD).await;
    v.sign_up(&unique_name("two"), PASSWORD).await;
    let third = unique_name("three");
    let r = v
        .submit(
            "/sign_up/",
            &[
                ("username", &third),
                ("password1", PASSWORD),
                ("password2", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(
        r.body.contains("id=\"errors-__all__\"") && r.body.contains("Too many attempts"),
        "{}",
        r.body
    );
    let r = v
        .post_json(
            "/api/sign_up",
            &json!({"username": third, "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(retry_after_secs(&r) <= 3600);
    let name = rollcall::domain::Username::parse(&third).expect("valid");
    assert!(
        app.ctx
            .store
            .find_user(&name)
            .await
            .expect("store")
            .is_none()
    );
}

/// Two server processes' worth of nodes on one Redis share the counts.
#[tokio::test]
async fn limits_are_shared_by_every_node_on_one_redis() {
    let prefix = unique_prefix();
    let backend = Backend::Redis {
        url: redis_url().to_owned(),
    };
    let settings = [
        ("ROLLCALL_REDIS_PREFIX", prefix.as_str()),
        ("ROLLCALL_LOGIN_FAILURES_PER_USER", "4/15m"),
    ];
    let a = spawn_with(&backend, &settings).await;
    let b = spawn_with(&backend, &settings).await;
    let name = unique_name("shared");
    Visitor::new(&a.base).sign_up(&name, PASSWORD).await;
    for app in [&a, &b, &a, &b] {
        let r = Visitor::new(&app.base)
            .post_json(
                "/api/log_in",
                &json!({"username": name, "password": "wrong password"}),
                None,
            )
            .await;
        assert_eq!(r.status, 401);
    }
    for app in [&a, &b] {
        let r = Visitor::new(&app.base)
            .post_json(
                "/api/log_in",
                &json!({"username": name, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(r.status, 429, "{}", r.body);
    }
}

/// The cloud path limits by API Gateway's `sourceIp` (the stand-in puts the
/// real peer there), through the Lambda adapter.
#[tokio::test]
async fn the_lambda_path_limits_by_source_ip() {
    let gw = spawn_gateway(
        Arc::new(MemoryStore::new()),
        GatewayOptions::default(),
        &[("ROLLCALL_LOGIN_RATE_PER_ADDR", "3/1m")],
    )
    .await;
    let v = Visitor::new(&gw.base);
    let statuses = {
        let mut s = Vec::new();
        for _ in 0..4 {
            s.push(
                v.post_json(
                    "/api/log_in",
                    &json!({"username": "nobody", "password": "x"}),
                    None,
                )
                .await
                .status,
            );
        }
        s
    };
    assert_eq!(statuses, [401, 401, 401, 429]);
}

#[tokio::test]
async fn a_full_hasher_answers_503_with_retry_after_instead_of_queueing() {
    let app = spawn_app_with_small_hasher().await;
    let attempts = (0..12).map(|i| {
        let v = Visitor::new(&app.base);
        async move {
            v.post_json(
                "/api/log_in",
                &json!({"username": format!("n{i}"), "password": "x"}),
                None,
            )
            .await
        }
    });
    let replies = futures_util::future::join_all(attempts).await;
    let busy: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(
        !busy.is_empty(),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(replies.iter().all(|r| r.status == 503 || r.status == 401));
    for r in busy {
        assert_eq!(r.retry_after.as_deref(), Some("1"));
        let body: Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(body["error"], "The server is busy; try again in 1 second.");
    }
}

async fn spawn_app_with_small_hasher() -> rollcall_tests::app::TestApp {
    spawn_with(
        &Backend::Memory,
        &[
            ("ROLLCALL_HASH_CONCURRENCY", "1"),
            ("ROLLCALL_HASH_QUEUE", "1"),
        ],
    )
    .await
}

/// Behind a trusted proxy each client is counted by the address the proxy
/// appended to `X-Forwarded-For`; without one the header is ignored.
#[tokio::test]
async fn behind_a_trusted_proxy_clients_are_counted_apart() {
    async fn attempts(base: &str, forwarded_for: &str, n: usize) -> Vec<u16> {
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        for _ in 0..n {
            let r = client
                .post(format!("{base}/api/log_in"))
                .header("x-forwarded-for", forwarded_for)
                .json(&json!({"username": "nobody", "password": "x"}))
                .send()
                .await
                .expect("request");
            statuses.push(r.status().as_u16());
        }
        statuses
    }
    let limit = ("ROLLCALL_LOGIN_RATE_PER_ADDR", "2/1m");
    let proxied = spawn_with(
        &Backend::Memory,
        &[limit, ("ROLLCALL_TRUSTED_PROXIES", "127.0.0.0/8")],
    )
    .await;
    // A client-written entry on the left changes nothing.
    assert_eq!(
        attempts(&proxied.base, "198.51.100.1", 3).await,
        [401, 401, 429]
    );
    assert_eq!(
        attempts(&proxied.base, "6.6.6.6, 198.51.100.1", 1).await,
        [429]
    );
    assert_eq!(attempts(&proxied.base, "198.51.100.2", 1).await, [401]);
    let direct = spawn_with(&Backend::Memory, &[limit]).await;
    assert_eq!(attempts(&direct.base, "198.51.100.1", 2).await, [401, 401]);
    assert_eq!(attempts(&direct.base, "198.51.100.2", 1).await, [429]);
}

/// `POST /api/ws_ticket` as the page sends it (the cookie of `v`, if any,
/// the JSON content type, the page's Origin): status and `Retry-After`.
async fn ticket_request(base: &str, v: Option<&Visitor>) -> (u16, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/ws_ticket"))
        .header("content-type", "application/json")
        .header("origin", base)
        .body("{}");
    if let Some(v) = v {
        req = req.header("cookie", v.cookie_header());
    }
    let r = req.send().await.expect("request");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    (r.status().as_u16(), retry)
}

/// Socket tickets are limited per session and per client address (counted
/// before the session is looked up: requests without one count too), 429
/// with `Retry-After`; on the local server and through the Lambda adapter
/// (by `sourceIp`) alike. (Hour-long windows: a fixed window's edge
/// cannot fall inside the test.)
#[tokio::test]
async fn socket_tickets_are_limited_per_session_and_per_address() {
    let app = spawn_with(
        &Backend::Memory,
        &[
            ("ROLLCALL_WS_TICKETS_PER_SESSION", "3/1h"),
            ("ROLLCALL_WS_TICKETS_PER_ADDR", "6/1h"),
        ],
    )
    .await;
    let gw = spawn_gateway(
        Arc::new(MemoryStore::new()),
        GatewayOptions::default(),
        &[
            ("ROLLCALL_WS_TICKETS_PER_SESSION", "3/1h"),
            ("ROLLCALL_WS_TICKETS_PER_ADDR", "6/1h"),
        ],
    )
    .await;
    for base in [&app.base, &gw.base] {
        let (bob, amy) = (Visitor::new(base), Visitor::new(base));
        bob.register(&unique_name("bob")).await;
        amy.register(&unique_name("amy")).await;
        for _ in 0..3 {
            assert_eq!(ticket_request(base, Some(&bob)).await.0, 200, "{base}");
        }
        let (status, retry) = ticket_request(base, Some(&bob)).await;
        assert_eq!(status, 429, "{base}: bob's fourth ticket this hour");
        let secs: u64 = retry.and_then(|r| r.parse().ok()).expect("Retry-After");
        assert!((1..=3600).contains(&secs), "{secs}");
        // Another session from the same address: its own count…
        assert_eq!(ticket_request(base, Some(&amy)).await.0, 200, "{base}");
        // …until the address has asked 6 times (bob's refused one
        // included); anonymous requests count too, before the 401.
        assert_eq!(ticket_request(base, None).await.0, 401, "{base}");
        let (status, retry) = ticket_request(base, Some(&amy)).await;
        assert_eq!(status, 429, "{base}: the address's seventh");
        assert!(retry.is_some());
    }
}
