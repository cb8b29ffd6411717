//! `infra/README.md`'s permission table, rendered from the template's
//! roles, is in the README exactly.

use std::collections::{BTreeMap, BTreeSet};

use super::eval::Eval;
use super::model::{functions, root};

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
