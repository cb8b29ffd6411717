//! [`Eval`]: CloudFormation intrinsics (`Ref`, `Fn::GetAtt`, `Fn::Sub`,
//! `Fn::If`, `Fn::Join`) and conditions resolved for one choice of
//! parameter values, and the environment each function gets.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::iam::table_arn;
use super::model::{resource, template};

/// The URL of queue `name` (what `Ref` gives), in [`ACCOUNT`] and [`REGION`].
pub(crate) fn queue_url(name: &str) -> String {
    format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}")
}

/// The ARN of queue `name`.
pub(crate) fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

/// The ARN of table `logical`'s stream (its label made up).
pub(crate) fn stream_arn(logical: &str) -> String {
    format!(
        "{}/stream/2026-01-01T00:00:00.000",
        table_arn(logical, None)
    )
}

/// Resolves intrinsics for one choice of parameter values.
pub(crate) struct Eval {
    params: BTreeMap<String, Value>,
}

/// The made-up account and region of evaluated ARNs.
pub(crate) const ACCOUNT: &str = "123456789012";
/// See [`ACCOUNT`].
pub(crate) const REGION: &str = "us-east-1";

impl Eval {
    /// Every parameter at its default, except `overrides`.
    pub(crate) fn new(overrides: &[(&str, &str)]) -> Self {
        let mut params = BTreeMap::new();
        for (name, p) in template()["Parameters"].as_object().expect("Parameters") {
            let raw = overrides
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| Value::String((*v).to_owned()))
                .unwrap_or_else(|| p["Default"].clone());
            let raw = match raw {
                Value::Number(n) => Value::String(n.to_string()),
                other => other,
            };
            let value = if p["Type"] == "CommaDelimitedList" {
                let s = raw.as_str().unwrap_or_default();
                Value::Array(s.split(',').map(|x| json!(x.trim())).collect())
            } else {
                raw
            };
            params.insert(name.clone(), value);
        }
        for (name, _) in overrides {
            assert!(params.contains_key(*name), "no parameter {name}");
        }
        Self { params }
    }

    /// Whether condition `name` holds.
    pub(crate) fn condition(&self, name: &str) -> bool {
        let c = &template()["Conditions"][name];
        assert!(!c.is_null(), "no condition {name}");
        self.truth(c)
    }

    fn truth(&self, c: &Value) -> bool {
        if let Some(name) = c.get("Condition").and_then(Value::as_str) {
            return self.condition(name);
        }
        if let Some(args) = c.get("Fn::Equals") {
            return self.value(&args[0]) == self.value(&args[1]);
        }
        if let Some(args) = c.get("Fn::Not") {
            return !self.truth(&args[0]);
        }
        if let Some(args) = c.get("Fn::And").and_then(Value::as_array) {
            return args.iter().all(|a| self.truth(a));
        }
        if let Some(args) = c.get("Fn::Or").and_then(Value::as_array) {
            return args.iter().any(|a| self.truth(a));
        }
        panic!("not a condition: {c}")
    }

    /// Whether the resource exists under these parameters.
    pub(crate) fn exists(&self, id: &str) -> bool {
        resource(id)["Condition"]
            .as_str()
            .is_none_or(|c| self.condition(c))
    }

    /// `v` with every intrinsic resolved; `None` for `AWS::NoValue`.
    pub(crate) fn value(&self, v: &Value) -> Option<Value> {
        match v {
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|i| self.value(i)).collect(),
            )),
            Value::Object(o) if o.len() == 1 => {
                let (k, arg) = o.iter().next().expect("one entry");
                match k.as_str() {
                    "Ref" => self.reference(arg.as_str().expect("Ref name")),
                    "Fn::GetAtt" => Some(Value::String(self.attribute(
                        arg[0].as_str().expect("GetAtt resource"),
                        arg[1].as_str().expect("GetAtt attribute"),
                    ))),
                    "Fn::Sub" => Some(Value::String(
                        self.substitute(arg.as_str().expect("Sub string")),
                    )),
                    "Fn::If" => {
                        let cond = arg[0].as_str().expect("If condition");
                        let branch = if self.condition(cond) {
                            &arg[1]
                        } else {
                            &arg[2]
                        };
                        self.value(branch)
                    }
                    "Fn::Join" => {
                        let sep = arg[0].as_str().expect("Join separator");
                        let parts = self.value(&arg[1])?;
                        let parts: Vec<String> = parts
                            .as_array()
                            .expect("Join list")
                            .iter()
                            .map(|p| p.as_str().expect("Join part").to_owned())
                            .collect();
                        Some(Value::String(parts.join(sep)))
                    }
                    k if k.starts_with("Fn::") => panic!("intrinsic {k} not supported here"),
                    _ => Some(Value::Object(
                        o.iter()
                            .filter_map(|(k, v)| Some((k.clone(), self.value(v)?)))
                            .collect(),
                    )),
                }
            }
            Value::Object(o) => Some(Value::Object(
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.value(v)?)))
                    .collect(),
            )),
            other => Some(other.clone()),
        }
    }

    /// `value` as a string.
    pub(crate) fn string(&self, v: &Value) -> String {
        match self.value(v) {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            other => panic!("{v} is not a string here: {other:?}"),
        }
    }

    fn reference(&self, name: &str) -> Option<Value> {
        let pseudo = match name {
            "AWS::NoValue" => return None,
            "AWS::Region" => Some(REGION),
            "AWS::AccountId" => Some(ACCOUNT),
            "AWS::Partition" => Some("aws"),
            "AWS::URLSuffix" => Some("amazonaws.com"),
            "AWS::StackName" => Some("rollcall"),
            _ => None,
        };
        if let Some(p) = pseudo {
            return Some(json!(p));
        }
        if let Some(p) = self.params.get(name) {
            return Some(p.clone());
        }
        assert!(
            self.exists(name),
            "Ref to {name}, which does not exist here"
        );
        let r = resource(name);
        Some(match r["Type"].as_str() {
            Some("AWS::Logs::LogGroup") => json!(self.string(&r["Properties"]["LogGroupName"])),
            Some("AWS::SQS::Queue") => json!(queue_url(&self.queue_name(name))),
            _ => json!(name),
        })
    }

    /// The name of queue `id` (its `QueueName`, which every queue here has).
    pub(crate) fn queue_name(&self, id: &str) -> String {
        self.string(&resource(id)["Properties"]["QueueName"])
    }

    pub(super) fn attribute(&self, id: &str, attr: &str) -> String {
        assert!(self.exists(id), "GetAtt of {id}, which does not exist here");
        let kind = resource(id)["Type"].as_str().expect("Type");
        match (kind, attr) {
            ("AWS::SQS::Queue", "QueueName") => return self.queue_name(id),
            ("AWS::DynamoDB::Table", "StreamArn") => return stream_arn(id),
            _ => assert_eq!(attr, "Arn", "{kind}.{attr} is not modelled"),
        }
        match kind {
            "AWS::SQS::Queue" => queue_arn(&self.queue_name(id)),
            "AWS::DynamoDB::Table" => table_arn(id, None),
            "AWS::Logs::LogGroup" => {
                let name = self.string(&json!({ "Ref": id }));
                format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*")
            }
            "AWS::Serverless::Function" => {
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{id}")
            }
            "AWS::IAM::Role" => format!("arn:aws:iam::{ACCOUNT}:role/{id}"),
            other => panic!("no Arn modelled for {other}"),
        }
    }

    fn substitute(&self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closing brace") + start;
            let name = &rest[start + 2..end];
            let value = match name.split_once('.') {
                Some((id, attr)) => self.attribute(id, attr),
                None => self.string(&json!({ "Ref": name })),
            };
            out.push_str(&value);
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The environment of function `logical`: the Globals' merged with its own.
    pub(crate) fn environment(&self, logical: &str) -> BTreeMap<String, String> {
        let globals = &template()["Globals"]["Function"]["Environment"]["Variables"];
        let own = &resource(logical)["Properties"]["Environment"]["Variables"];
        let mut env = BTreeMap::new();
        for vars in [globals, own] {
            for (k, v) in vars.as_object().into_iter().flatten() {
                env.insert(k.clone(), self.string(v));
            }
        }
        env
    }
}
