//! Checks on socket tickets: single use, expiry, racing takes.

use super::{later, t0};
use crate::domain::SessionToken;
use crate::store::Store;
use futures_util::future::join_all;

/// A new ticket for a new session key, expiring 30 s after [`t0`].
async fn ticket_for_30s(
    store: &dyn Store,
) -> (crate::domain::SessionKey, crate::domain::SessionKey) {
    let (ticket, session) = (
        SessionToken::generate().key(),
        SessionToken::generate().key(),
    );
    store
        .create_ticket(&ticket, &session, later(30))
        .await
        .expect("create ticket");
    (ticket, session)
}

/// A ticket opens its session once: a second take gets nothing, and so
/// does an unknown ticket.
pub async fn a_ticket_is_taken_once(store: &dyn Store) {
    let (ticket, session) = ticket_for_30s(store).await;
    assert_eq!(
        store.take_ticket(&ticket, t0()).await.expect("take"),
        Some(session.clone())
    );
    assert_eq!(store.take_ticket(&ticket, t0()).await.expect("take"), None);
    let unknown = SessionToken::generate().key();
    assert_eq!(store.take_ticket(&unknown, t0()).await.expect("take"), None);
    // The ticket's hash names no session.
    assert_eq!(store.find_session(&ticket, t0()).await.expect("find"), None);
}

/// A ticket taken at or after its expiry opens nothing, and stays unusable.
pub async fn an_expired_ticket_is_refused(store: &dyn Store) {
    let (ticket, session) = ticket_for_30s(store).await;
    assert_eq!(
        store.take_ticket(&ticket, later(30)).await.expect("take"),
        None,
        "expired at its expiry"
    );
    assert_eq!(
        store.take_ticket(&ticket, later(31)).await.expect("take"),
        None
    );
    let fresh = SessionToken::generate().key();
    store
        .create_ticket(&fresh, &session, later(30))
        .await
        .expect("create ticket");
    assert_eq!(
        store.take_ticket(&fresh, later(29)).await.expect("take"),
        Some(session),
        "valid until just before"
    );
}

/// Two takes of one ticket racing (on one store or on several processes'
/// stores of the same backend): exactly one gets it, every time.
pub async fn racing_takes_of_a_ticket_have_one_winner(stores: &[&dyn Store]) {
    let session = SessionToken::generate().key();
    for round in 0..20 {
        let ticket = SessionToken::generate().key();
        stores[0]
            .create_ticket(&ticket, &session, later(30))
            .await
            .expect("create ticket");
        let takes = stores
            .iter()
            .map(|s| s.take_ticket(&ticket, t0()))
            .collect::<Vec<_>>();
        let won: Vec<_> = join_all(takes)
            .await
            .into_iter()
            .map(|r| r.expect("take"))
            .filter(Option::is_some)
            .collect();
        assert_eq!(won, vec![Some(session.clone())], "round {round}");
    }
}
