//! The conformance suite: what every [`Store`] backend must do.
//!
//! Each check is a free `async fn` over `&dyn Store` that panics on failure.
//! Backends run all of them with [`crate::conformance_suite!`], which makes
//! one `#[tokio::test]` per check from an expression that yields a fresh,
//! empty store (a new key prefix or table per test, so tests run in
//! parallel). Memory runs it in this crate; Redis and DynamoDB run it against
//! real servers in the `tests` package.

use std::time::Duration;

use super::{ConnectionRecord, SessionRecord, Store, UserRecord};
use crate::domain::{ConnectionId, SessionToken, Timestamp, UserPresence, Username};

mod accounts;
mod caps;
mod grace;
mod last_seen;
mod leases;
mod listing;
mod log;
pub mod machine;
mod presence;
mod tickets;

pub use accounts::*;
pub use caps::*;
pub use grace::*;
pub use last_seen::*;
pub use leases::*;
pub use listing::*;
pub use log::*;
pub use presence::*;
pub use tickets::*;

/// The suite's "now": the real time of the first check, plus a day, so
/// sessions and leases it makes are in the future for the backends that
/// expire keys by the real clock (Redis `PEXPIREAT`), whatever the date.
pub(crate) fn t0() -> Timestamp {
    static T0: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
    *T0.get_or_init(|| Timestamp::now().plus(Duration::from_secs(24 * 3600)))
}

pub(crate) fn name(s: &str) -> Username {
    Username::parse(s).expect("test names are valid")
}

pub(crate) fn user(s: &str) -> UserRecord {
    UserRecord {
        username: name(s),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$fake${s}"),
        created_at: t0(),
    }
}

pub(crate) fn session(s: &str, expires_at: Timestamp) -> SessionRecord {
    SessionRecord {
        key: SessionToken::generate().key(),
        username: name(s),
        expires_at,
    }
}

/// A session of `user` until `expires_at`, saved in `store` (a connection
/// needs a live session).
pub(crate) async fn open_session(
    store: &dyn Store,
    user: &str,
    expires_at: Timestamp,
) -> SessionRecord {
    let s = session(user, expires_at);
    store.create_session(&s).await.expect("create session");
    s
}

pub(crate) fn conn(s: &SessionRecord, lease_until: Timestamp) -> ConnectionRecord {
    ConnectionRecord {
        id: ConnectionId::generate(),
        username: s.username.clone(),
        session: s.key.clone(),
        lease_until: lease_until.min(s.expires_at),
        session_expires_at: s.expires_at,
    }
}

pub(crate) fn later(secs: u64) -> Timestamp {
    t0().plus(Duration::from_secs(secs))
}

/// Every user, page by page.
pub(crate) async fn list_all(store: &dyn Store) -> Vec<UserPresence> {
    let mut all: Vec<UserPresence> = Vec::new();
    loop {
        let after = all.last().map(|u| u.username.clone());
        let page = store
            .list_users(after.as_ref(), None, 3)
            .await
            .expect("list");
        all.extend(page.items);
        if page.next.is_none() {
            return all;
        }
    }
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
    a_lease_is_never_renewed_past_its_sessions_end(&make().await).await;
    the_sweep_removes_only_expired_connections(&make().await).await;
    connections_are_listed_by_session(&make().await).await;
    the_group_is_paged_without_gaps_or_repeats(&make().await).await;
    the_backend_answers_a_ping(&make().await).await;
    every_change_is_logged_once_in_order(&make().await).await;
    a_reader_waits_for_the_next_entry(&make().await).await;
    the_online_cut_and_the_log_after_it_add_up(&make().await).await;
    a_cursor_the_log_does_not_know_is_a_gap(&make().await).await;
    users_are_paged_by_name_and_listed_by_join_time(&make().await).await;
    a_connection_back_within_the_grace_announces_nothing(&make().await).await;
    offline_now_ends_a_pending_grace(&make().await).await;
    a_connection_of_an_ended_session_is_refused(&make().await).await;
    every_group_shard_together_is_the_group(&make().await).await;
    settle_user_takes_a_user_offline_once_due(&make().await).await;
    a_user_at_the_connection_cap_is_refused_and_nothing_changes(&make().await).await;
    a_ticket_is_taken_once(&make().await).await;
    an_expired_ticket_is_refused(&make().await).await;
    every_way_of_going_offline_records_last_seen(&make().await).await;
    users_are_searched_by_name_prefix_and_counted(&make().await).await;
    let store = make().await;
    racing_takes_of_a_ticket_have_one_winner(&[&store, &store]).await;
    let store = make().await;
    concurrent_transitions_alternate_exactly(&[&store, &store]).await;
    let store = make().await;
    racing_connects_never_exceed_the_cap(&[&store, &store]).await;
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
            a_lease_is_never_renewed_past_its_sessions_end,
            the_sweep_removes_only_expired_connections,
            connections_are_listed_by_session,
            the_group_is_paged_without_gaps_or_repeats,
            the_backend_answers_a_ping,
            every_change_is_logged_once_in_order,
            a_reader_waits_for_the_next_entry,
            the_online_cut_and_the_log_after_it_add_up,
            a_cursor_the_log_does_not_know_is_a_gap,
            users_are_paged_by_name_and_listed_by_join_time,
            a_connection_back_within_the_grace_announces_nothing,
            offline_now_ends_a_pending_grace,
            a_connection_of_an_ended_session_is_refused,
            every_group_shard_together_is_the_group,
            settle_user_takes_a_user_offline_once_due,
            a_user_at_the_connection_cap_is_refused_and_nothing_changes,
            a_ticket_is_taken_once,
            an_expired_ticket_is_refused,
            every_way_of_going_offline_records_last_seen,
            users_are_searched_by_name_prefix_and_counted,
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn racing_takes_of_a_ticket_have_one_winner() {
            let store = $make.await;
            let one: &dyn $crate::store::Store = &*store;
            $crate::store::conformance::racing_takes_of_a_ticket_have_one_winner(&[one, one]).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_transitions_alternate_exactly() {
            let store = $make.await;
            let one: &dyn $crate::store::Store = &*store;
            $crate::store::conformance::concurrent_transitions_alternate_exactly(&[one, one]).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn racing_connects_never_exceed_the_cap() {
            let store = $make.await;
            let one: &dyn $crate::store::Store = &*store;
            $crate::store::conformance::racing_connects_never_exceed_the_cap(&[one, one]).await;
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
