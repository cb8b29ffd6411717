//! The benchmark behind the README's figures runs, in every scenario, and
//! counts what it should. No timing is asserted here: the figures come from
//! `bash scripts/bench.sh` on release builds.

use std::path::Path;

use rollcall_tests::bench::{Scenario, measure, table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_measures_every_scenario_at_a_small_size() {
    let node = Path::new(env!("CARGO_BIN_EXE_rollcall-node"));
    let mut rows = Vec::new();
    for scenario in Scenario::ALL {
        let m = measure(node, scenario, 20, 2).await;
        // Two events per round, each seen by all 20 observers (measure
        // checks that, and that no observer got a frame it should not).
        assert_eq!(m.arrivals.len(), 4, "{scenario:?}");
        assert!(m.arrivals.iter().all(|a| a.first <= a.last), "{m:?}");
        assert!(m.bytes_per_socket.is_some(), "RSS is readable on Linux");
        rows.push(m);
    }
    let report = table(&rows);
    assert_eq!(report.lines().count(), 2 + Scenario::ALL.len(), "{report}");
}

/// The user-base bench runs at a small size: every socket opens, the page
/// loads compressed, nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_base_benchmark_runs_at_a_small_size() {
    let node = Path::new(env!("CARGO_BIN_EXE_rollcall-node"));
    let m = rollcall_tests::bench::users::measure(node, 300, 20, 30, 50).await;
    assert_eq!(m.errors, 0, "{m:?}");
    assert!(m.snapshot_bytes > 0 && m.page.1 > 0, "{m:?}");
    assert!(m.page.2 < m.page.1, "the page is compressed: {m:?}");
    let report = rollcall_tests::bench::users::table(&[m]);
    assert_eq!(report.lines().count(), 3, "{report}");
}

/// The churn bench runs at a small size: blips within the grace cost no
/// event; without a grace, two per blip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_churn_benchmark_counts_no_event_within_the_grace() {
    let node = Path::new(env!("CARGO_BIN_EXE_rollcall-node"));
    let gap = std::time::Duration::from_millis(200);
    let within = rollcall_tests::bench::churn::measure(
        node,
        std::time::Duration::from_secs(2),
        5,
        3,
        2,
        gap,
    )
    .await;
    assert_eq!(within.events_per_observer, 0.0, "{within:?}");
    let without =
        rollcall_tests::bench::churn::measure(node, std::time::Duration::ZERO, 5, 3, 2, gap).await;
    assert_eq!(
        without.events_per_observer, 12.0,
        "3 subjects × 2 blips × 2: {without:?}"
    );
}

/// The cloud-path bench runs at a small size on both stores: every watcher
/// gets each event, and the snapshot lists every online user in messages
/// under API Gateway's 32 KB frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_benchmark_runs_at_a_small_size() {
    use rollcall_tests::bench::cloud::{CloudStore, measure, table};
    let mut rows = Vec::new();
    for store in [CloudStore::DynamoDb, CloudStore::Redis] {
        let m = measure(store, 3, 2, 40).await;
        assert_eq!(
            m.snapshot.0,
            40 + 1,
            "the seeded users and the watcher: {m:?}"
        );
        assert!(m.snapshot.2 <= 32 * 1024, "{m:?}");
        rows.push(m);
    }
    assert_eq!(table(&rows).lines().count(), 4);
}
