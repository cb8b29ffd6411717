//! Checks on the per-user connection cap of [`Store::add_connection`]:
//! refused in the same atomic step as the registration, never exceeded by
//! racing connects.

use futures_util::future::join_all;

use super::{conn, later, list_all, open_session, user};
use crate::store::{ConnectionRecord, Offline, RemoveIf, Store, StoreError};

/// A user at the cap is refused with [`StoreError::LimitReached`] and
/// nothing changes (no registration, no log entry); the same id again only
/// renews its lease; a closed connection makes room.
pub async fn a_user_at_the_connection_cap_is_refused_and_nothing_changes(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    let s = open_session(store, "alice", later(600)).await;
    let (a, b, c) = (
        conn(&s, later(60)),
        conn(&s, later(60)),
        conn(&s, later(60)),
    );
    let cap = Some(2);
    assert!(
        store
            .add_connection(&a, cap)
            .await
            .expect("first")
            .is_some()
    );
    assert_eq!(store.add_connection(&b, cap).await.expect("second"), None);
    let cut = store.online_users().await.expect("cut");
    let refused = store.add_connection(&c, cap).await;
    assert!(
        matches!(refused, Err(StoreError::LimitReached)),
        "{refused:?}"
    );
    let group = store
        .group_connections(None, 10)
        .await
        .expect("group")
        .items;
    assert_eq!(group.len(), 2, "the refused one is not registered");
    assert!(!group.contains(&c.id));
    // Nothing was logged for the refusal.
    match store
        .read_log(&cut.cursor, 10, std::time::Duration::ZERO)
        .await
        .expect("read")
    {
        crate::store::LogRead::Entries { events, .. } => assert!(events.is_empty(), "{events:?}"),
        crate::store::LogRead::Gap => panic!("no gap"),
    }
    // A connection already registered may be added again at the cap.
    assert_eq!(store.add_connection(&b, cap).await.expect("again"), None);
    // Without a cap, or once one closed, there is room.
    store
        .remove_connection(&a.id, RemoveIf::Always, Offline::Now)
        .await
        .expect("rm");
    assert_eq!(store.add_connection(&c, cap).await.expect("room"), None);
    let d = conn(&s, later(60));
    assert_eq!(store.add_connection(&d, None).await.expect("no cap"), None);
    assert!(list_all(store).await[0].is_logged_in);
}

/// Many connects of one user at once — from one or several clients of the
/// same store — register exactly as many as the cap allows.
pub async fn racing_connects_never_exceed_the_cap(stores: &[&dyn Store]) {
    assert!(!stores.is_empty());
    let s = open_session(stores[0], "alice", later(600)).await;
    let conns: Vec<ConnectionRecord> = (0..12).map(|_| conn(&s, later(60))).collect();
    let results = join_all(
        conns
            .iter()
            .enumerate()
            .map(|(i, c)| stores[i % stores.len()].add_connection(c, Some(5))),
    )
    .await;
    let mut accepted = 0;
    for r in results {
        match r {
            Ok(_) => accepted += 1,
            Err(StoreError::LimitReached) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(accepted, 5);
    let group = stores[0]
        .group_connections(None, 100)
        .await
        .expect("group")
        .items;
    assert_eq!(group.len(), 5);
}
