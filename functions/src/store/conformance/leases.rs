//! Checks on leases and the sweep.

use super::{conn, later, list_all, open_session, user};
use crate::domain::ConnectionId;
use crate::store::{Offline, RemoveIf, Store};

/// Renewing extends leases (never shortens them) and names the ids that are
/// no longer registered.
pub async fn renewing_leases_reports_unknown_connections(store: &dyn Store) {
    let s = open_session(store, "alice", later(600)).await;
    let (a, b) = (conn(&s, later(10)), conn(&s, later(100)));
    store.add_connection(&a, None).await.expect("add");
    store.add_connection(&b, None).await.expect("add");
    let stranger = ConnectionId::generate();
    let missing = store
        .renew_leases(&[a.id.clone(), b.id.clone(), stranger.clone()], later(50))
        .await
        .expect("renew");
    assert_eq!(missing, vec![stranger]);
    // a now ends at 50, b still at 100.
    let expired = store
        .expired_connections(later(60), 10)
        .await
        .expect("expired");
    assert_eq!(expired, vec![a.id.clone()]);
    assert!(
        store
            .renew_leases(&[], later(70))
            .await
            .expect("renew")
            .is_empty()
    );
}

/// A renewal stops at the session's end, so a connection of an expired
/// session is swept (on the cloud path nothing else closes it); a renewal
/// after it changes nothing and still finds the connection registered.
pub async fn a_lease_is_never_renewed_past_its_sessions_end(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    let brief = open_session(store, "alice", later(30)).await;
    let long = open_session(store, "alice", later(600)).await;
    let (a, b) = (conn(&brief, later(20)), conn(&long, later(20)));
    store.add_connection(&a, None).await.expect("add");
    store.add_connection(&b, None).await.expect("add");
    let both = [a.id.clone(), b.id.clone()];
    let missing = store.renew_leases(&both, later(50)).await.expect("renew");
    assert!(missing.is_empty(), "{missing:?}");
    // a's lease ends with its session, at 30; b's at 50.
    let expired = |at| async move {
        store
            .expired_connections(later(at), 10)
            .await
            .expect("expired")
    };
    assert!(expired(29).await.is_empty());
    assert_eq!(expired(30).await, vec![a.id.clone()]);
    let missing = store.renew_leases(&both, later(90)).await.expect("renew");
    assert!(missing.is_empty(), "still registered: {missing:?}");
    assert_eq!(expired(31).await, vec![a.id.clone()]);
    assert_eq!(expired(60).await, vec![a.id.clone()], "b renewed to 90");
    let removed = store
        .remove_connection(&a.id, RemoveIf::ExpiredAt(later(31)), Offline::Now)
        .await
        .expect("rm")
        .expect("swept");
    assert_eq!(removed.went_offline, None, "alice still has b");
}

/// The sweep finds only expired leases, and a conditional remove leaves a
/// connection whose lease was renewed in the meantime.
pub async fn the_sweep_removes_only_expired_connections(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    store.create_user(&user("bob")).await.expect("create");
    let (sa, sb) = (
        open_session(store, "alice", later(600)).await,
        open_session(store, "bob", later(600)).await,
    );
    let (dead, alive) = (conn(&sa, later(10)), conn(&sb, later(10)));
    store.add_connection(&dead, None).await.expect("add");
    store.add_connection(&alive, None).await.expect("add");
    assert!(
        store
            .expired_connections(later(5), 10)
            .await
            .expect("expired")
            .is_empty()
    );
    let mut expired = store
        .expired_connections(later(10), 10)
        .await
        .expect("expired");
    expired.sort();
    let mut both = vec![dead.id.clone(), alive.id.clone()];
    both.sort();
    assert_eq!(expired, both);
    assert_eq!(
        store
            .expired_connections(later(10), 1)
            .await
            .expect("expired")
            .len(),
        1
    );

    // bob's socket renews just before the sweep gets to it.
    store
        .renew_leases(std::slice::from_ref(&alive.id), later(40))
        .await
        .expect("renew");
    let now = RemoveIf::ExpiredAt(later(11));
    assert_eq!(
        store
            .remove_connection(&alive.id, now, Offline::Now)
            .await
            .expect("rm"),
        None
    );
    let removed = store
        .remove_connection(&dead.id, now, Offline::Now)
        .await
        .expect("rm")
        .expect("removed");
    let offline = removed.went_offline.expect("alice's last connection");
    assert_eq!(
        (offline.username.as_str(), offline.is_logged_in),
        ("alice", false)
    );
    let list = list_all(store).await;
    assert_eq!(
        list.iter()
            .map(|u| (u.username.as_str(), u.is_logged_in))
            .collect::<Vec<_>>(),
        [("alice", false), ("bob", true)]
    );
    assert!(
        store
            .expired_connections(later(11), 10)
            .await
            .expect("expired")
            .is_empty()
    );
}
