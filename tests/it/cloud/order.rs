//! Order on the cloud path: one user's events reach every socket in
//! transition order, each once, with two `push` functions posting at once;
//! and a page that applies the page's rules (a row moves only to a newer
//! transition; a snapshot without `reset` merges by transition number)
//! ends at the truth however snapshots and events cross.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::join_all;
use rollcall_local_server::gateway::GatewayOptions;
use rollcall_tests::client::Visitor;
use rollcall_tests::gateway::{TestGateway, spawn_gateway_on_dynamodb};
use rollcall_tests::unique_name;
use serde_json::Value;

async fn gateway() -> TestGateway {
    let opts = GatewayOptions {
        sweep_every: None,
        ..GatewayOptions::default()
    };
    spawn_gateway_on_dynamodb(rollcall_tests::moto::fresh_store().await, opts, &[]).await
}

/// Every message until none but pongs has come for three seconds.
async fn until_quiet(socket: &mut rollcall_tests::client::Socket) -> Vec<Value> {
    let mut out = Vec::new();
    let mut quiet_until = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let left = quiet_until.saturating_duration_since(tokio::time::Instant::now());
        let Some(m) = socket.next_json(left).await else {
            return out;
        };
        if m["type"] != "pong" {
            quiet_until = tokio::time::Instant::now() + Duration::from_secs(3);
            out.push(m);
        }
    }
}

/// Bob's tabs open and close `rounds` times, a few at once: many
/// transitions in a short time, from several functions.
async fn churn(gw: &TestGateway, bob: &Visitor, rounds: usize) {
    for _ in 0..rounds {
        let tabs = join_all((0..3).map(|_| gw.socket(bob))).await;
        join_all(tabs.into_iter().map(|t| t.close())).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_events_reach_a_socket_in_order_each_once_with_two_posters() {
    let gw = gateway().await;
    let alice = Visitor::new(&gw.base);
    alice.register(&unique_name("alice")).await;
    let bob = Visitor::new(&gw.base);
    let bn = unique_name("bob");
    bob.register(&bn).await;
    let mut watcher = gw.socket(&alice).await;
    churn(&gw, &bob, 6).await;
    // Every frame about bob, raw, until things are quiet.
    let mut seqs = Vec::new();
    for m in until_quiet(&mut watcher).await {
        if m["username"] == bn.as_str() && m.get("type").is_none() {
            seqs.push(m["seq"].as_u64().expect("seq"));
        }
    }
    // The sign-up's announcement (0) may come first; then 1, 2, 3, …
    seqs.retain(|s| *s > 0);
    assert!(
        seqs.len() >= 12,
        "six rounds, two transitions each: {seqs:?}"
    );
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "in order, each once, none missing");
    assert!(gw.stats.snapshot().push >= 1);
}

/// The page's model of the list: per user, online and the newest `seq`.
#[derive(Default)]
struct Page {
    rows: HashMap<String, (bool, u64)>,
    touched: std::collections::HashSet<String>,
}

impl Page {
    fn apply(&mut self, m: &Value) {
        if m["type"] == "snapshot" {
            let listed: Vec<(String, u64)> = m["users"]
                .as_array()
                .expect("users")
                .iter()
                .map(|u| {
                    (
                        u["username"].as_str().expect("name").to_owned(),
                        u["seq"].as_u64().expect("seq"),
                    )
                })
                .collect();
            for (name, seq) in &listed {
                let row = self.rows.entry(name.clone()).or_insert((false, 0));
                if *seq >= row.1 {
                    *row = (true, *seq);
                }
            }
            if m["more"] != true {
                for (name, row) in self.rows.iter_mut() {
                    if row.0
                        && !listed.iter().any(|(n, _)| n == name)
                        && !self.touched.contains(name)
                    {
                        row.0 = false;
                    }
                }
                self.touched.clear();
            }
        } else if m.get("type").is_none() {
            let name = m["username"].as_str().expect("name").to_owned();
            let seq = m["seq"].as_u64().expect("seq");
            self.touched.insert(name.clone());
            let row = self.rows.entry(name).or_insert((false, 0));
            if seq >= row.1 {
                *row = (m["is_logged_in"].as_bool().expect("bool"), seq);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_ends_at_the_truth_however_snapshots_and_events_cross() {
    let gw = gateway().await;
    let alice = Visitor::new(&gw.base);
    alice.register(&unique_name("alice")).await;
    let bob = Visitor::new(&gw.base);
    let bn = unique_name("bob");
    bob.register(&bn).await;
    let mut watcher = gw.socket(&alice).await;
    let mut page = Page::default();
    for (name, online) in &watcher.snapshot {
        page.rows.insert(name.clone(), (*online, 0));
    }
    let churning = churn(&gw, &bob, 5);
    let asking = async {
        for _ in 0..10 {
            watcher.send_text(r#"{"type":"snapshot"}"#).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    tokio::join!(churning, asking);
    // Bob ends with no tab: offline. Read everything until quiet.
    for m in until_quiet(&mut watcher).await {
        page.apply(&m);
    }
    let truth = gw
        .ctx
        .store
        .list_users(None, None, 10)
        .await
        .expect("list")
        .items
        .into_iter()
        .find(|u| u.username.as_str() == bn)
        .expect("bob");
    assert!(!truth.is_logged_in);
    assert_eq!(
        page.rows.get(&bn).copied(),
        Some((false, truth.seq)),
        "the page shows the truth"
    );
}
