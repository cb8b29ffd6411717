//! Checks on connections and presence transitions, concurrent ones included.

use futures_util::future::join_all;

use super::{conn, later, list_all, name, open_session, user};
use crate::domain::PresenceEvent;
use crate::store::{ConnectionRecord, Offline, RemoveIf, Store};

/// The first connection announces the user online; a second tab is silent;
/// closing one of two tabs is silent; closing the last announces offline.
pub async fn tabs_open_and_close_with_exactly_the_right_announcements(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    let s = open_session(store, "alice", later(600)).await;
    let (tab1, tab2) = (conn(&s, later(60)), conn(&s, later(60)));
    let online = store
        .add_connection(&tab1, None)
        .await
        .expect("add")
        .expect("0 -> 1");
    assert!(online.is_logged_in);
    assert_eq!(online.username, name("alice"));
    assert_eq!(store.add_connection(&tab2, None).await.expect("add"), None);
    assert!(list_all(store).await[0].is_logged_in);

    let removed = store
        .remove_connection(&tab1.id, RemoveIf::Always, Offline::Now)
        .await
        .expect("rm");
    let removed = removed.expect("was registered");
    assert_eq!(removed.went_offline, None);
    assert_eq!(
        (removed.username, removed.session),
        (name("alice"), s.key.clone())
    );
    assert!(list_all(store).await[0].is_logged_in);

    let last = store
        .remove_connection(&tab2.id, RemoveIf::Always, Offline::Now)
        .await
        .expect("rm");
    let offline = last.and_then(|r| r.went_offline).expect("1 -> 0");
    assert!(!offline.is_logged_in);
    assert!(offline.seq > online.seq);
    assert!(!list_all(store).await[0].is_logged_in);
}

/// Removing an unknown (or already removed) connection changes nothing.
pub async fn removing_an_unknown_connection_does_nothing(store: &dyn Store) {
    let s = open_session(store, "alice", later(600)).await;
    let c = conn(&s, later(60));
    assert_eq!(
        store
            .remove_connection(&c.id, RemoveIf::Always, Offline::Now)
            .await
            .expect("rm"),
        None
    );
    store.add_connection(&c, None).await.expect("add");
    assert!(
        store
            .remove_connection(&c.id, RemoveIf::Always, Offline::Now)
            .await
            .expect("rm")
            .is_some()
    );
    assert_eq!(
        store
            .remove_connection(&c.id, RemoveIf::Always, Offline::Now)
            .await
            .expect("rm"),
        None
    );
}

/// Registering the same id twice counts it once (a retried `$connect`).
pub async fn adding_the_same_connection_twice_counts_it_once(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    let s = open_session(store, "alice", later(600)).await;
    let c = conn(&s, later(60));
    assert!(store.add_connection(&c, None).await.expect("add").is_some());
    assert_eq!(store.add_connection(&c, None).await.expect("add"), None);
    let gone = store
        .remove_connection(&c.id, RemoveIf::Always, Offline::Now)
        .await
        .expect("rm");
    assert!(
        gone.and_then(|r| r.went_offline).is_some(),
        "one removal empties it"
    );
}

/// Concurrent connects and disconnects of one user — from one or several
/// clients of the same store — produce transitions that alternate
/// online/offline with consecutive numbers: exactly one `true` per 0→1 and
/// one `false` per 1→0.
pub async fn concurrent_transitions_alternate_exactly(stores: &[&dyn Store]) {
    assert!(!stores.is_empty());
    let s = open_session(stores[0], "alice", later(600)).await;
    let conns: Vec<ConnectionRecord> = (0..40).map(|_| conn(&s, later(60))).collect();
    // Every connection is opened then closed, all of them at once.
    let runs = conns.iter().enumerate().map(|(i, c)| {
        let store = stores[i % stores.len()];
        async move {
            let mut events = Vec::new();
            events.extend(store.add_connection(c, None).await.expect("add"));
            tokio::task::yield_now().await;
            let removed = store
                .remove_connection(&c.id, RemoveIf::Always, Offline::Now)
                .await
                .expect("rm");
            events.extend(removed.expect("was registered").went_offline);
            events
        }
    });
    let mut events: Vec<PresenceEvent> = join_all(runs).await.into_iter().flatten().collect();
    events.sort_by_key(|e| e.seq);
    assert!(!events.is_empty());
    let first = events[0].seq;
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e.seq,
            first + i as u64,
            "transition numbers are consecutive: {events:?}"
        );
        assert_eq!(
            e.is_logged_in,
            i % 2 == 0,
            "online and offline alternate: {events:?}"
        );
    }
    assert!(
        !events.last().expect("non-empty").is_logged_in,
        "ends offline"
    );

    // Now all open together, then all close together: one `true`, one `false`.
    let opened = join_all(
        conns
            .iter()
            .enumerate()
            .map(|(i, c)| stores[i % stores.len()].add_connection(c, None)),
    )
    .await;
    let ups = opened.into_iter().filter_map(|r| r.expect("add")).count();
    assert_eq!(ups, 1);
    let closed = join_all(conns.iter().enumerate().map(|(i, c)| {
        stores[i % stores.len()].remove_connection(&c.id, RemoveIf::Always, Offline::Now)
    }))
    .await;
    let downs = closed
        .into_iter()
        .filter_map(|r| r.expect("rm").and_then(|r| r.went_offline))
        .count();
    assert_eq!(downs, 1);
}

/// A connection whose session was deleted (logged out) or has expired is
/// refused with [`crate::store::StoreError::NotFound`], and nothing is
/// registered.
pub async fn a_connection_of_an_ended_session_is_refused(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    let gone = open_session(store, "alice", later(600)).await;
    store.delete_session(&gone.key).await.expect("delete");
    let refused = store.add_connection(&conn(&gone, later(60)), None).await;
    assert!(
        matches!(refused, Err(crate::store::StoreError::NotFound)),
        "{refused:?}"
    );
    let past = crate::domain::Timestamp::now().as_millis() - 1000;
    let expired = open_session(store, "alice", crate::domain::Timestamp::from_millis(past)).await;
    let refused = store.add_connection(&conn(&expired, later(60)), None).await;
    assert!(
        matches!(refused, Err(crate::store::StoreError::NotFound)),
        "{refused:?}"
    );
    assert!(!list_all(store).await[0].is_logged_in);
    assert!(
        store
            .group_connections(None, 10)
            .await
            .expect("group")
            .items
            .is_empty()
    );
}
