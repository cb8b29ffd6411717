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
