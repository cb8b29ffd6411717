//! Checks on users and sessions.

use super::{conn, later, list_all, name, open_session, session, t0, user};
use crate::domain::SessionToken;
use crate::store::{Store, StoreError};

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
    let list = list_all(store).await;
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
        let s = open_session(store, n, later(60)).await;
        let online = store
            .add_connection(&conn(&s, later(60)), None)
            .await
            .expect("add");
        assert_eq!(online.map(|e| e.username), Some(name(n)));
    }
    let list = list_all(store).await;
    assert_eq!(list.len(), odd.len());
    assert!(list.iter().all(|u| u.is_logged_in));
}

/// Sessions are found until they expire (expiry is checked on read), and
/// deleting reports whether one existed.
pub async fn sessions_are_found_until_they_expire(store: &dyn Store) {
    let s = session("alice", later(60));
    store.create_session(&s).await.expect("create");
    assert_eq!(
        store.find_session(&s.key, t0()).await.expect("find"),
        Some(s.clone())
    );
    assert_eq!(
        store.find_session(&s.key, later(60)).await.expect("find"),
        None
    );
    let other = SessionToken::generate().key();
    assert_eq!(store.find_session(&other, t0()).await.expect("find"), None);
    let live = session("alice", later(600));
    store.create_session(&live).await.expect("create");
    assert!(store.delete_session(&live.key).await.expect("delete"));
    assert!(!store.delete_session(&live.key).await.expect("delete"));
    assert_eq!(
        store.find_session(&live.key, t0()).await.expect("find"),
        None
    );
}

/// Users are searched by the start of their name (a range of the name
/// order: case and code points count), page by page, and counted.
pub async fn users_are_searched_by_name_prefix_and_counted(store: &dyn Store) {
    use crate::domain::NamePrefix;
    assert_eq!(store.count_users().await.expect("count"), 0);
    let names = [
        "bob",
        "bo",
        "boba",
        "bob.x",
        "Bob",
        "bp",
        "b",
        "amy",
        "日本語",
        "日本",
        "josé",
    ];
    for n in names {
        store.create_user(&user(n)).await.expect("create");
    }
    assert_eq!(
        store.count_users().await.expect("count"),
        names.len() as u64
    );
    let search = |after: Option<&'static str>, prefix: &'static str, limit: usize| async move {
        let p = NamePrefix::parse(prefix).expect("a prefix");
        let after = after.map(name);
        let page = store
            .list_users(after.as_ref(), Some(&p), limit)
            .await
            .expect("search");
        let found: Vec<String> = page
            .items
            .iter()
            .map(|u| u.username.as_str().to_owned())
            .collect();
        (found, page.next)
    };
    assert_eq!(
        search(None, "bo", 10).await,
        (
            vec!["bo".into(), "bob".into(), "bob.x".into(), "boba".into()],
            None
        )
    );
    assert_eq!(
        search(None, "bo", 2).await,
        (vec!["bo".into(), "bob".into()], Some("bob".into())),
        "paged"
    );
    assert_eq!(
        search(Some("bob"), "bo", 2).await,
        (vec!["bob.x".into(), "boba".into()], None)
    );
    assert_eq!(
        search(Some("amy"), "bo", 1).await,
        (vec!["bo".into()], Some("bo".into())),
        "a cursor before the matches starts at the first"
    );
    assert_eq!(
        search(Some("bz"), "bo", 10).await,
        (vec![], None),
        "past them"
    );
    assert_eq!(
        search(None, "Bo", 10).await,
        (vec!["Bob".into()], None),
        "case counts"
    );
    assert_eq!(
        search(None, "日本", 10).await,
        (vec!["日本".into(), "日本語".into()], None)
    );
    assert_eq!(search(None, "jos", 10).await.0, vec!["josé".to_owned()]);
    assert_eq!(search(None, "zz", 10).await, (vec![], None));
    assert_eq!(
        search(None, "b", 100).await.0.len(),
        6,
        "b, bo, bob, bob.x, boba, bp"
    );
    // Without a prefix the list is unchanged: everyone, by name.
    assert_eq!(super::list_all(store).await.len(), names.len());
}
