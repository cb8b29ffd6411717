//! Reading `infra/template.yaml`: the template as CloudFormation's JSON
//! long form, its resources by logical id and type, and its functions.

use std::sync::OnceLock;

use serde_json::{Value, json};

/// The repository root.
pub(super) fn root() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/..")
}

/// The template as CloudFormation's JSON long form.
pub(crate) fn template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let path = format!("{}/infra/template.yaml", root());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        long_form(yaml)
    })
}

/// YAML (with short-form tags) → JSON (long form).
fn long_form(v: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else {
                json!(n.as_f64())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => panic!("non-string key {other:?}"),
                    };
                    (key, long_form(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => {
            let name = t.tag.to_string().trim_start_matches('!').to_owned();
            let value = long_form(t.value);
            match name.as_str() {
                "Ref" | "Condition" => json!({ name: value }),
                "GetAtt" => {
                    let dotted = value.as_str().expect("!GetAtt Resource.Attribute");
                    let (res, attr) = dotted.split_once('.').expect("!GetAtt Resource.Attribute");
                    json!({ "Fn::GetAtt": [res, attr] })
                }
                _ => json!({ format!("Fn::{name}"): value }),
            }
        }
    }
}

/// The template's resources.
pub(crate) fn resources() -> &'static serde_json::Map<String, Value> {
    template()["Resources"].as_object().expect("Resources")
}

/// A resource by logical id.
pub(crate) fn resource(id: &str) -> &'static Value {
    resources()
        .get(id)
        .unwrap_or_else(|| panic!("no resource {id}"))
}

/// The logical ids of resources of `kind`, in template order.
pub(super) fn of_type(kind: &str) -> Vec<&'static str> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, _)| id.as_str())
        .collect()
}

/// The logical id a `{"Ref": id}` or `{"Fn::GetAtt": [id, _]}` names.
pub(super) fn target(v: &Value) -> &str {
    if let Some(r) = v.get("Ref").and_then(Value::as_str) {
        return r;
    }
    v["Fn::GetAtt"][0]
        .as_str()
        .unwrap_or_else(|| panic!("not a Ref or GetAtt: {v}"))
}

/// One function of the template.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    /// Its logical id.
    pub logical: String,
    /// The binary in `functions/src/bin/` it runs.
    pub binary: String,
    /// Its role's logical id.
    pub role: String,
}

/// Every `AWS::Serverless::Function`, in template order.
pub(crate) fn functions() -> Vec<Function> {
    of_type("AWS::Serverless::Function")
        .into_iter()
        .map(|id| {
            let r = resource(id);
            Function {
                logical: id.to_owned(),
                binary: r["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{id}: Metadata.BuildProperties.Binary"))
                    .to_owned(),
                role: target(&r["Properties"]["Role"]).to_owned(),
            }
        })
        .collect()
}

/// The function running `binary`.
pub(crate) fn function(binary: &str) -> Function {
    functions()
        .into_iter()
        .find(|f| f.binary == binary)
        .unwrap_or_else(|| panic!("no function runs {binary}"))
}
