//! The view's rules: merge by transition number, skip what it knows, one
//! frame per change, joins remembered since the load.

use super::*;
use crate::domain::PresenceEvent;

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

fn at(s: &str, seq: u64) -> UserPresence {
    UserPresence::at(name(s), seq)
}

fn presence(s: &str, seq: u64) -> LogEvent {
    LogEvent::Presence(PresenceEvent::transition(name(s), seq, None))
}

fn frames(view: &PresenceView, events: &[LogEvent]) -> Vec<String> {
    let mut out = Vec::new();
    view.apply(events, |b| out.push(String::from_utf8(b.to_vec()).unwrap()));
    out
}

#[test]
fn a_load_merges_the_cut_and_the_newer_user_list_by_transition_number() {
    let view = PresenceView::new();
    let t0 = Timestamp::from_millis(1_000);
    // The cut says bob is online at 3; the list, read later, has him at 4.
    let frame = view.load(
        vec![at("bob", 3), at("cy", 1)],
        vec![at("amy", 0), at("bob", 4), at("cy", 1)],
        t0,
        |f| {
            assert_eq!(f.len(), 1, "a small snapshot is one frame");
            String::from_utf8(f[0].to_vec()).unwrap()
        },
    );
    assert!(
        frame.starts_with(r#"{"type":"snapshot","reset":true,"at":"#),
        "{frame}"
    );
    assert!(
        frame.ends_with(r#","users":[{"username":"cy","is_logged_in":true,"seq":1}],"total":3}"#),
        "{frame}"
    );
    assert_eq!(view.online(), vec![at("cy", 1)]);
    assert_eq!(view.stats().users, 3);
    // The log after the cut replays bob's 4th transition: already known.
    assert!(frames(&view, &[presence("bob", 4)]).is_empty());
    assert_eq!(
        frames(&view, &[presence("bob", 5), presence("bob", 5)]),
        vec![r#"{"username":"bob","is_logged_in":true,"seq":5}"#.to_owned()],
        "one frame per change, duplicates skipped"
    );
}

#[test]
fn the_snapshot_frame_is_serialised_once_per_change() {
    let view = PresenceView::new();
    view.load(
        vec![],
        vec![at("amy", 0)],
        Timestamp::from_millis(1),
        |_| (),
    );
    let first = |f: &[Bytes]| f[0].clone();
    let a = view.join(first);
    let b = view.join(first);
    assert_eq!(a.as_ptr(), b.as_ptr(), "the same buffer is shared");
    frames(&view, &[presence("amy", 1)]);
    let c = view.join(first);
    assert_ne!(a, c);
    assert!(String::from_utf8(c.to_vec()).unwrap().contains("amy"));
}

#[test]
fn joins_appear_in_the_list_and_are_remembered_since_the_load() {
    let view = PresenceView::new();
    let loaded = Timestamp::from_millis(100_000);
    view.load(vec![], vec![], loaded, |_| ());
    let joined = LogEvent::Joined {
        username: name("new"),
        created_at: Timestamp::from_millis(200_000),
    };
    assert_eq!(
        frames(&view, std::slice::from_ref(&joined)),
        vec![r#"{"username":"new","is_logged_in":false,"seq":0}"#.to_owned()]
    );
    assert!(frames(&view, &[joined]).is_empty(), "a duplicate join");
    assert_eq!(view.users_page(None, None, 10).items, vec![at("new", 0)]);
    assert_eq!(
        view.joined_since(Timestamp::from_millis(150_000), 10),
        Joined::Known(vec![name("new")], false)
    );
    assert_eq!(
        view.joined_since(Timestamp::from_millis(300_000), 10),
        Joined::Known(vec![], false)
    );
    assert_eq!(
        view.joined_since(Timestamp::from_millis(1), 10),
        Joined::Unknown,
        "before the load: the store knows"
    );
}

#[test]
fn rows_are_rendered_once_per_change() {
    let view = PresenceView::new();
    view.load(
        vec![],
        vec![at("amy", 0)],
        Timestamp::from_millis(1),
        |_| (),
    );
    let mut renders = 0;
    let now = Timestamp::from_millis(1_795_000_000_000);
    for _ in 0..3 {
        view.rows(now, 100, |head, _| {
            renders += 1;
            format!("{}", head.first.len())
        });
    }
    assert_eq!(renders, 1);
    frames(&view, &[presence("amy", 1)]);
    view.rows(now, 100, |_, _| {
        renders += 1;
        String::new()
    });
    assert_eq!(renders, 2);
    // A minute later "last seen … ago" reads differently: rendered again.
    view.rows(now.plus(Duration::from_secs(60)), 100, |_, _| {
        renders += 1;
        String::new()
    });
    assert_eq!(renders, 3);
}

#[test]
fn an_offline_transition_keeps_its_time_until_the_next_one() {
    let view = PresenceView::new();
    view.load(
        vec![],
        vec![at("amy", 0)],
        Timestamp::from_millis(1),
        |_| (),
    );
    let seen = Timestamp::from_millis(1_795_000_000_000);
    let gone = LogEvent::Presence(PresenceEvent::transition(name("amy"), 2, Some(seen)));
    let sent = frames(&view, &[presence("amy", 1), gone]);
    assert_eq!(
        sent[1],
        r#"{"username":"amy","is_logged_in":false,"seq":2,"last_seen":1795000000000}"#
    );
    assert_eq!(
        view.users_page(None, None, 10).items[0].last_seen,
        Some(seen)
    );
    // Online again: no last seen shown; offline again: the new time.
    frames(&view, &[presence("amy", 3)]);
    assert_eq!(view.users_page(None, None, 10).items[0].last_seen, None);
    let later = Timestamp::from_millis(1_795_000_060_000);
    frames(
        &view,
        &[LogEvent::Presence(PresenceEvent::transition(
            name("amy"),
            4,
            Some(later),
        ))],
    );
    assert_eq!(
        view.users_page(None, None, 10).items[0].last_seen,
        Some(later)
    );
}

#[tokio::test]
async fn waiting_for_a_transition_returns_once_it_is_applied() {
    let view = Arc::new(PresenceView::new());
    view.load(vec![], vec![], Timestamp::from_millis(1), |_| ());
    assert!(
        !view
            .wait_for(&name("amy"), 1, Duration::from_millis(20))
            .await
    );
    let v = view.clone();
    let waiter =
        tokio::spawn(async move { v.wait_for(&name("amy"), 1, Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    frames(&view, &[presence("amy", 1)]);
    assert!(waiter.await.unwrap());
}

#[test]
fn a_large_snapshot_goes_in_parts_that_list_everyone_once() {
    let view = PresenceView::new();
    let online: Vec<UserPresence> = (0..1000).map(|i| at(&format!("user{i:04}"), 1)).collect();
    view.load(online.clone(), vec![], Timestamp::from_millis(1), |_| ());
    let parts: Vec<serde_json::Value> = view.join(|f| {
        f.iter()
            .map(|b| {
                assert!(b.len() <= SNAPSHOT_PART_BYTES, "{}", b.len());
                serde_json::from_slice(b).unwrap()
            })
            .collect()
    });
    assert!(parts.len() > 4, "{}", parts.len());
    let mut names = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["reset"], true);
        assert_eq!(p["more"] == true, i + 1 < parts.len());
        names.extend(
            p["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["username"].clone()),
        );
    }
    assert_eq!(names.len(), 1000);
}

#[test]
fn the_rows_list_every_online_user_and_the_first_page_and_pages_search_by_prefix() {
    let view = PresenceView::new();
    let mut users: Vec<UserPresence> = (0..50).map(|i| at(&format!("u{i:02}"), 0)).collect();
    users.push(at("zed", 1));
    view.load(vec![at("zed", 1)], users, Timestamp::from_millis(1), |_| ());
    let now = Timestamp::from_millis(1_795_000_000_000);
    let rows = view.rows(now, 10, |head, _| {
        format!(
            "{} {} {:?} {}",
            head.online.len(),
            head.first.len(),
            head.next,
            head.total
        )
    });
    assert_eq!(&*rows, r#"1 10 Some("u09") 51"#);
    let p = NamePrefix::parse("u1").unwrap();
    let page = view.users_page(None, Some(&p), 4);
    let names: Vec<&str> = page.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["u10", "u11", "u12", "u13"]);
    assert_eq!(page.next.as_deref(), Some("u13"));
    let rest = view.users_page(Some(&name("u13")), Some(&p), 100);
    assert_eq!(rest.items.len(), 6, "u14..u19");
    assert_eq!(rest.next, None);
    assert!(
        view.users_page(Some(&name("u2")), Some(&p), 10)
            .items
            .is_empty()
    );
}
