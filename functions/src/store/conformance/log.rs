//! Checks on the event log: every change logged once, in order, with the
//! change; readers wait, resume from a cut, and are told about a gap.

use std::time::Duration;

use super::{conn, later, name, open_session, user};
use crate::domain::{LogEvent, PresenceEvent, Timestamp};
use crate::store::{LogCursor, LogRead, Offline, RemoveIf, Store};

/// Reads everything after `cursor` that is there now.
pub(crate) async fn read_all(store: &dyn Store, cursor: &LogCursor) -> (Vec<LogEvent>, LogCursor) {
    let mut events = Vec::new();
    let mut cursor = cursor.clone();
    loop {
        match store
            .read_log(&cursor, 2, Duration::ZERO)
            .await
            .expect("read")
        {
            LogRead::Entries {
                events: e,
                cursor: c,
            } => {
                if e.is_empty() {
                    return (events, cursor);
                }
                events.extend(e);
                cursor = c;
            }
            LogRead::Gap => panic!("unexpected gap after {cursor:?}"),
        }
    }
}

/// `t` is between `before` and `after`, give or take a second (a backend
/// that takes the time from its own clock: Redis's `TIME`).
pub(crate) fn within_clock_slack(t: Timestamp, before: Timestamp, after: Timestamp) -> bool {
    let slack = Duration::from_secs(1);
    t.plus(slack) >= before && t <= after.plus(slack)
}

/// The entry without the time a presence event carries.
pub(crate) fn without_last_seen(e: LogEvent) -> LogEvent {
    match e {
        LogEvent::Presence(p) => LogEvent::Presence(p.without_last_seen()),
        other => other,
    }
}

fn presence(user: &str, seq: u64) -> LogEvent {
    LogEvent::Presence(PresenceEvent::transition(name(user), seq, None))
}

/// Sign-ups and presence transitions are logged once each, in order, with
/// their numbers; silent changes (a second tab, one of two closing) are not.
pub async fn every_change_is_logged_once_in_order(store: &dyn Store) {
    let start = store.online_users().await.expect("cut").cursor;
    store.create_user(&user("alice")).await.expect("create");
    let s = open_session(store, "alice", later(600)).await;
    let (tab1, tab2) = (conn(&s, later(60)), conn(&s, later(60)));
    store.add_connection(&tab1, None).await.expect("add");
    store.add_connection(&tab2, None).await.expect("add");
    let rm = |id| store.remove_connection(id, RemoveIf::Always, Offline::Now);
    rm(&tab1.id).await.expect("rm");
    let before = Timestamp::now();
    rm(&tab2.id).await.expect("rm");
    let after = Timestamp::now();
    let (events, end) = read_all(store, &start).await;
    // The offline entry says when: the store's clock at the transition.
    let seen = match events.last() {
        Some(LogEvent::Presence(p)) => p.last_seen,
        _ => None,
    };
    assert!(
        seen.is_some_and(|t| within_clock_slack(t, before, after)),
        "the offline entry carries its time: {seen:?}, not in {before:?}..{after:?}"
    );
    let events: Vec<LogEvent> = events.into_iter().map(without_last_seen).collect();
    assert_eq!(
        events,
        vec![
            LogEvent::Joined {
                username: name("alice"),
                created_at: user("alice").created_at,
            },
            presence("alice", 1),
            presence("alice", 2),
        ]
    );
    assert_eq!(read_all(store, &end).await.0, vec![], "nothing twice");
}

/// A reader at the end of the log waits for the next entry, and returns
/// empty-handed when nothing comes within its wait.
pub async fn a_reader_waits_for_the_next_entry(store: &dyn Store) {
    let end = store.online_users().await.expect("cut").cursor;
    let idle = store
        .read_log(&end, 10, Duration::from_millis(100))
        .await
        .expect("read");
    assert!(
        matches!(&idle, LogRead::Entries { events, .. } if events.is_empty()),
        "{idle:?}"
    );
    let started = tokio::time::Instant::now();
    let (read, ()) = tokio::join!(store.read_log(&end, 10, Duration::from_secs(5)), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.create_user(&user("bob")).await.expect("create");
    });
    let LogRead::Entries { events, .. } = read.expect("read") else {
        panic!("a gap")
    };
    assert!(
        matches!(&events[..], [LogEvent::Joined { username, .. }] if *username == name("bob")),
        "{events:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "woken by the entry"
    );
}

/// The cut lists exactly the online users with their transition numbers,
/// and the log read from its cursor holds exactly what came after.
pub async fn the_online_cut_and_the_log_after_it_add_up(store: &dyn Store) {
    for n in ["amy", "bob", "cy"] {
        store.create_user(&user(n)).await.expect("create");
    }
    let (sb, sc) = (
        open_session(store, "bob", later(600)).await,
        open_session(store, "cy", later(600)).await,
    );
    store
        .add_connection(&conn(&sb, later(60)), None)
        .await
        .expect("add");
    let cy = conn(&sc, later(60));
    store.add_connection(&cy, None).await.expect("add");
    store
        .remove_connection(&cy.id, RemoveIf::Always, Offline::Now)
        .await
        .expect("rm");
    let cut = store.online_users().await.expect("cut");
    let listed: Vec<(&str, u64, bool)> = cut
        .users
        .iter()
        .map(|u| (u.username.as_str(), u.seq, u.is_logged_in))
        .collect();
    assert_eq!(listed, [("bob", 1, true)]);
    let sa = open_session(store, "amy", later(600)).await;
    store
        .add_connection(&conn(&sa, later(60)), None)
        .await
        .expect("add");
    assert_eq!(
        read_all(store, &cut.cursor).await.0,
        vec![presence("amy", 1)]
    );
}

/// A cursor the backend did not make, or one past its end, is a gap.
pub async fn a_cursor_the_log_does_not_know_is_a_gap(store: &dyn Store) {
    for junk in ["", "junk", "1-1/x", "9:9"] {
        assert_eq!(
            store
                .read_log(&LogCursor(junk.into()), 10, Duration::ZERO)
                .await
                .expect("read"),
            LogRead::Gap,
            "{junk:?}"
        );
    }
}

/// Users are paged by name (with their presence, never a hash), and the
/// users who joined after a time are listed oldest first.
pub async fn users_are_paged_by_name_and_listed_by_join_time(store: &dyn Store) {
    let names = ["dee", "amy", "cy", "bob", "eve"];
    for (i, n) in names.iter().enumerate() {
        let mut u = user(n);
        u.created_at = later(i as u64 * 10);
        store.create_user(&u).await.expect("create");
    }
    let first = store.list_users(None, None, 2).await.expect("page");
    let got: Vec<&str> = first.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(got, ["amy", "bob"]);
    assert_eq!(first.next.as_deref(), Some("bob"));
    let rest = store
        .list_users(Some(&name("bob")), None, 10)
        .await
        .expect("page");
    let got: Vec<&str> = rest.items.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(got, ["cy", "dee", "eve"]);
    assert_eq!(rest.next, None);
    let joined = store.joined_since(later(10), 2).await.expect("joined");
    assert_eq!(joined, vec![name("cy"), name("bob")]);
    let none = store
        .joined_since(Timestamp::from_millis(u64::MAX / 2), 10)
        .await
        .expect("joined");
    assert!(none.is_empty());
}
