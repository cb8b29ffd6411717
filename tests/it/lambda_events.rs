//! The Lambda functions' adapters on real API Gateway event fixtures
//! (`tests/fixtures/`), through `lambda_http`'s own request parsing.

use std::sync::Arc;

use lambda_http::RequestExt;
use lambda_http::request::{LambdaRequest, RequestContext, RequestOrigin};
use rollcall::AppContext;
use rollcall::config::Config;
use rollcall::context::Announcing;
use rollcall::domain::{ConnectionId, SessionToken, Timestamp, Username};
use rollcall::push::recording::{Pushed, RecordingPusher};
use rollcall::queue::recording::RecordingQueues;
use rollcall::security::csrf::CsrfSecret;
use rollcall::store::memory::MemoryStore;
use rollcall::store::{SessionRecord, Store, UserRecord};
use rollcall_local_server::gateway::invoke;
use serde_json::Value;

const CONNECTION: &str = "L0SM9cOFvHcCIhw=";

fn fixture(name: &str) -> String {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn event(name: &str, replace: &[(&str, &str)]) -> Value {
    let mut text = fixture(name);
    for (from, to) in replace {
        text = text.replace(from, to);
    }
    serde_json::from_str(&text).expect("fixture is JSON")
}

#[test]
fn websocket_events_parse_as_websocket_requests_and_keep_their_connection_id() {
    for name in [
        "apigw-ws-connect.json",
        "apigw-ws-connect-with-http-method.json",
        "apigw-ws-default.json",
        "apigw-ws-disconnect.json",
    ] {
        let req: LambdaRequest = serde_json::from_str(&fixture(name)).expect(name);
        assert!(
            matches!(req.request_origin(), RequestOrigin::WebSocket),
            "{name}"
        );
        let req: lambda_http::Request = req.into();
        let RequestContext::WebSocket(ctx) = req.request_context() else {
            panic!("{name}: not a WebSocket context");
        };
        assert_eq!(ctx.connection_id.as_deref(), Some(CONNECTION), "{name}");
        // The client address the socket limits will count by.
        assert_eq!(
            rollcall::lambda::source_ip(&req)
                .map(|a| a.to_string())
                .as_deref(),
            Some("203.0.113.7"),
            "{name}"
        );
    }
    let http: LambdaRequest =
        serde_json::from_str(&fixture("apigw-http-log-in.json")).expect("http");
    assert!(matches!(http.request_origin(), RequestOrigin::ApiGatewayV2));
    // The HTTP API's `requestContext.http.sourceIp`: what log in and sign up
    // are limited by.
    let http: lambda_http::Request = http.into();
    assert_eq!(
        rollcall::lambda::source_ip(&http)
            .map(|a| a.to_string())
            .as_deref(),
        Some("203.0.113.7")
    );
}

struct Setup {
    ctx: AppContext,
    pusher: Arc<RecordingPusher>,
    queues: Arc<RecordingQueues>,
    token: SessionToken,
}

async fn setup() -> Setup {
    let store = Arc::new(MemoryStore::new());
    let pusher = Arc::new(RecordingPusher::new());
    let mut config = Config::for_tests();
    // A disconnect announces at once here; the grace has its own tests.
    config.offline_grace = std::time::Duration::ZERO;
    config
        .allowed_origins
        .allow("https://pages.example.com")
        .expect("origin");
    // A store whose log no AWS service reads: handlers queue their events.
    let queues = Arc::new(RecordingQueues::new());
    let ctx = AppContext::new(store.clone(), pusher.clone(), config)
        .with_queues(queues.clone(), Announcing::ByQueue);
    let username = Username::parse("josé").expect("name");
    let password = rollcall::domain::Password::parse(rollcall_tests::PASSWORD, None).expect("pw");
    let hash = ctx.hasher.hash(&password).await.expect("hash");
    store
        .create_user(&UserRecord {
            username: username.clone(),
            password_hash: hash,
            created_at: Timestamp::now(),
        })
        .await
        .expect("user");
    let token = SessionToken::generate();
    store
        .create_session(&SessionRecord {
            key: token.key(),
            username,
            expires_at: Timestamp::now().plus(std::time::Duration::from_secs(600)),
        })
        .await
        .expect("session");
    Setup {
        ctx,
        pusher,
        queues,
        token,
    }
}

/// The events queued for the fan-out (one shard: the memory store's).
fn presence(queues: &RecordingQueues) -> Vec<(String, bool)> {
    queues
        .take_pushed()
        .into_iter()
        .map(|m| {
            assert_eq!(m.shard, 0);
            (m.event.username.as_str().to_owned(), m.event.is_logged_in)
        })
        .collect()
}

#[tokio::test]
async fn connect_ping_and_disconnect_events_drive_presence() {
    let Setup {
        ctx,
        pusher,
        queues,
        token,
    } = setup().await;
    let ctx = &ctx;
    let connect = event(
        "apigw-ws-connect.json",
        &[("SESSION_TOKEN", token.expose())],
    );
    let reply = invoke(connect, |r| rollcall::lambda::ws_connect(ctx, r)).await;
    assert_eq!(reply.status, 200);
    assert!(pusher.take().is_empty(), "nothing posted inside $connect");
    assert_eq!(presence(&queues), [("josé".to_owned(), true)]);
    let group = ctx.store.group_connections(None, 10).await.expect("group");
    assert_eq!(group.items, [ConnectionId::parse(CONNECTION).expect("id")]);

    let ping = event("apigw-ws-default.json", &[]);
    assert_eq!(
        invoke(ping, |r| rollcall::lambda::ws_default(ctx, r))
            .await
            .status,
        200
    );
    let calls = pusher.take();
    assert!(
        matches!(&calls[..], [Pushed::Send(id, text)] if id.as_str() == CONNECTION && text == r#"{"type":"pong"}"#),
        "{calls:?}"
    );

    let disconnect = event("apigw-ws-disconnect.json", &[]);
    assert_eq!(
        invoke(disconnect, |r| rollcall::lambda::ws_disconnect(ctx, r))
            .await
            .status,
        200
    );
    assert_eq!(presence(&queues), [("josé".to_owned(), false)]);
    assert!(
        ctx.store
            .group_connections(None, 10)
            .await
            .expect("group")
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn a_connect_event_with_a_top_level_http_method_still_connects() {
    let Setup {
        ctx, queues, token, ..
    } = setup().await;
    let ctx = &ctx;
    let connect = event(
        "apigw-ws-connect-with-http-method.json",
        &[("SESSION_TOKEN", token.expose())],
    );
    assert_eq!(
        invoke(connect, |r| rollcall::lambda::ws_connect(ctx, r))
            .await
            .status,
        200
    );
    assert_eq!(presence(&queues).len(), 1);
}

#[tokio::test]
async fn connect_events_without_a_session_or_from_a_foreign_origin_are_refused() {
    let Setup {
        ctx,
        pusher,
        queues,
        ..
    } = setup().await;
    let ctx = &ctx;
    let forged = "A".repeat(43);
    let anonymous = event(
        "apigw-ws-connect.json",
        &[("SESSION_TOKEN", forged.as_str())],
    );
    assert_eq!(
        invoke(anonymous, |r| rollcall::lambda::ws_connect(ctx, r))
            .await
            .status,
        401
    );
    let Setup { token, .. } = setup().await; // a token of another store: unknown here
    let foreign = event(
        "apigw-ws-connect.json",
        &[
            ("SESSION_TOKEN", token.expose()),
            ("https://pages.example.com", "https://evil.example"),
        ],
    );
    assert_eq!(
        invoke(foreign, |r| rollcall::lambda::ws_connect(ctx, r))
            .await
            .status,
        403
    );
    assert!(pusher.take().is_empty());
    assert!(presence(&queues).is_empty());
    assert!(
        ctx.store
            .group_connections(None, 10)
            .await
            .expect("group")
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn the_http_function_logs_in_and_returns_cookies_in_the_payload_2_shape() {
    let Setup { ctx, .. } = setup().await;
    let ctx = &ctx;
    let secret = CsrfSecret::generate();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrfmiddlewaretoken", &secret.form_token())
        .append_pair("username", "josé")
        .append_pair("password", rollcall_tests::PASSWORD)
        .finish();
    let login = event(
        "apigw-http-log-in.json",
        &[
            ("CSRF_COOKIE", &secret.cookie_value()),
            ("FORM_BODY", &form),
        ],
    );
    let reply = invoke(login, |r| rollcall::lambda::http(ctx, r)).await;
    assert_eq!(
        reply.status,
        302,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        reply
            .headers
            .iter()
            .any(|(k, v)| k == "location" && v == "/")
    );
    let session = reply
        .cookies
        .iter()
        .find(|c| c.starts_with("sessionid="))
        .expect("session cookie");
    assert!(session.contains("HttpOnly"));
    assert!(
        !reply
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("set-cookie")),
        "cookies go in `cookies`"
    );
}

#[test]
fn query_parameters_reach_the_connect_function() {
    let req: LambdaRequest =
        serde_json::from_str(&fixture("apigw-ws-connect.json")).expect("parse");
    let req: lambda_http::Request = req.into();
    assert_eq!(
        req.query_string_parameters_ref()
            .and_then(|q| q.first("token")),
        Some("SESSION_TOKEN")
    );
}

#[tokio::test]
async fn a_failed_push_message_and_those_after_it_come_back_after_a_short_backoff() {
    let Setup { ctx, queues, .. } = setup().await;
    let good = serde_json::to_string(&rollcall::queue::PushMessage {
        shard: 0,
        event: rollcall::domain::PresenceEvent::transition(
            Username::parse("josé").expect("name"),
            1,
            None,
        ),
    })
    .expect("json");
    let record = |id: &str, body: &str, count: &str| {
        serde_json::json!({
            "messageId": id,
            "receiptHandle": format!("receipt-{id}"),
            "body": body,
            "attributes": { "ApproximateReceiveCount": count },
            "eventSource": "aws:sqs",
        })
    };
    // The second is JSON but not a push message: it fails; the third is
    // held behind it (a FIFO group stays in order).
    let batch = serde_json::json!({ "Records": [
        record("m1", &good, "1"),
        record("m2", r#"{"shard":"x"}"#, "1"),
        record("m3", &good, "3"),
    ]});
    let reply = rollcall::lambda::push(
        &ctx,
        lambda_http::LambdaEvent::new(batch, lambda_http::Context::default()),
    )
    .await
    .expect("push");
    assert_eq!(
        reply,
        serde_json::json!({ "batchItemFailures": [
            { "itemIdentifier": "m2" }, { "itemIdentifier": "m3" }
        ]})
    );
    let retries: Vec<_> = queues
        .take_retries()
        .into_iter()
        .map(|(q, r)| (q, r.receipt, r.after.as_secs()))
        .collect();
    use rollcall::queue::QueueName::Push;
    assert_eq!(
        retries,
        [
            (Push, "receipt-m2".to_owned(), 1),
            (Push, "receipt-m3".to_owned(), 4)
        ],
        "made visible again after 1 s, 2 s, 4 s … by receive count, not the queue's 360 s"
    );
    assert_eq!(
        rollcall::queue::retry_backoff(20).as_secs(),
        60,
        "at most a minute"
    );
}
