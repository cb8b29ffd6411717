//! The hasher: results, permits held by the work, the bounded queue.

use std::time::{Duration, Instant};

use super::*;

#[tokio::test]
async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
    let hasher = PasswordHasher::new(2);
    let pw = Password::parse("correct horse", None).unwrap();
    let phc = hasher.hash(&pw).await.unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(hasher.verify("correct horse", Some(&phc)).await.unwrap());
    assert!(!hasher.verify("wrong horse", Some(&phc)).await.unwrap());
    assert!(!hasher.verify("correct horse", None).await.unwrap());
    assert!(!hasher.verify("x", Some("not a phc string")).await.unwrap());
    // The decoy is a well-formed hash with the same cost as real ones.
    assert!(DECOY.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(argon2::password_hash::phc::PasswordHash::new(DECOY).is_ok());
    assert_eq!(hasher.in_flight(), 0);
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_client_that_leaves_does_not_free_the_slot_while_its_hash_runs() {
    let hasher = PasswordHasher::with_queue(1, 0);
    // The caller gives up almost at once, while its hash is running.
    let abandoned =
        tokio::time::timeout(Duration::from_millis(2), hasher.verify("someone", None)).await;
    assert!(abandoned.is_err(), "a hash takes longer than 2 ms");
    // The hash still counts: with no queue, the next request is refused.
    assert_eq!(hasher.in_flight(), 1);
    match hasher.verify("next", None).await {
        Err(HashError::Busy { retry_after }) => assert_eq!(retry_after, BUSY_RETRY_AFTER),
        other => panic!("expected Busy, got {other:?}"),
    }
    // When the abandoned hash ends, its slot comes back.
    wait_for("the abandoned hash to end", || hasher.in_flight() == 0).await;
    assert!(!hasher.verify("next", None).await.unwrap());
}

#[tokio::test]
async fn requests_beyond_the_queue_fail_fast_with_busy() {
    let hasher = PasswordHasher::with_queue(1, 2);
    let mut running = Vec::new();
    for _ in 0..3 {
        let h = hasher.clone();
        running.push(tokio::spawn(async move { h.verify("x", None).await }));
    }
    wait_for("one running and two waiting", || hasher.in_flight() == 3).await;
    let started = Instant::now();
    assert!(matches!(
        hasher.verify("x", None).await,
        Err(HashError::Busy { .. })
    ));
    assert!(started.elapsed() < Duration::from_millis(20), "no waiting");
    for r in running {
        assert!(!r.await.unwrap().unwrap());
    }
    assert_eq!(hasher.in_flight(), 0);
}

#[tokio::test]
async fn a_waiter_that_leaves_gives_its_place_in_the_queue_back() {
    let hasher = PasswordHasher::with_queue(1, 1);
    let h = hasher.clone();
    let running = tokio::spawn(async move { h.verify("x", None).await });
    wait_for("the first hash to start", || hasher.in_flight() == 1).await;
    // This one waits for the permit, then leaves before getting it.
    let waited = tokio::time::timeout(Duration::from_millis(1), hasher.verify("y", None)).await;
    assert!(waited.is_err());
    assert_eq!(
        hasher.in_flight(),
        1,
        "the waiter did no work and holds nothing"
    );
    assert!(!running.await.unwrap().unwrap());
}

#[tokio::test]
async fn memory_blocks_are_reused_not_allocated_per_hash() {
    let hasher = PasswordHasher::new(2);
    let pw = Password::parse("correct horse", None).unwrap();
    for _ in 0..6 {
        let (a, b) = tokio::join!(hasher.hash(&pw), hasher.verify("y", None));
        a.unwrap();
        b.unwrap();
    }
    assert!(
        hasher.memory.free_blocks() <= 2,
        "at most one block per permit"
    );
}
