//! Checks on the offline grace period: a connection back within it
//! announces nothing; otherwise one `false` when it ends; log out ends it.

use super::{conn, later, list_all, name, open_session, user};
use crate::store::{Offline, RemoveIf, Store};

/// A last connection that closes with a grace period and is replaced within
/// it announces nothing, and the user stays listed online throughout; one
/// that is not replaced goes offline once, when the grace ends.
pub async fn a_connection_back_within_the_grace_announces_nothing(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    let s = open_session(store, "alice", later(600)).await;
    let tab = conn(&s, later(60));
    let online = store
        .add_connection(&tab, None)
        .await
        .expect("add")
        .expect("0 -> 1");
    let closed = store
        .remove_connection(&tab.id, RemoveIf::Always, Offline::After(later(5)))
        .await
        .expect("rm")
        .expect("registered");
    assert_eq!(closed.went_offline, None);
    assert!(closed.grace_started);
    assert!(
        list_all(store).await[0].is_logged_in,
        "online during the grace"
    );
    assert_eq!(
        store.online_users().await.expect("cut").users[0].seq,
        online.seq
    );
    assert!(
        store
            .settle_offline(later(4), 10)
            .await
            .expect("settle")
            .is_empty()
    );

    // The refreshed page's socket: no announcement.
    let back = conn(&s, later(60));
    assert_eq!(store.add_connection(&back, None).await.expect("add"), None);
    assert!(
        store
            .settle_offline(later(6), 10)
            .await
            .expect("settle")
            .is_empty(),
        "the pending offline was cancelled"
    );

    store
        .remove_connection(&back.id, RemoveIf::Always, Offline::After(later(20)))
        .await
        .expect("rm");
    let settled = store.settle_offline(later(20), 10).await.expect("settle");
    assert_eq!(settled.len(), 1);
    assert_eq!(
        (
            &settled[0].username,
            settled[0].is_logged_in,
            settled[0].seq
        ),
        (&name("alice"), false, online.seq + 1)
    );
    assert!(
        store
            .settle_offline(later(30), 10)
            .await
            .expect("settle")
            .is_empty()
    );
    assert!(!list_all(store).await[0].is_logged_in);

    // Leave, return after the grace, leave: false, true, false, consecutive.
    let again = conn(&s, later(60));
    let up = store
        .add_connection(&again, None)
        .await
        .expect("add")
        .expect("0 -> 1");
    assert_eq!((up.is_logged_in, up.seq), (true, online.seq + 2));
    let down = store
        .remove_connection(&again.id, RemoveIf::Always, Offline::Now)
        .await
        .expect("rm")
        .and_then(|r| r.went_offline)
        .expect("1 -> 0");
    assert_eq!((down.is_logged_in, down.seq), (false, online.seq + 3));
}

/// [`Store::offline_now`] ends a pending grace at once (log out), does
/// nothing for a user with a connection or already offline.
pub async fn offline_now_ends_a_pending_grace(store: &dyn Store) {
    store.create_user(&user("bob")).await.expect("create");
    let s = open_session(store, "bob", later(600)).await;
    let tab = conn(&s, later(60));
    store.add_connection(&tab, None).await.expect("add");
    assert_eq!(
        store.offline_now(&name("bob")).await.expect("now"),
        None,
        "has a tab"
    );
    store
        .remove_connection(&tab.id, RemoveIf::Always, Offline::After(later(5)))
        .await
        .expect("rm");
    let now = store
        .offline_now(&name("bob"))
        .await
        .expect("now")
        .expect("pending");
    assert_eq!((now.is_logged_in, now.seq), (false, 2));
    assert_eq!(store.offline_now(&name("bob")).await.expect("now"), None);
    assert!(
        store
            .settle_offline(later(10), 10)
            .await
            .expect("settle")
            .is_empty()
    );
    assert_eq!(store.offline_now(&name("nobody")).await.expect("now"), None);
}

/// [`Store::settle_user`] takes a user offline once their grace is due, not
/// before, and not if a connection came back.
pub async fn settle_user_takes_a_user_offline_once_due(store: &dyn Store) {
    store.create_user(&user("cy")).await.expect("create");
    let s = open_session(store, "cy", later(600)).await;
    let tab = conn(&s, later(60));
    store.add_connection(&tab, None).await.expect("add");
    store
        .remove_connection(&tab.id, RemoveIf::Always, Offline::After(later(5)))
        .await
        .expect("rm");
    assert_eq!(
        store
            .settle_user(&name("cy"), later(4))
            .await
            .expect("settle"),
        None
    );
    let off = store
        .settle_user(&name("cy"), later(5))
        .await
        .expect("settle")
        .expect("due");
    assert_eq!((off.is_logged_in, off.seq), (false, 2));
    assert_eq!(
        store
            .settle_user(&name("cy"), later(9))
            .await
            .expect("settle"),
        None
    );

    // Back within the grace: nothing to settle.
    let tab = conn(&s, later(60));
    store.add_connection(&tab, None).await.expect("add");
    store
        .remove_connection(&tab.id, RemoveIf::Always, Offline::After(later(20)))
        .await
        .expect("rm");
    store
        .add_connection(&conn(&s, later(60)), None)
        .await
        .expect("back");
    assert_eq!(
        store
            .settle_user(&name("cy"), later(30))
            .await
            .expect("settle"),
        None
    );
    assert!(list_all(store).await[0].is_logged_in);
}
