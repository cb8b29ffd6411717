//! Checks on a [`Row`]: every call against the IAM role of the function
//! that made it, and the calls' [`shape`] (function, operation, table or
//! queue, index, count) for the scenarios to assert.

use std::collections::BTreeMap;

use rollcall::store::dynamodb::schema::{GROUP_SHARDS, PRESENCE_SHARDS as PRESENCE_INDEX_SHARDS};
use serde_json::json;

use super::cloud::{Cloud, Usage};
use super::pricing::Row;
use super::recorder::Call;
use crate::infra::{self, Eval};

/// The template's queue a stand-in queue URL stands for (the stand-in names
/// them `…push.fifo` and `…settle`).
fn queue_of(url: &str) -> &'static str {
    if url.ends_with("push.fifo") {
        "PushQueue"
    } else if url.ends_with("settle") {
        "SettleQueue"
    } else {
        panic!("a queue the template does not have: {url}")
    }
}

/// Checks every call of `row` against the role of the function that made
/// it (the event's own function for the HTTP function and untagged
/// calls), the queue mappings' polls against the roles of the functions
/// they feed, and the Management API calls against the roles of the
/// functions the row says made them.
pub(super) fn check_permissions(cloud: &Cloud, row: &Row) {
    let eval = Eval::new(&[]);
    let logical = |table: &str| -> &'static str {
        cloud
            .table_names(table)
            .unwrap_or_else(|| panic!("a table the template does not have: {table}"))
            .1
    };
    let binary = |c: &Call| match c.function {
        Some("http") | None => row.binary,
        Some(f) => f,
    };
    let allowed = |function: &str, action: &str, arn: &str| {
        let statements = eval.statements(&infra::function(function).role);
        assert!(
            infra::allows(&statements, action, arn),
            "{function} calls {action} on {arn}, which its role does not allow"
        );
    };
    for c in &row.usage.calls {
        if c.op == "TransactWriteItems" {
            for (kind, table) in &c.items {
                let action = match kind.as_str() {
                    "ConditionCheck" => "ConditionCheckItem".to_owned(),
                    k => format!("{k}Item"),
                };
                allowed(
                    binary(c),
                    &format!("dynamodb:{action}"),
                    &infra::table_arn(logical(table), None),
                );
            }
        } else {
            allowed(
                binary(c),
                &format!("dynamodb:{}", c.op),
                &infra::table_arn(logical(&c.table), c.index.as_deref()),
            );
        }
    }
    let queue_arn = |q: &str| infra::queue_arn(&eval.queue_name(q));
    for c in &row.usage.sqs {
        let action = match c.op.as_str() {
            "SendMessage" | "SendMessageBatch" => "sqs:SendMessage",
            other => panic!("{}: unexpected SQS call {other}", binary(c)),
        };
        allowed(binary(c), action, &queue_arn(queue_of(&c.table)));
    }
    let g = &row.usage.gateway;
    for (function, queue, n) in [
        ("push", "PushQueue", g.push),
        ("settle", "SettleQueue", g.settle),
    ] {
        if n > 0 {
            for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage"] {
                allowed(function, action, &queue_arn(queue));
            }
        }
    }
    // The stage the template deploys (the stand-in's is "local").
    let stage = eval.string(&json!({ "Ref": "StageName" }));
    for (method, who) in [("POST", &row.posts), ("DELETE", &row.deletes)] {
        for (function, n) in who.iter() {
            if *n > 0 {
                let arn = infra::connection_arn(&stage, method, "L0SM9cOFvHcCIhw=");
                allowed(function, "execute-api:ManageConnections", &arn);
            }
        }
    }
}

/// The calls of `usage`, as `function: op table index` (DynamoDB) or
/// `function: op queue ×messages` (SQS), counted; `event_function` stands
/// for the HTTP function and for untagged calls.
pub(super) fn shape(cloud: &Cloud, event_function: &str, usage: &Usage) -> BTreeMap<String, usize> {
    let role =
        |table: &str| -> &'static str { cloud.table_names(table).map_or("?", |(short, _)| short) };
    let mut out = BTreeMap::new();
    for c in &usage.calls {
        let f = match c.function {
            Some("http") | None => event_function,
            Some(f) => f,
        };
        let what = if c.op == "TransactWriteItems" {
            let items: Vec<String> = c
                .items
                .iter()
                .map(|(k, t)| format!("{k} {}", role(t)))
                .collect();
            format!("{f}: TransactWriteItems [{}]", items.join(", "))
        } else {
            match &c.index {
                Some(i) => format!("{f}: {} {} {i}", c.op, role(&c.table)),
                None => format!("{f}: {} {}", c.op, role(&c.table)),
            }
        };
        *out.entry(what).or_default() += 1;
    }
    for c in &usage.sqs {
        let f = c.function.unwrap_or(event_function);
        let q = match queue_of(&c.table) {
            "PushQueue" => "push",
            _ => "settle",
        };
        *out.entry(format!("{f}: {} {q} ×{}", c.op, c.messages))
            .or_default() += 1;
    }
    out
}

/// The shape [`shape`] gives, from `(call, count)` pairs.
pub(super) fn expect(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

/// The shape of `base` and `more` together.
pub(super) fn with(base: &[(&str, usize)], more: &[(&str, usize)]) -> BTreeMap<String, usize> {
    let mut out = expect(base);
    for (k, n) in more {
        *out.entry((*k).to_owned()).or_default() += n;
    }
    out
}

/// The group's shards: an event is one push message per shard, and
/// posting it lists each shard (one `Query` of `by_group`).
pub(super) const SHARDS: usize = GROUP_SHARDS as usize;

/// The calls of a listing of who is online (or of whose grace ended): one
/// Query per shard of the sparse `by_online` (`by_pending`) index.
pub(super) const PRESENCE_SHARDS: usize = PRESENCE_INDEX_SHARDS as usize;

/// The calls an announced event costs after the stream: `fanout` queues
/// it once per shard in one batch, `push` lists each shard to post it.
pub(super) const ANNOUNCED: [(&str, usize); 2] = [
    ("fanout: SendMessageBatch push ×8", 1),
    ("push: Query connections by_group", SHARDS),
];
