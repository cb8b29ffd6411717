//! IAM: the Allow statements of a role, whether they allow an action on an
//! ARN (with IAM's globs), and the ARNs calls are authorized against.

use serde_json::Value;

use super::eval::{ACCOUNT, Eval, REGION};
use super::model::resource;

impl Eval {
    /// The Allow statements of role `role` (a Deny would be a surprise here).
    pub(crate) fn statements(&self, role: &str) -> Vec<Statement> {
        let props = self
            .value(&resource(role)["Properties"])
            .expect("role properties");
        let mut out = Vec::new();
        for policy in props["Policies"].as_array().into_iter().flatten() {
            for s in policy["PolicyDocument"]["Statement"]
                .as_array()
                .into_iter()
                .flatten()
            {
                assert_eq!(s["Effect"], "Allow", "{role}: {s}");
                let list = |v: &Value| -> Vec<String> {
                    match v {
                        Value::String(s) => vec![s.clone()],
                        Value::Array(a) => a
                            .iter()
                            .map(|x| x.as_str().expect("string").to_owned())
                            .collect(),
                        other => panic!("{role}: {other}"),
                    }
                };
                out.push(Statement {
                    actions: list(&s["Action"]),
                    resources: list(&s["Resource"]),
                });
            }
        }
        assert!(
            props.get("ManagedPolicyArns").is_none(),
            "{role}: managed policies are not least privilege"
        );
        out
    }
}

/// An Allow statement, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Statement {
    /// Actions, e.g. `dynamodb:GetItem`.
    pub actions: Vec<String>,
    /// Resource ARNs (may contain `*`).
    pub resources: Vec<String>,
}

/// Whether `statements` allow `action` on `arn` (IAM's `*` and `?` globs).
pub(crate) fn allows(statements: &[Statement], action: &str, arn: &str) -> bool {
    statements.iter().any(|s| {
        s.actions
            .iter()
            .any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
            && s.resources.iter().any(|r| glob(r, arn))
    })
}

fn glob(pattern: &str, s: &str) -> bool {
    match pattern.chars().next() {
        None => s.is_empty(),
        Some('*') => (0..=s.len())
            .filter(|i| s.is_char_boundary(*i))
            .any(|i| glob(&pattern[1..], &s[i..])),
        Some(c) => {
            let mut chars = s.chars();
            match chars.next() {
                Some(d) if c == '?' || c == d => glob(&pattern[c.len_utf8()..], chars.as_str()),
                _ => false,
            }
        }
    }
}

/// The ARN of a DynamoDB table (by logical id) or one of its indexes.
pub(crate) fn table_arn(logical: &str, index: Option<&str>) -> String {
    let table = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical}");
    match index {
        Some(i) => format!("{table}/index/{i}"),
        None => table,
    }
}

/// The ARN a Management API call on `connection` is authorized against.
pub(crate) fn connection_arn(stage: &str, method: &str, connection: &str) -> String {
    format!(
        "arn:aws:execute-api:{REGION}:{ACCOUNT}:WebSocketApi/{stage}/{method}/@connections/{connection}"
    )
}
