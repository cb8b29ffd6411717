//! Checks on "last seen": every offline transition records when it
//! happened, in the same step, whichever way the user left — the last tab
//! closed, a grace period settled (by the sweep or for one user), log out,
//! an expired lease — and the user list says it while they are offline.

use super::log::within_clock_slack;
use super::{conn, later, list_all, name, open_session, user};
use crate::domain::{PresenceEvent, Timestamp, UserPresence};
use crate::store::{Offline, RemoveIf, Store};

/// `alice`'s row in the list.
async fn row(store: &dyn Store) -> UserPresence {
    list_all(store)
        .await
        .into_iter()
        .find(|u| u.username == name("alice"))
        .expect("alice is listed")
}

/// The offline event carries a time taken during the call, and the list
/// shows the same.
async fn check(store: &dyn Store, before: Timestamp, event: Option<PresenceEvent>, how: &str) {
    let after = Timestamp::now();
    let event = event.unwrap_or_else(|| panic!("{how}: an offline event"));
    assert!(!event.is_logged_in, "{how}: {event:?}");
    let seen = event
        .last_seen
        .unwrap_or_else(|| panic!("{how}: the offline event says when: {event:?}"));
    assert!(
        within_clock_slack(seen, before, after),
        "{how}: {seen:?} not within {before:?}..{after:?}"
    );
    let listed = row(store).await;
    assert!(!listed.is_logged_in, "{how}: listed offline");
    assert_eq!(listed.last_seen, Some(seen), "{how}: listed with its time");
}

/// Going offline records when, every way; online again shows none; a user
/// never online has none.
pub async fn every_way_of_going_offline_records_last_seen(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    store.create_user(&user("bob")).await.expect("create");
    let s = open_session(store, "alice", later(600)).await;
    let listed = list_all(store).await;
    assert!(
        listed.iter().all(|u| u.last_seen.is_none()),
        "never online, never seen: {listed:?}"
    );

    // The last tab closes, offline at once.
    let tab = conn(&s, later(60));
    let up = store.add_connection(&tab, None).await.expect("add");
    assert_eq!(
        up.and_then(|e| e.last_seen),
        None,
        "an online event has none"
    );
    assert_eq!(row(store).await.last_seen, None, "online: none listed");
    let before = Timestamp::now();
    let gone = store
        .remove_connection(&tab.id, RemoveIf::Always, Offline::Now)
        .await
        .expect("rm")
        .and_then(|r| r.went_offline);
    check(store, before, gone, "last tab closed").await;
    let first = row(store).await.last_seen;

    // Back online: the list shows no last seen while they are.
    let tab = conn(&s, later(60));
    store.add_connection(&tab, None).await.expect("add");
    assert_eq!(row(store).await.last_seen, None, "online again");

    // The grace period ends (the periodic settle).
    store
        .remove_connection(&tab.id, RemoveIf::Always, Offline::After(later(5)))
        .await
        .expect("rm");
    assert_eq!(row(store).await.last_seen, None, "online during the grace");
    let before = Timestamp::now();
    let settled = store.settle_offline(later(6), 10).await.expect("settle");
    check(store, before, settled.into_iter().next(), "grace settled").await;
    assert!(row(store).await.last_seen >= first, "a newer time");

    // The grace period ends for one user (the cloud's settle message).
    let tab = conn(&s, later(60));
    store.add_connection(&tab, None).await.expect("add");
    store
        .remove_connection(&tab.id, RemoveIf::Always, Offline::After(later(5)))
        .await
        .expect("rm");
    let before = Timestamp::now();
    let one = store
        .settle_user(&name("alice"), later(6))
        .await
        .expect("settle");
    check(store, before, one, "grace settled for one user").await;

    // Log out during a grace.
    let tab = conn(&s, later(60));
    store.add_connection(&tab, None).await.expect("add");
    store
        .remove_connection(&tab.id, RemoveIf::Always, Offline::After(later(5)))
        .await
        .expect("rm");
    let before = Timestamp::now();
    let out = store.offline_now(&name("alice")).await.expect("now");
    check(store, before, out, "log out").await;

    // The lease ran out (the sweep).
    let tab = conn(&s, later(60));
    store.add_connection(&tab, None).await.expect("add");
    let before = Timestamp::now();
    let swept = store
        .remove_connection(&tab.id, RemoveIf::ExpiredAt(later(61)), Offline::Now)
        .await
        .expect("rm")
        .and_then(|r| r.went_offline);
    check(store, before, swept, "lease expired").await;

    // Bob never came online: still nothing.
    let bob = list_all(store)
        .await
        .into_iter()
        .find(|u| u.username == name("bob"))
        .expect("bob");
    assert_eq!(bob.last_seen, None);
}
