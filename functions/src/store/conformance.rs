//! The conformance suite: what every [`Store`] backend must do.
//!
//! Each check is a free `async fn` over `&dyn Store` that panics on failure.
//! Backends run all of them with [`crate::conformance_suite!`], which makes
//! one `#[tokio::test]` per check from an expression that yields a fresh,
//! empty store (a new key prefix or table per test, so tests run in
//! parallel). Memory runs it in this crate; Redis and DynamoDB run it against
//! real servers in the `tests` package.

use std::time::Duration;

use futures_util::future::join_all;

use super::{ConnectionRecord, RemoveIf, SessionRecord, Store, StoreError, UserRecord};
use crate::domain::{ConnectionId, PresenceEvent, SessionToken, Timestamp, Username};

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn name(s: &str) -> Username {
    Username::parse(s).expect("test names are valid")
}

fn user(s: &str) -> UserRecord {
    UserRecord {
        username: name(s),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$fake${s}"),
        created_at: T0,
    }
}

fn session(s: &str, expires_at: Timestamp) -> SessionRecord {
    SessionRecord {
        key: SessionToken::generate().key(),
        username: name(s),
        expires_at,
    }
}

fn conn(s: &SessionRecord, lease_until: Timestamp) -> ConnectionRecord {
    ConnectionRecord {
        id: ConnectionId::generate(),
        username: s.username.clone(),
        session: s.key.clone(),
        lease_until,
    }
}

fn later(secs: u64) -> Timestamp {
    T0.plus(Duration::from_secs(secs))
}

/// Users are created once and found by their normalised name.
pub async fn users_are_created_once_and_found_by_name(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    let found = store
        .find_user(&name("alice"))
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(found, user("alice"));
    assert_eq!(store.find_user(&name("bob")).await.expect("find"), None);
}

/// A taken name is a conflict and the first account is kept.
pub async fn a_taken_username_conflicts_and_keeps_the_first(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    let mut second = user("alice");
    second.password_hash = "other".into();
    assert!(matches!(
        store.create_user(&second).await,
        Err(StoreError::Conflict)
    ));
    let found = store
        .find_user(&name("alice"))
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(found.password_hash, user("alice").password_hash);
}

/// The list is sorted by name and everyone starts offline.
pub async fn the_list_is_sorted_and_everyone_starts_offline(store: &dyn Store) {
    for n in ["carol", "alice", "bob"] {
        store.create_user(&user(n)).await.expect("create");
    }
    let list = store.list_presence().await.expect("list");
    let names: Vec<&str> = list.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert!(list.iter().all(|u| !u.is_logged_in));
}

/// Odd-but-valid names (dots, accents, digits, `true`, `@`, other scripts)
/// are stored, listed and counted like any other.
pub async fn odd_but_valid_names_round_trip(store: &dyn Store) {
    let odd = ["a.b", "josé", "1e3", "true", "@x", "日本語", "a+b-c_d"];
    for n in odd {
        store.create_user(&user(n)).await.expect("create");
        let s = session(n, later(60));
        let online = store
            .add_connection(&conn(&s, later(60)))
            .await
            .expect("add");
        assert_eq!(online.map(|e| e.username), Some(name(n)));
    }
    let list = store.list_presence().await.expect("list");
    assert_eq!(list.len(), odd.len());
    assert!(list.iter().all(|u| u.is_logged_in));
}

/// Sessions are found until they expire (expiry is checked on read), and
/// deleting reports whether one existed.
pub async fn sessions_are_found_until_they_expire(store: &dyn Store) {
    let s = session("alice", later(60));
    store.create_session(&s).await.expect("create");
    assert_eq!(
        store.find_session(&s.key, T0).await.expect("find"),
        Some(s.clone())
    );
    assert_eq!(
        store.find_session(&s.key, later(60)).await.expect("find"),
        None
    );
    let other = SessionToken::generate().key();
    assert_eq!(store.find_session(&other, T0).await.expect("find"), None);
    let live = session("alice", later(600));
    store.create_session(&live).await.expect("create");
    assert!(store.delete_session(&live.key).await.expect("delete"));
    assert!(!store.delete_session(&live.key).await.expect("delete"));
    assert_eq!(store.find_session(&live.key, T0).await.expect("find"), None);
}

/// The first connection announces the user online; a second tab is silent;
/// closing one of two tabs is silent; closing the last announces offline.
pub async fn tabs_open_and_close_with_exactly_the_right_announcements(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    let s = session("alice", later(600));
    let (tab1, tab2) = (conn(&s, later(60)), conn(&s, later(60)));
    let online = store
        .add_connection(&tab1)
        .await
        .expect("add")
        .expect("0 -> 1");
    assert!(online.is_logged_in);
    assert_eq!(online.username, name("alice"));
    assert_eq!(store.add_connection(&tab2).await.expect("add"), None);
    assert!(store.list_presence().await.expect("list")[0].is_logged_in);

    let removed = store
        .remove_connection(&tab1.id, RemoveIf::Always)
        .await
        .expect("rm");
    let removed = removed.expect("was registered");
    assert_eq!(removed.went_offline, None);
    assert_eq!(
        (removed.username, removed.session),
        (name("alice"), s.key.clone())
    );
    assert!(store.list_presence().await.expect("list")[0].is_logged_in);

    let last = store
        .remove_connection(&tab2.id, RemoveIf::Always)
        .await
        .expect("rm");
    let offline = last.and_then(|r| r.went_offline).expect("1 -> 0");
    assert!(!offline.is_logged_in);
    assert!(offline.seq > online.seq);
    assert!(!store.list_presence().await.expect("list")[0].is_logged_in);
}

/// Removing an unknown (or already removed) connection changes nothing.
pub async fn removing_an_unknown_connection_does_nothing(store: &dyn Store) {
    let s = session("alice", later(600));
    let c = conn(&s, later(60));
    assert_eq!(
        store
            .remove_connection(&c.id, RemoveIf::Always)
            .await
            .expect("rm"),
        None
    );
    store.add_connection(&c).await.expect("add");
    assert!(
        store
            .remove_connection(&c.id, RemoveIf::Always)
            .await
            .expect("rm")
            .is_some()
    );
    assert_eq!(
        store
            .remove_connection(&c.id, RemoveIf::Always)
            .await
            .expect("rm"),
        None
    );
}

/// Registering the same id twice counts it once (a retried `$connect`).
pub async fn adding_the_same_connection_twice_counts_it_once(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    let s = session("alice", later(600));
    let c = conn(&s, later(60));
    assert!(store.add_connection(&c).await.expect("add").is_some());
    assert_eq!(store.add_connection(&c).await.expect("add"), None);
    let gone = store
        .remove_connection(&c.id, RemoveIf::Always)
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
    let s = session("alice", later(600));
    let conns: Vec<ConnectionRecord> = (0..40).map(|_| conn(&s, later(60))).collect();
    // Every connection is opened then closed, all of them at once.
    let runs = conns.iter().enumerate().map(|(i, c)| {
        let store = stores[i % stores.len()];
        async move {
            let mut events = Vec::new();
            events.extend(store.add_connection(c).await.expect("add"));
            tokio::task::yield_now().await;
            let removed = store
                .remove_connection(&c.id, RemoveIf::Always)
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
            .map(|(i, c)| stores[i % stores.len()].add_connection(c)),
    )
    .await;
    let ups = opened.into_iter().filter_map(|r| r.expect("add")).count();
    assert_eq!(ups, 1);
    let closed = join_all(
        conns
            .iter()
            .enumerate()
            .map(|(i, c)| stores[i % stores.len()].remove_connection(&c.id, RemoveIf::Always)),
    )
    .await;
    let downs = closed
        .into_iter()
        .filter_map(|r| r.expect("rm").and_then(|r| r.went_offline))
        .count();
    assert_eq!(downs, 1);
}

/// Renewing extends leases (never shortens them) and names the ids that are
/// no longer registered.
pub async fn renewing_leases_reports_unknown_connections(store: &dyn Store) {
    let s = session("alice", later(600));
    let (a, b) = (conn(&s, later(10)), conn(&s, later(100)));
    store.add_connection(&a).await.expect("add");
    store.add_connection(&b).await.expect("add");
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

/// The sweep finds only expired leases, and a conditional remove leaves a
/// connection whose lease was renewed in the meantime.
pub async fn the_sweep_removes_only_expired_connections(store: &dyn Store) {
    store.create_user(&user("alice")).await.expect("create");
    store.create_user(&user("bob")).await.expect("create");
    let (sa, sb) = (session("alice", later(600)), session("bob", later(600)));
    let (dead, alive) = (conn(&sa, later(10)), conn(&sb, later(10)));
    store.add_connection(&dead).await.expect("add");
    store.add_connection(&alive).await.expect("add");
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
        store.remove_connection(&alive.id, now).await.expect("rm"),
        None
    );
    let removed = store
        .remove_connection(&dead.id, now)
        .await
        .expect("rm")
        .expect("removed");
    let offline = removed.went_offline.expect("alice's last connection");
    assert_eq!(
        (offline.username.as_str(), offline.is_logged_in),
        ("alice", false)
    );
    let list = store.list_presence().await.expect("list");
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

/// A session's connections are listed by session, and only its own.
pub async fn connections_are_listed_by_session(store: &dyn Store) {
    let (s1, s2) = (session("alice", later(600)), session("alice", later(600)));
    let mut mine = [conn(&s1, later(60)), conn(&s1, later(60))];
    let theirs = conn(&s2, later(60));
    for c in mine.iter().chain([&theirs]) {
        store.add_connection(c).await.expect("add");
    }
    mine.sort_by(|a, b| a.id.cmp(&b.id));
    let listed = store.session_connections(&s1.key).await.expect("list");
    assert_eq!(
        listed,
        mine.iter().map(|c| c.id.clone()).collect::<Vec<_>>()
    );
    store
        .remove_connection(&mine[0].id, RemoveIf::Always)
        .await
        .expect("rm");
    assert_eq!(
        store.session_connections(&s1.key).await.expect("list"),
        vec![mine[1].id.clone()]
    );
    let nobody = SessionToken::generate().key();
    assert!(
        store
            .session_connections(&nobody)
            .await
            .expect("list")
            .is_empty()
    );
}

/// The group is read page by page, by key, with no gaps and no repeats.
pub async fn the_group_is_paged_without_gaps_or_repeats(store: &dyn Store) {
    let s = session("alice", later(600));
    let mut all: Vec<ConnectionId> = Vec::new();
    for _ in 0..23 {
        let c = conn(&s, later(60));
        store.add_connection(&c).await.expect("add");
        all.push(c.id);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .group_connections(cursor.as_deref(), 5)
            .await
            .expect("page");
        assert!(page.items.len() <= 5);
        seen.extend(page.items);
        pages += 1;
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 50, "pagination terminates");
    }
    assert!(pages >= 5);
    let mut expected = all.clone();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected);
    let empty_after_remove = {
        for id in &all {
            store
                .remove_connection(id, RemoveIf::Always)
                .await
                .expect("rm");
        }
        store.group_connections(None, 5).await.expect("page")
    };
    assert!(empty_after_remove.items.is_empty() && empty_after_remove.next.is_none());
}

/// The backend answers a ping.
pub async fn the_backend_answers_a_ping(store: &dyn Store) {
    store.ping().await.expect("ping");
}

/// Runs every check in turn, each on a fresh store from `make` (for
/// backends whose server is too costly to start per test, e.g. a container).
pub async fn run_all<S: Store, F: AsyncFn() -> S>(make: F) {
    users_are_created_once_and_found_by_name(&make().await).await;
    a_taken_username_conflicts_and_keeps_the_first(&make().await).await;
    the_list_is_sorted_and_everyone_starts_offline(&make().await).await;
    odd_but_valid_names_round_trip(&make().await).await;
    sessions_are_found_until_they_expire(&make().await).await;
    tabs_open_and_close_with_exactly_the_right_announcements(&make().await).await;
    removing_an_unknown_connection_does_nothing(&make().await).await;
    adding_the_same_connection_twice_counts_it_once(&make().await).await;
    renewing_leases_reports_unknown_connections(&make().await).await;
    the_sweep_removes_only_expired_connections(&make().await).await;
    connections_are_listed_by_session(&make().await).await;
    the_group_is_paged_without_gaps_or_repeats(&make().await).await;
    the_backend_answers_a_ping(&make().await).await;
    let store = make().await;
    concurrent_transitions_alternate_exactly(&[&store, &store]).await;
}

/// Makes one `#[tokio::test]` per conformance check. `$make` is an async
/// expression yielding a fresh, empty `impl Store` (or a smart pointer to
/// one) for each test.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@tests $make;
            users_are_created_once_and_found_by_name,
            a_taken_username_conflicts_and_keeps_the_first,
            the_list_is_sorted_and_everyone_starts_offline,
            odd_but_valid_names_round_trip,
            sessions_are_found_until_they_expire,
            tabs_open_and_close_with_exactly_the_right_announcements,
            removing_an_unknown_connection_does_nothing,
            adding_the_same_connection_twice_counts_it_once,
            renewing_leases_reports_unknown_connections,
            the_sweep_removes_only_expired_connections,
            connections_are_listed_by_session,
            the_group_is_paged_without_gaps_or_repeats,
            the_backend_answers_a_ping,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_transitions_alternate_exactly() {
            let store = $make.await;
            let one: &dyn $crate::store::Store = &*store;
            $crate::store::conformance::concurrent_transitions_alternate_exactly(&[one, one]).await;
        }
    };
    (@tests $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store = $make.await;
                $crate::store::conformance::$check(&*store).await;
            }
        )*
    };
}

#[cfg(test)]
mod memory {
    crate::conformance_suite!(async { Box::new(crate::store::memory::MemoryStore::new()) });
}
