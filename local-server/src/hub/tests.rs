//! The hub's unit tests.

use super::*;

fn received(r: &mut Registration) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(Outbound(frames)) = r.rx.try_recv() {
        out.extend(frames.iter().map(|b| b.as_str().to_owned()));
    }
    out
}

fn one(s: &'static str) -> Outbound {
    Outbound::one(Utf8Bytes::from_static(s))
}

#[tokio::test]
async fn a_socket_starts_with_its_snapshot_then_gets_every_frame_once() {
    let queued = Counter::default();
    let hub = Hub::counting(queued.clone());
    let (a, b) = (ConnectionId::generate(), ConnectionId::generate());
    let mut ra = hub.register(&a, one("snapshot-a"));
    let mut rb = hub.register(&b, one("snapshot-b"));
    let text = r#"{"username":"josé","is_logged_in":true,"seq":1}"#;
    hub.fan_out(&one(text));
    assert_eq!(received(&mut ra), ["snapshot-a", text]);
    assert_eq!(received(&mut rb), ["snapshot-b", text]);
    assert_eq!(hub.len(), 2);
    assert_eq!(queued.get(), 2, "one frame per socket counted");
}

#[tokio::test]
async fn every_socket_shares_one_buffer_per_frame() {
    let hub = Hub::new();
    let mut r = hub.register(&ConnectionId::generate(), one(""));
    let frame = Utf8Bytes::from("x".repeat(100));
    hub.fan_out(&Outbound::one(frame.clone()));
    let _snapshot = r.rx.try_recv().unwrap();
    let Outbound(got) = r.rx.try_recv().unwrap();
    assert_eq!(got[0].as_str().as_ptr(), frame.as_str().as_ptr());
}

#[tokio::test]
async fn a_socket_that_falls_behind_is_closed_not_starved() {
    let hub = Hub::new();
    let id = ConnectionId::generate();
    let r = hub.register(&id, one("s"));
    for _ in 0..QUEUE_CAPACITY {
        hub.fan_out(&one("e"));
    }
    assert!(r.cancel.is_cancelled());
    assert_eq!(r.close_code(), close::LAGGING);
}

#[tokio::test]
async fn close_messages_close_only_the_listed_sockets() {
    let hub = Hub::new();
    let (a, b) = (ConnectionId::generate(), ConnectionId::generate());
    let (ra, rb) = (hub.register(&a, one("")), hub.register(&b, one("")));
    hub.deliver(BusMessage::Close {
        ids: vec![a.clone()],
        code: close::LOGGED_OUT,
    });
    assert!(ra.cancel.is_cancelled() && !rb.cancel.is_cancelled());
    assert_eq!(ra.close_code(), close::LOGGED_OUT);
    hub.close_all();
    assert!(rb.cancel.is_cancelled());
    assert_eq!(rb.close_code(), close::GOING_AWAY);
    hub.unregister(&a);
    assert_eq!(hub.len(), 1);
}

#[tokio::test]
async fn a_send_reaches_only_its_socket() {
    let hub = Hub::new();
    let (a, b) = (ConnectionId::generate(), ConnectionId::generate());
    let (mut ra, mut rb) = (hub.register(&a, one("")), hub.register(&b, one("")));
    hub.deliver(BusMessage::Send {
        id: a.clone(),
        text: "hi".into(),
    });
    assert_eq!(received(&mut ra), ["", "hi"]);
    assert_eq!(received(&mut rb), [""]);
}
