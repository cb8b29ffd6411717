//! The local server against slow and greedy HTTP clients.

use std::time::{Duration, Instant};

use rollcall_local_server::node::Backend;
use rollcall_tests::app::spawn_with;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A slowloris client sends its headers a byte at a time, forever: the
/// connection is closed once the header timeout has passed.
#[tokio::test]
async fn a_client_sending_headers_byte_by_byte_is_cut_off_within_the_bound() {
    let app = spawn_with(
        &Backend::Memory,
        &[("ROLLCALL_HTTP_HEADER_TIMEOUT_SECS", "0.5")],
    )
    .await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let started = Instant::now();
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let mut cut_off = None;
    // Bounded: at most 400 bytes, 25 ms apart (10 s).
    for byte in head.iter().chain(std::iter::repeat(&b'a')).take(400) {
        if stream.write_all(&[*byte]).await.is_err() {
            cut_off = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(25), stream.read(&mut buf)).await {
            // The server closed (0 bytes), reset, or answered (408) and closed.
            Ok(Ok(0) | Err(_)) => {
                cut_off = Some(started.elapsed());
                break;
            }
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
    }
    let after = cut_off.expect("the server cut the slow client off");
    assert!(
        after >= Duration::from_millis(400) && after < Duration::from_secs(3),
        "cut off after {after:?}"
    );
}

/// A body that never finishes is answered 408 after the request timeout.
#[tokio::test]
async fn a_request_whose_body_never_finishes_gets_408() {
    let app = spawn_with(&Backend::Memory, &[("ROLLCALL_HTTP_TIMEOUT_SECS", "0.5")]).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let started = Instant::now();
    stream
        .write_all(
            b"POST /api/log_in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"user",
        )
        .await
        .expect("write");
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        reply.ends_with(r#"{"error":"The request took too long."}"#),
        "{reply}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Headers over the limit are refused (431) without being buffered.
#[tokio::test]
async fn oversized_headers_are_refused() {
    let app = spawn_with(&Backend::Memory, &[]).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let big = "a".repeat(rollcall_local_server::app::MAX_HEADER_BYTES + 1024);
    let req = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let _ = stream.write_all(req.as_bytes()).await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
}

/// Ordinary traffic still works under the limits (keep-alive, several
/// requests on one connection).
#[tokio::test]
async fn keep_alive_requests_are_served_under_the_limits() {
    let app = spawn_with(&Backend::Memory, &[("ROLLCALL_HTTP_MAX_CONCURRENCY", "2")]).await;
    let client = reqwest::Client::new();
    let gets = (0..20).map(|_| client.get(format!("{}/healthz", app.base)).send());
    for r in futures_util::future::join_all(gets).await {
        assert_eq!(r.expect("served").status(), 200);
    }
}
