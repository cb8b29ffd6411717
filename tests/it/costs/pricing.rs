//! What a [`Usage`] costs, function by function: DynamoDB request units,
//! SQS requests, estimated Lambda GB-seconds, WebSocket messages and HTTP
//! requests at us-east-1 list prices, and the table the tests print
//! ([`Row`], [`print_table`]).

use std::collections::BTreeMap;

use super::cloud::{Cloud, Usage};
use super::recorder::Call;
use crate::infra;

/// us-east-1 list prices in USD (see infra/README.md for the date).
mod price {
    pub const LAMBDA_REQUEST: f64 = 0.20e-6;
    pub const LAMBDA_GB_SECOND_ARM64: f64 = 0.000_013_333_4;
    pub const RRU: f64 = 0.125e-6;
    pub const WRU: f64 = 0.625e-6;
    pub const WS_MESSAGE: f64 = 1.00e-6;
    pub const HTTP_REQUEST: f64 = 1.00e-6;
    pub const SQS_FIFO_REQUEST: f64 = 0.50e-6;
    pub const SQS_STANDARD_REQUEST: f64 = 0.40e-6;
}

/// The functions in the order the table lists them (the event's own
/// first, then the fan-out's).
const ORDER: [&str; 11] = [
    "http_signup",
    "http_login",
    "http_pages",
    "http_logout",
    "ws_connect",
    "ws_disconnect",
    "ws_default",
    "sweep",
    "fanout",
    "push",
    "settle",
];

/// Read request units of one call: a consistent `GetItem` 1, an eventually
/// consistent one 0.5; a `Query` (eventually consistent) 0.5 per 4 KB of
/// what it returned, at least 0.5.
fn read_units(c: &Call) -> f64 {
    match c.op.as_str() {
        "GetItem" => {
            if c.consistent {
                1.0
            } else {
                0.5
            }
        }
        "Query" | "Scan" => {
            // No answer recorded: the attempt failed (and was retried).
            let bytes = c.read_bytes.unwrap_or(0);
            0.5 * bytes.div_ceil(4096).max(1) as f64
        }
        _ => 0.0,
    }
}

/// Write request units of one call, without the presence table's index
/// entries (counted from its stream, [`Lines::new`]): a write 1 WRU,
/// transactional 2 per item; and every index entry a write adds, changes or
/// removes 1 WRU more (2 when its key moves). A connection item has three
/// indexes, all on attributes every item has: 3 index writes to add or
/// delete one, 2 to move its `lease_until` (a key of `by_lease`).
fn write_units(c: &Call, cloud: &Cloud) -> f64 {
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
    match c.op.as_str() {
        "PutItem" | "UpdateItem" | "DeleteItem" => 1.0 + index_writes(&c.op, &c.table),
        "TransactWriteItems" => c
            .items
            .iter()
            .map(|(kind, table)| 2.0 + index_writes(kind, table))
            .sum(),
        "GetItem" | "Query" | "Scan" => 0.0,
        other => panic!("unexpected DynamoDB call {other}"),
    }
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
/// here: moto is no model of DynamoDB's or SQS's latency): 5 ms of runtime
/// and JSON per invocation, 6 ms per DynamoDB or SQS round trip, 8 ms per
/// round of up to 64 posts (one round at least per group shard that has
/// any: `push` posts shard after shard), and for the two hashing functions
/// 110 ms of Argon2id at 1024 MB (0.58 vCPU).
fn estimated_ms(
    binary: &str,
    invocations: u64,
    round_trips: usize,
    posts: u64,
    shards: usize,
) -> f64 {
    let hash = if matches!(binary, "http_login" | "http_signup") {
        110.0
    } else {
        0.0
    };
    let rounds = posts.div_ceil(64).max(posts.min(shards as u64)) as f64;
    invocations as f64 * (5.0 + hash) + 6.0 * round_trips as f64 + 8.0 * rounds
}

/// One row of the printed table: an event and everything it caused.
pub(super) struct Row {
    /// What happened.
    pub(super) event: String,
    /// The function the event invokes (the HTTP function of `http`
    /// invocations, and the one the test's own untagged calls stand for).
    pub(super) binary: &'static str,
    /// What it cost.
    pub(super) usage: Usage,
    /// HTTP API requests.
    pub(super) http_requests: u64,
    /// WebSocket messages the client sent.
    pub(super) messages_in: u64,
    /// Invocations of `binary` the test made itself (the sweep, as
    /// EventBridge would).
    pub(super) direct: u64,
    /// Who made the `PostToConnection` calls (the stand-in counts them, not
    /// by whom: each scenario says, and the counts must add up).
    pub(super) posts: Vec<(&'static str, u64)>,
    /// Who made the `DeleteConnection` calls.
    pub(super) deletes: Vec<(&'static str, u64)>,
}

impl Row {
    /// A row with no HTTP request, message in, direct invocation or
    /// `@connections` call.
    pub(super) fn new(event: impl Into<String>, binary: &'static str, usage: Usage) -> Self {
        Self {
            event: event.into(),
            binary,
            usage,
            http_requests: 0,
            messages_in: 0,
            direct: 0,
            posts: Vec::new(),
            deletes: Vec::new(),
        }
    }

    /// `function` made `n` of the posts.
    pub(super) fn posted_by(mut self, function: &'static str, n: u64) -> Self {
        self.posts.push((function, n));
        self
    }

    /// `function` made `n` of the deletes.
    pub(super) fn deleted_by(mut self, function: &'static str, n: u64) -> Self {
        self.deletes.push((function, n));
        self
    }

    /// The function a call is billed to.
    fn of(&self, c: &Call) -> &'static str {
        match c.function {
            Some("http") | None => self.binary,
            Some(f) => f,
        }
    }

    /// Invocations of `f`.
    fn invocations(&self, f: &str) -> u64 {
        let g = &self.usage.gateway;
        let own = if f == self.binary { self.direct } else { 0 };
        own + match f {
            "ws_connect" => g.ws_connect,
            "ws_disconnect" => g.ws_disconnect,
            "ws_default" => g.ws_default,
            "sweep" => g.sweep,
            "fanout" => g.fanout,
            "push" => g.push,
            "settle" => g.settle,
            http if http.starts_with("http_") && http == self.binary => g.http,
            _ => 0,
        }
    }

    /// The row's lines, one per function involved.
    fn lines(&self, cloud: &Cloud) -> Vec<Line> {
        let g = &self.usage.gateway;
        let declared = |v: &[(&str, u64)]| v.iter().map(|(_, n)| n).sum::<u64>();
        assert_eq!(
            declared(&self.posts),
            g.posts + g.posts_gone,
            "{}: say who made each post",
            self.event
        );
        assert_eq!(
            declared(&self.deletes),
            g.deletes + g.deletes_gone,
            "{}: say who made each delete",
            self.event
        );
        // A presence change's index writes are the write's that made it:
        // per item, the stream's changes in order match the writes in order.
        let presence = &cloud.tables.presence;
        let mut writes: BTreeMap<&str, Vec<&'static str>> = BTreeMap::new();
        for c in &self.usage.calls {
            for (table, user) in &c.keys {
                if table == presence {
                    writes.entry(user.as_str()).or_default().push(self.of(c));
                }
            }
        }
        let mut index_wru: BTreeMap<&str, f64> = BTreeMap::new();
        let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
        for change in &self.usage.changes {
            let user = change.username().expect("a presence item has a username");
            let n = taken.entry(user).or_default();
            let by = writes
                .get(user)
                .and_then(|w| w.get(*n))
                .unwrap_or_else(|| panic!("{}: a change of {user} no write made", self.event));
            *n += 1;
            *index_wru.entry(by).or_default() += f64::from(cloud.presence.index_writes(change));
        }
        ORDER
            .iter()
            .filter_map(|f| Line::new(self, f, &index_wru, cloud))
            .collect()
    }

    /// USD per million such events.
    pub(super) fn cost_per_million(&self, cloud: &Cloud) -> f64 {
        self.lines(cloud).iter().map(|l| l.usd).sum::<f64>() * 1e6
    }
}

/// What one function did for one event, and its price.
struct Line {
    function: &'static str,
    invocations: u64,
    dynamo: BTreeMap<String, usize>,
    rru: f64,
    wru: f64,
    sqs: BTreeMap<String, usize>,
    /// Its event source mapping's receives and deletes (one each per batch).
    polls: u64,
    messages_in: u64,
    posts: u64,
    deletes: u64,
    http: u64,
    usd: f64,
}

impl Line {
    fn new(
        row: &Row,
        f: &'static str,
        index_wru: &BTreeMap<&str, f64>,
        cloud: &Cloud,
    ) -> Option<Self> {
        let mine: Vec<&Call> = row.usage.calls.iter().filter(|c| row.of(c) == f).collect();
        let sqs: Vec<&Call> = row.usage.sqs.iter().filter(|c| row.of(c) == f).collect();
        let invocations = row.invocations(f);
        let said = |v: &[(&str, u64)]| v.iter().filter(|(g, _)| *g == f).map(|(_, n)| n).sum();
        let posts: u64 = said(&row.posts);
        let deletes: u64 = said(&row.deletes);
        let own = f == row.binary;
        let (messages_in, http) = if own {
            (row.messages_in, row.http_requests)
        } else {
            (0, 0)
        };
        if invocations == 0 && mine.is_empty() && sqs.is_empty() && posts + deletes == 0 && !own {
            return None;
        }
        let rru: f64 = mine.iter().map(|c| read_units(c)).sum::<f64>() + 0.0;
        let wru: f64 = mine.iter().map(|c| write_units(c, cloud)).sum::<f64>()
            + index_wru.get(f).copied().unwrap_or(0.0);
        let polls = if matches!(f, "push" | "settle") {
            invocations
        } else {
            0
        };
        let fifo = |url: &str| url.ends_with(".fifo");
        let sqs_usd: f64 = sqs
            .iter()
            .map(|c| {
                if fifo(&c.table) {
                    price::SQS_FIFO_REQUEST
                } else {
                    price::SQS_STANDARD_REQUEST
                }
            })
            .sum::<f64>()
            + 2.0
                * polls as f64
                * if f == "push" {
                    price::SQS_FIFO_REQUEST
                } else {
                    price::SQS_STANDARD_REQUEST
                };
        let group_queries = mine
            .iter()
            .filter(|c| c.index.as_deref() == Some("by_group"))
            .count();
        let ms = estimated_ms(
            f,
            invocations.max(1),
            mine.len() + sqs.len(),
            posts + deletes,
            group_queries.max(1),
        );
        let lambda = invocations.max(1) as f64 * price::LAMBDA_REQUEST
            + memory_gb(f) * ms / 1000.0 * price::LAMBDA_GB_SECOND_ARM64;
        let usd = lambda
            + rru * price::RRU
            + wru * price::WRU
            + sqs_usd
            + (messages_in + posts) as f64 * price::WS_MESSAGE
            + http as f64 * price::HTTP_REQUEST;
        let count = |calls: &[&Call]| {
            let mut m = BTreeMap::new();
            for c in calls {
                *m.entry(c.op.clone()).or_default() += 1;
            }
            m
        };
        Some(Self {
            function: f,
            invocations: invocations.max(1),
            dynamo: count(&mine),
            rru,
            wru,
            sqs: count(&sqs),
            polls,
            messages_in,
            posts,
            deletes,
            http,
            usd,
        })
    }
}

/// `GetItem 1, Query 8`, or `—`.
fn ops_text(ops: &BTreeMap<String, usize>) -> String {
    if ops.is_empty() {
        return "—".to_owned();
    }
    ops.iter()
        .map(|(op, n)| format!("{op} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Prints `rows` as the README's table, under `title`: one line per
/// function an event involved, and the event's total.
pub(super) fn print_table(title: &str, rows: &[Row], cloud: &Cloud) {
    let mut out = format!(
        "\n{title}\n| event | function | invocations | DynamoDB calls | RRU | WRU | SQS requests | messages in / out | @connections DELETE | HTTP requests | USD per million events |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let lines = r.lines(cloud);
        let many = lines.len() > 1;
        for (i, l) in lines.iter().enumerate() {
            let mut sqs = ops_text(&l.sqs);
            if l.polls > 0 {
                let polled = format!(
                    "its mapping: ReceiveMessage {0}, DeleteMessageBatch {0}",
                    l.polls
                );
                sqs = if l.sqs.is_empty() {
                    polled
                } else {
                    format!("{sqs}; {polled}")
                };
            }
            out.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {} | {} | {} / {} | {} | {} | {:.2} |\n",
                if i == 0 { r.event.as_str() } else { "" },
                l.function,
                l.invocations,
                ops_text(&l.dynamo),
                l.rru,
                l.wru,
                sqs,
                l.messages_in,
                l.posts,
                l.deletes,
                l.http,
                l.usd * 1e6
            ));
        }
        if many {
            let sum = |f: fn(&Line) -> f64| lines.iter().map(f).sum::<f64>();
            let polls: u64 = lines.iter().map(|l| l.polls).sum();
            let sqs: usize = lines.iter().map(|l| l.sqs.values().sum::<usize>()).sum();
            out.push_str(&format!(
                "| | **all** | {} | {} | {} | {} | {} | {} / {} | {} | {} | **{:.2}** |\n",
                lines.iter().map(|l| l.invocations).sum::<u64>(),
                lines
                    .iter()
                    .map(|l| l.dynamo.values().sum::<usize>())
                    .sum::<usize>(),
                sum(|l| l.rru),
                sum(|l| l.wru),
                sqs as u64 + 2 * polls,
                lines.iter().map(|l| l.messages_in).sum::<u64>(),
                lines.iter().map(|l| l.posts).sum::<u64>(),
                lines.iter().map(|l| l.deletes).sum::<u64>(),
                lines.iter().map(|l| l.http).sum::<u64>(),
                r.cost_per_million(cloud)
            ));
        }
    }
    println!("{out}");
}
