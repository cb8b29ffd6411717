//! The hub's unit tests.

use rollcall::domain::{PresenceEvent, Username};

use super::*;

fn event(name: &str, on: bool, seq: u64) -> BusMessage {
    let username = Username::parse(name).unwrap();
    BusMessage::Presence(Announcement::to_all(PresenceEvent {
        username,
        is_logged_in: on,
        seq,
    }))
}

fn frame(o: Outbound) -> String {
    match o {
        Outbound::Frame(b) => b.as_str().to_owned(),
        Outbound::Snapshot => "snapshot".into(),
    }
}

#[tokio::test]
async fn every_socket_gets_the_same_frame_once() {
    let hub = Hub::new();
    let (a, b) = (ConnectionId::generate(), ConnectionId::generate());
    let (mut ra, mut rb) = (hub.register(&a), hub.register(&b));
    hub.deliver(event("josé", true, 1));
    let want = r#"{"username":"josé","is_logged_in":true}"#;
    assert_eq!(frame(ra.rx.recv().await.unwrap()), want);
    assert_eq!(frame(rb.rx.recv().await.unwrap()), want);
    assert!(ra.rx.try_recv().is_err());
}

fn received(r: &mut Registration) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(o) = r.rx.try_recv() {
        out.push(frame(o));
    }
    out
}

#[tokio::test]
async fn crossed_events_are_put_back_in_order_and_duplicates_dropped() {
    let hub = Hub::new();
    let mut r = hub.register(&ConnectionId::generate());
    hub.deliver(event("ann", false, 0)); // signed up
    hub.deliver(event("ann", false, 2)); // crossed with 1 from another process
    assert_eq!(received(&mut r).len(), 1, "2 waits for 1");
    hub.deliver(event("ann", true, 1));
    hub.deliver(event("ann", true, 1)); // a duplicate
    hub.deliver(event("ann", false, 0)); // a late sign-up announcement
    let got = received(&mut r);
    assert_eq!(got.len(), 2);
    assert!(
        got[0].contains("true") && got[1].contains("false"),
        "{got:?}"
    );
}

#[tokio::test]
async fn an_event_whose_predecessor_never_comes_is_released_after_the_hold() {
    let hub = Hub::new();
    let mut r = hub.register(&ConnectionId::generate());
    hub.deliver(event("bo", true, 1));
    hub.deliver(event("bo", true, 3)); // 2 was lost
    hub.flush_overdue();
    assert_eq!(received(&mut r).len(), 1);
    std::thread::sleep(REORDER_HOLD);
    hub.flush_overdue();
    assert_eq!(received(&mut r).len(), 1, "3 released");
    hub.deliver(event("bo", false, 4));
    assert_eq!(received(&mut r).len(), 1, "and the line continues");
}

#[tokio::test]
async fn an_announcement_skips_the_connection_it_is_about() {
    let hub = Hub::new();
    let (me, other) = (ConnectionId::generate(), ConnectionId::generate());
    let (mut rm, mut ro) = (hub.register(&me), hub.register(&other));
    let BusMessage::Presence(mut a) = event("cy", true, 1) else {
        unreachable!()
    };
    a.except = Some(me.clone());
    hub.deliver(BusMessage::Presence(a));
    assert!(received(&mut rm).is_empty());
    assert_eq!(received(&mut ro).len(), 1);
}

#[tokio::test]
async fn a_socket_that_falls_behind_is_closed_not_starved() {
    let hub = Hub::new();
    let id = ConnectionId::generate();
    let r = hub.register(&id);
    for seq in 1..=(QUEUE_CAPACITY as u64 + 1) {
        hub.deliver(event("ann", seq % 2 == 1, seq));
    }
    assert!(r.cancel.is_cancelled());
    assert_eq!(r.close_code(), close::LAGGING);
}

#[tokio::test]
async fn close_messages_close_only_the_listed_sockets() {
    let hub = Hub::new();
    let (a, b) = (ConnectionId::generate(), ConnectionId::generate());
    let (ra, rb) = (hub.register(&a), hub.register(&b));
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
