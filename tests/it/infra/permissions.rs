//! `infra/README.md`'s permission table, rendered from the template's
//! roles, is in the README exactly; and only `push` broadcasts, and each
//! function may queue exactly what its code queues, with either store.

use std::collections::{BTreeMap, BTreeSet};

use rollcall::config::Config;

use super::eval::Eval;
use super::eval::queue_arn;
use super::iam::{allows, connection_arn, table_arn};
use super::model::{function, functions, root};

/// The README's permission table, rendered from the template's roles.
fn permission_table() -> String {
    let eval = Eval::new(&[]);
    let short = |arn: &str| -> String {
        let tail = arn.rsplit(":table/").next().unwrap_or(arn);
        let (table, index) = match tail.split_once("/index/") {
            Some((t, i)) => (t, Some(i)),
            None => match tail.split_once("/stream/") {
                Some((t, _)) => (t, Some("stream")),
                None => (tail, None),
            },
        };
        let table = table.trim_end_matches("Table").to_ascii_lowercase();
        match index {
            Some("stream") => format!("{table} stream"),
            Some(i) => format!("{table} index {i}"),
            None => table,
        }
    };
    let queue = |arn: &str| -> String {
        let name = arn.rsplit(':').next().unwrap_or(arn);
        name.strip_prefix("rollcall-").unwrap_or(name).to_owned()
    };
    let mut out = String::from(
        "| function | DynamoDB (table: actions) | SQS (queue: actions) | `execute-api:ManageConnections` |\n|---|---|---|---|\n",
    );
    for f in functions() {
        let mut dynamo: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut sqs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut manage: BTreeSet<String> = BTreeSet::new();
        for s in eval.statements(&f.role) {
            for a in &s.actions {
                for r in &s.resources {
                    if let Some(action) = a.strip_prefix("dynamodb:") {
                        dynamo
                            .entry(short(r))
                            .or_default()
                            .insert(action.to_owned());
                    } else if let Some(action) = a.strip_prefix("sqs:") {
                        sqs.entry(queue(r)).or_default().insert(action.to_owned());
                    } else if a == "execute-api:ManageConnections" {
                        let method = r
                            .rsplit('/')
                            .nth(2)
                            .expect("…/{stage}/{METHOD}/@connections/*");
                        manage.insert(format!("`{method}`"));
                    }
                }
            }
        }
        let cell = |m: BTreeMap<String, BTreeSet<String>>| -> String {
            if m.is_empty() {
                return "—".to_owned();
            }
            m.into_iter()
                .map(|(t, actions)| {
                    format!(
                        "{t}: {}",
                        actions.into_iter().collect::<Vec<_>>().join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let manage = if manage.is_empty() {
            "—".to_owned()
        } else {
            manage.into_iter().collect::<Vec<_>>().join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            f.binary,
            cell(dynamo),
            cell(sqs),
            manage
        ));
    }
    out
}

#[test]
fn the_readme_permission_table_is_the_templates() {
    let table = permission_table();
    let path = format!("{}/infra/README.md", root());
    let readme = std::fs::read_to_string(&path).expect("infra/README.md");
    assert!(
        readme.contains(&table),
        "infra/README.md must contain the permission table exactly as the template has it:\n\n{table}"
    );
}

/// What each function's code does on the fan-out path, by store: sends
/// to the push queue, sends to the settle queue, reads a shard of the
/// `users` group (to post an event to it), posts, closes.
#[derive(Debug, PartialEq, Eq)]
struct Reach {
    push_queue: bool,
    settle_queue: bool,
    group: bool,
    post: bool,
    delete: bool,
}

/// The template's [`Reach`] of `binary` under `eval`.
fn reach(eval: &Eval, binary: &str) -> Reach {
    let statements = eval.statements(&function(binary).role);
    let stage = eval.string(&serde_json::json!({ "Ref": "StageName" }));
    let queue = |q: &str| queue_arn(&eval.queue_name(q));
    let manage = |m: &str| {
        allows(
            &statements,
            "execute-api:ManageConnections",
            &connection_arn(&stage, m, "L0SM9cOFvHcCIhw="),
        )
    };
    Reach {
        push_queue: allows(&statements, "sqs:SendMessage", &queue("PushQueue")),
        settle_queue: allows(&statements, "sqs:SendMessage", &queue("SettleQueue")),
        group: allows(
            &statements,
            "dynamodb:Query",
            &table_arn("ConnectionsTable", Some("by_group")),
        ),
        post: manage("POST"),
        delete: manage("DELETE"),
    }
}

#[test]
fn only_push_broadcasts_and_each_function_may_queue_what_its_code_queues() {
    // Handlers never broadcast in their request: with DynamoDB the stream
    // announces (fanout queues, push posts); with Redis the handler queues
    // the event itself. `ws_disconnect` announces only without a grace
    // period (a last close then goes offline at once).
    for store in ["dynamodb", "redis://redis.internal:6379"] {
        let eval = Eval::new(&[("Store", store)]);
        let redis = store != "dynamodb";
        let env = eval.environment(&function("ws_disconnect").logical);
        let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
        let announces_on_close = config.offline_grace.is_zero();
        for f in functions() {
            let announces = match f.binary.as_str() {
                "fanout" => !redis,
                "http_login" | "http_pages" => false,
                "ws_disconnect" => redis && announces_on_close,
                _ => redis,
            };
            let want = Reach {
                push_queue: announces,
                settle_queue: matches!(f.binary.as_str(), "ws_disconnect" | "settle"),
                group: f.binary == "push" && !redis,
                post: matches!(f.binary.as_str(), "push" | "ws_default" | "http_logout"),
                delete: matches!(f.binary.as_str(), "ws_default" | "http_logout" | "sweep"),
            };
            assert_eq!(reach(&eval, &f.binary), want, "{} with {store}", f.binary);
        }
    }
}
