//! Checks on listings: a session's connections, the group's pages, and the
//! backend's ping.

use super::{conn, later, open_session};
use crate::domain::{ConnectionId, SessionToken};
use crate::store::{Offline, RemoveIf, Store};

/// A session's connections are listed by session, and only its own.
pub async fn connections_are_listed_by_session(store: &dyn Store) {
    let (s1, s2) = (
        open_session(store, "alice", later(600)).await,
        open_session(store, "alice", later(600)).await,
    );
    let mut mine = [conn(&s1, later(60)), conn(&s1, later(60))];
    let theirs = conn(&s2, later(60));
    for c in mine.iter().chain([&theirs]) {
        store.add_connection(c, None).await.expect("add");
    }
    mine.sort_by(|a, b| a.id.cmp(&b.id));
    let listed = store.session_connections(&s1.key).await.expect("list");
    assert_eq!(
        listed,
        mine.iter().map(|c| c.id.clone()).collect::<Vec<_>>()
    );
    store
        .remove_connection(&mine[0].id, RemoveIf::Always, Offline::Now)
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
    let s = open_session(store, "alice", later(600)).await;
    let mut all: Vec<ConnectionId> = Vec::new();
    for _ in 0..23 {
        let c = conn(&s, later(60));
        store.add_connection(&c, None).await.expect("add");
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
                .remove_connection(id, RemoveIf::Always, Offline::Now)
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

/// The group's shards, each read page by page, together are the group,
/// each member once.
pub async fn every_group_shard_together_is_the_group(store: &dyn Store) {
    let s = open_session(store, "alice", later(600)).await;
    let mut all: Vec<ConnectionId> = Vec::new();
    for _ in 0..23 {
        let c = conn(&s, later(60));
        store.add_connection(&c, None).await.expect("add");
        all.push(c.id);
    }
    let shards = store.group_shards();
    assert!(shards >= 1);
    let mut seen = Vec::new();
    for shard in 0..shards {
        let mut cursor: Option<String> = None;
        for _ in 0..50 {
            let page = store
                .group_shard(shard, cursor.as_deref(), 5)
                .await
                .expect("page");
            assert!(page.items.len() <= 5);
            seen.extend(page.items);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    let beyond = store.group_shard(shards, None, 5).await.expect("page");
    assert!(beyond.items.is_empty(), "no shard past the last");
    all.sort();
    seen.sort();
    assert_eq!(seen, all);
}
