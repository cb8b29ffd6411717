//! `infra/README.md`'s permission table, rendered from the template's
//! roles, is in the README exactly; and `ws_disconnect` may broadcast
//! exactly when its configuration makes it announce.

use std::collections::{BTreeMap, BTreeSet};

use rollcall::config::Config;

use super::eval::Eval;
use super::iam::{allows, connection_arn, table_arn};
use super::model::{function, functions, root};

/// The README's permission table, rendered from the template's roles.
fn permission_table() -> String {
    let eval = Eval::new(&[]);
    let short = |arn: &str| -> String {
        let tail = arn.rsplit(":table/").next().unwrap_or(arn);
        let (table, index) = match tail.split_once("/index/") {
            Some((t, i)) => (t, Some(i)),
            None => (tail, None),
        };
        let table = table.trim_end_matches("Table").to_ascii_lowercase();
        match index {
            Some(i) => format!("{table} index {i}"),
            None => table,
        }
    };
    let mut out = String::from(
        "| function | DynamoDB (table: actions) | `execute-api:ManageConnections` |\n|---|---|---|\n",
    );
    for f in functions() {
        let mut dynamo: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut manage: BTreeSet<String> = BTreeSet::new();
        for s in eval.statements(&f.role) {
            for a in &s.actions {
                for r in &s.resources {
                    if let Some(action) = a.strip_prefix("dynamodb:") {
                        dynamo
                            .entry(short(r))
                            .or_default()
                            .insert(action.to_owned());
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
        let dynamo: Vec<String> = dynamo
            .into_iter()
            .map(|(t, actions)| {
                format!(
                    "{t}: {}",
                    actions.into_iter().collect::<Vec<_>>().join(", ")
                )
            })
            .collect();
        let manage = if manage.is_empty() {
            "—".to_owned()
        } else {
            manage.into_iter().collect::<Vec<_>>().join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            f.binary,
            dynamo.join("; "),
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

#[test]
fn ws_disconnect_may_broadcast_exactly_when_a_last_close_announces() {
    // With a grace period a last close only starts it (the sweep announces
    // later), so the role lists no group and posts nothing; without one the
    // close announces and needs what every broadcasting function has.
    let eval = Eval::new(&[]);
    let f = function("ws_disconnect");
    let env = eval.environment(&f.logical);
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
    let statements = eval.statements(&f.role);
    let stage = eval.string(&serde_json::json!({ "Ref": "StageName" }));
    let broadcast = [
        (
            "dynamodb:Query",
            table_arn("ConnectionsTable", Some("by_group")),
        ),
        (
            "execute-api:ManageConnections",
            connection_arn(&stage, "POST", "L0SM9cOFvHcCIhw="),
        ),
    ];
    let announces = config.offline_grace.is_zero();
    for (action, arn) in broadcast {
        assert_eq!(
            allows(&statements, action, &arn),
            announces,
            "ws_disconnect with a grace of {:?}: {action} on {arn}",
            config.offline_grace
        );
    }
}
