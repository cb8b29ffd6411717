//! What a [`Usage`] costs: DynamoDB request units, estimated Lambda
//! GB-seconds, WebSocket messages and HTTP requests at us-east-1 list
//! prices, and the table the tests print ([`Row`], [`print_table`]).

use std::collections::BTreeMap;

use super::cloud::{Cloud, Usage};
use super::recorder::Call;
use crate::infra;

/// DynamoDB request units, US on-demand rules, for items this small (every
/// item is under 1 KB; every read under 4 KB): a strongly consistent read
/// 1 RRU, an eventually consistent one (index queries) 0.5; a write 1 WRU,
/// transactional 2 per item; and every index entry a write adds, changes or
/// removes 1 WRU more (2 when its key moves). A connection item has three
/// indexes, all on attributes every item has: 3 index writes to add or
/// delete one, 2 to move its `lease_until` (a key of `by_lease`). A
/// presence item's four are sparse or project `seq`, so what a write does
/// to them depends on the item: it is counted from the table's stream
/// ([`super::stream`]).
fn request_units(usage: &Usage, cloud: &Cloud) -> (f64, f64) {
    let (mut rru, mut wru) = (0.0, 0.0);
    let connections = &cloud.tables.connections;
    let index_writes = |kind: &str, table: &str| -> f64 {
        if table != connections {
            return 0.0;
        }
        match kind {
            "Put" | "Delete" | "PutItem" | "DeleteItem" => 3.0,
            "Update" | "UpdateItem" => 2.0,
            _ => 0.0,
        }
    };
    let calls: &[Call] = &usage.calls;
    for c in calls {
        match c.op.as_str() {
            "GetItem" | "Scan" => rru += if c.consistent { 1.0 } else { 0.5 },
            "Query" => rru += 0.5,
            "PutItem" | "UpdateItem" | "DeleteItem" => wru += 1.0 + index_writes(&c.op, &c.table),
            "TransactWriteItems" => {
                for (kind, table) in &c.items {
                    wru += 2.0 + index_writes(kind, table);
                }
            }
            other => panic!("unexpected DynamoDB call {other}"),
        }
    }
    // Each change the stream shows is one of these writes (a cancelled
    // transaction or a failed condition changes nothing).
    let presence = &cloud.tables.presence;
    let presence_writes: usize = calls
        .iter()
        .map(|c| match c.op.as_str() {
            "TransactWriteItems" => c.items.iter().filter(|(_, t)| t == presence).count(),
            "PutItem" | "UpdateItem" | "DeleteItem" => usize::from(&c.table == presence),
            _ => 0,
        })
        .sum();
    assert!(
        usage.changes.len() <= presence_writes,
        "{} presence changes from {presence_writes} writes: {:#?}",
        usage.changes.len(),
        usage.changes
    );
    for change in &usage.changes {
        wru += f64::from(cloud.presence.index_writes(change));
    }
    (rru, wru)
}

/// `Query by_group ×8`-style counts of DynamoDB operations.
fn op_counts(calls: &[Call]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for c in calls {
        *counts.entry(c.op.clone()).or_default() += 1;
    }
    counts
}

/// [`op_counts`] as `GetItem 1, Query 8`.
fn ops_text(calls: &[Call]) -> String {
    op_counts(calls)
        .into_iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// us-east-1 list prices in USD (see infra/README.md for the date).
mod price {
    pub const LAMBDA_REQUEST: f64 = 0.20e-6;
    pub const LAMBDA_GB_SECOND_ARM64: f64 = 0.000_013_333_4;
    pub const RRU: f64 = 0.125e-6;
    pub const WRU: f64 = 0.625e-6;
    pub const WS_MESSAGE: f64 = 1.00e-6;
    pub const HTTP_REQUEST: f64 = 1.00e-6;
}

/// A function's configured memory in GB, from the template.
fn memory_gb(binary: &str) -> f64 {
    let default = infra::template()["Globals"]["Function"]["MemorySize"]
        .as_f64()
        .expect("MemorySize");
    let own = infra::resource(&infra::function(binary).logical)["Properties"]["MemorySize"]
        .as_f64()
        .unwrap_or(default);
    own / 1024.0
}

/// An estimate of a function's billed milliseconds in AWS (not measured
/// here: moto is no model of DynamoDB's latency): 5 ms of runtime and JSON,
/// 6 ms per DynamoDB round trip, 8 ms per round of up to 64 posts, and for
/// the two hashing functions 110 ms of Argon2id at 1024 MB (0.58 vCPU).
fn estimated_ms(binary: &str, dynamo_calls: usize, posts: u64) -> f64 {
    let hash = if matches!(binary, "http_login" | "http_signup") {
        110.0
    } else {
        0.0
    };
    let post_rounds = posts.div_ceil(64) as f64;
    5.0 + 6.0 * dynamo_calls as f64 + 8.0 * post_rounds + hash
}

/// One row of the printed table.
pub(super) struct Row {
    /// What happened.
    pub(super) event: String,
    /// The function the event invokes.
    pub(super) binary: &'static str,
    /// What it cost.
    pub(super) usage: Usage,
    /// HTTP API requests.
    pub(super) http_requests: u64,
    /// WebSocket messages the client sent.
    pub(super) messages_in: u64,
    /// Invocations the test made itself (the sweep, as EventBridge would).
    pub(super) direct: u64,
}

impl Row {
    /// A row with no HTTP request, message in or direct invocation.
    pub(super) fn new(event: impl Into<String>, binary: &'static str, usage: Usage) -> Self {
        Self {
            event: event.into(),
            binary,
            usage,
            http_requests: 0,
            messages_in: 0,
            direct: 0,
        }
    }

    /// Every function invocation of the event.
    fn invocations(&self) -> u64 {
        let g = &self.usage.gateway;
        g.ws_connect + g.ws_disconnect + g.ws_default + g.http + g.sweep + self.direct
    }

    /// USD per million such events: Lambda requests and estimated
    /// GB-seconds (each function with its configured memory), DynamoDB
    /// request units, WebSocket messages both ways, HTTP API requests.
    fn cost_per_million(&self, cloud: &Cloud) -> f64 {
        let (rru, wru) = request_units(&self.usage, cloud);
        let g = &self.usage.gateway;
        // Each function's calls (a log out's consequent $disconnect is
        // billed with its own memory and calls); management calls are the
        // event's own function's.
        let mut lambda = 0.0;
        let mut by_function: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
        for c in &self.usage.calls {
            let f = match c.function {
                Some("http") | None => self.binary,
                Some(f) => f,
            };
            by_function.entry(f).or_default().0 += 1;
        }
        by_function.entry(self.binary).or_default().1 =
            g.posts + g.posts_gone + g.deletes + g.deletes_gone;
        let mut counted = 0;
        for (f, (dynamo_calls, posts)) in &by_function {
            let ms = estimated_ms(f, *dynamo_calls, *posts);
            lambda +=
                price::LAMBDA_REQUEST + memory_gb(f) * ms / 1000.0 * price::LAMBDA_GB_SECOND_ARM64;
            counted += 1;
        }
        // Invocations that made no DynamoDB call at all.
        let idle = self.invocations().saturating_sub(counted);
        lambda += idle as f64
            * (price::LAMBDA_REQUEST
                + memory_gb(self.binary) * estimated_ms(self.binary, 0, 0) / 1000.0
                    * price::LAMBDA_GB_SECOND_ARM64);
        let messages = (self.messages_in + g.posts) as f64;
        1e6 * (lambda
            + rru * price::RRU
            + wru * price::WRU
            + messages * price::WS_MESSAGE
            + self.http_requests as f64 * price::HTTP_REQUEST)
    }
}

/// Prints `rows` as the README's table, under `title`.
pub(super) fn print_table(title: &str, rows: &[Row], cloud: &Cloud) {
    let mut out = format!(
        "\n{title}\n| event | function | invocations | DynamoDB calls | RRU | WRU | messages in / out | @connections DELETE | HTTP requests | USD per million events |\n|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let g = &r.usage.gateway;
        let (rru, wru) = request_units(&r.usage, cloud);
        let invocations = r.invocations();
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} / {} | {} | {} | {:.2} |\n",
            r.event,
            r.binary,
            invocations,
            ops_text(&r.usage.calls),
            rru,
            wru,
            r.messages_in,
            g.posts,
            g.deletes,
            r.http_requests,
            r.cost_per_million(cloud)
        ));
    }
    println!("{out}");
}
