//! Checks on a [`Usage`]: every call against the IAM role of the function
//! that made it, and the calls' [`shape`] (operation, table, index, count)
//! for the scenarios to assert.

use std::collections::BTreeMap;

use rollcall::store::dynamodb::schema::{GROUP_SHARDS, PRESENCE_SHARDS as PRESENCE_INDEX_SHARDS};
use rollcall_local_server::gateway::StatsSnapshot;
use serde_json::json;

use super::cloud::{Cloud, Usage};
use crate::infra::{self, Eval};

/// Checks every call of `usage` against the role of the function that made
/// it (`event_function` for the HTTP function and untagged calls) and the
/// Management API calls against `event_function`'s role.
pub(super) fn check_permissions(cloud: &Cloud, event_function: &str, usage: &Usage) {
    let eval = Eval::new(&[]);
    let logical = |table: &str| -> &'static str {
        cloud
            .table_names(table)
            .unwrap_or_else(|| panic!("a table the template does not have: {table}"))
            .1
    };
    for c in &usage.calls {
        let binary = match c.function {
            Some("http") | None => event_function,
            Some(f) => f,
        };
        let statements = eval.statements(&infra::function(binary).role);
        let mut needed: Vec<(String, String)> = Vec::new();
        if c.op == "TransactWriteItems" {
            for (kind, table) in &c.items {
                let action = match kind.as_str() {
                    "ConditionCheck" => "ConditionCheckItem".to_owned(),
                    k => format!("{k}Item"),
                };
                needed.push((
                    format!("dynamodb:{action}"),
                    infra::table_arn(logical(table), None),
                ));
            }
        } else {
            needed.push((
                format!("dynamodb:{}", c.op),
                infra::table_arn(logical(&c.table), c.index.as_deref()),
            ));
        }
        for (action, arn) in needed {
            assert!(
                infra::allows(&statements, &action, &arn),
                "{binary} calls {action} on {arn}, which its role does not allow"
            );
        }
    }
    let statements = eval.statements(&infra::function(event_function).role);
    let g = &usage.gateway;
    for (method, n) in [
        ("POST", g.posts + g.posts_gone),
        ("DELETE", g.deletes + g.deletes_gone),
    ] {
        if n > 0 {
            // The stage the template deploys (the stand-in's is "local").
            let stage = eval.string(&json!({ "Ref": "StageName" }));
            let arn = infra::connection_arn(&stage, method, "L0SM9cOFvHcCIhw=");
            assert!(
                infra::allows(&statements, "execute-api:ManageConnections", &arn),
                "{event_function} makes {method} @connections calls its role does not allow"
            );
        }
    }
}

/// The calls of `usage`, as `(function, op, table role, index)`.
pub(super) fn shape(cloud: &Cloud, usage: &Usage) -> BTreeMap<String, usize> {
    let role =
        |table: &str| -> &'static str { cloud.table_names(table).map_or("?", |(short, _)| short) };
    let mut out = BTreeMap::new();
    for c in &usage.calls {
        let what = if c.op == "TransactWriteItems" {
            let items: Vec<String> = c
                .items
                .iter()
                .map(|(k, t)| format!("{k} {}", role(t)))
                .collect();
            format!("TransactWriteItems [{}]", items.join(", "))
        } else {
            match &c.index {
                Some(i) => format!("{} {} {i}", c.op, role(&c.table)),
                None => format!("{} {}", c.op, role(&c.table)),
            }
        };
        *out.entry(what).or_default() += 1;
    }
    out
}

/// The shape [`shape`] gives, from `(call, count)` pairs.
pub(super) fn expect(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect()
}

/// The calls of a broadcast reaching nobody but taking the group listing:
/// one Query per shard of the `users` group.
pub(super) const SHARDS: usize = GROUP_SHARDS as usize;

/// The calls of a listing of who is online (or of whose grace ended): one
/// Query per shard of the sparse `by_online` (`by_pending`) index.
pub(super) const PRESENCE_SHARDS: usize = PRESENCE_INDEX_SHARDS as usize;

/// No invocation and no `@connections` call.
pub(super) fn no_gateway_calls() -> StatsSnapshot {
    StatsSnapshot::default()
}
