//! The AWS template (`infra/template.yaml`) against the code it deploys:
//! every Lambda binary is a function and every function a binary; every
//! variable the functions read (`Scope::Lambda` in `rollcall::config`) is
//! set for every function, to values `Config` accepts, and no unknown one;
//! the DynamoDB tables are exactly what the store creates; the routes reach
//! the functions that serve them; and `infra/README.md`'s permission table
//! is the template's.
//!
//! The template is read with `serde_yaml_ng`, which keeps CloudFormation's
//! short-form tags (`!Ref`, `!Sub`, `!If`, …) as tagged values; [`template`]
//! turns them into the JSON long form (`{"Ref": …}`, `{"Fn::Sub": …}`), and
//! [`Eval`] resolves intrinsics for given parameter values, naming resources
//! by their logical ids (table `UsersTable`, API `WebSocketApi`, ARNs in
//! account `123456789012`, region `us-east-1`). `costs.rs` uses the same
//! helpers to check every call it observes against the roles.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use rollcall::config::{Config, Scope, StoreChoice, VARIABLES};
use rollcall::store::dynamodb::schema;
use serde_json::{Value, json};

/// The repository root.
fn root() -> &'static str {
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
fn of_type(kind: &str) -> Vec<&'static str> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, _)| id.as_str())
        .collect()
}

/// The logical id a `{"Ref": id}` or `{"Fn::GetAtt": [id, _]}` names.
fn target(v: &Value) -> &str {
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
            _ => json!(name),
        })
    }

    fn attribute(&self, id: &str, attr: &str) -> String {
        assert!(self.exists(id), "GetAtt of {id}, which does not exist here");
        assert_eq!(attr, "Arn", "only Arn attributes are modelled");
        let kind = resource(id)["Type"].as_str().expect("Type");
        match kind {
            "AWS::DynamoDB::Table" => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{id}"),
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

/// `(route key, binary)` of every route of the API `api`.
pub(crate) fn routes(api: &str) -> Vec<(String, String)> {
    let eval = Eval::new(&[]);
    of_type("AWS::ApiGatewayV2::Route")
        .into_iter()
        .map(resource)
        .filter(|r| target(&r["Properties"]["ApiId"]) == api)
        .map(|r| {
            let key = r["Properties"]["RouteKey"]
                .as_str()
                .expect("RouteKey")
                .to_owned();
            let to = eval.string(&r["Properties"]["Target"]);
            let integration = to.strip_prefix("integrations/").expect("integrations/…");
            let uri = &resource(integration)["Properties"]["IntegrationUri"];
            let function = match uri.get("Fn::GetAtt") {
                Some(_) => target(uri).to_owned(),
                None => {
                    let sub = uri["Fn::Sub"].as_str().expect("IntegrationUri");
                    let end = sub.find(".Arn}").expect("${Function.Arn}");
                    let start = sub[..end].rfind("${").expect("${Function.Arn}") + 2;
                    sub[start..end].to_owned()
                }
            };
            let binary = functions()
                .into_iter()
                .find(|f| f.logical == function)
                .unwrap_or_else(|| panic!("{key}: integration to {function}, not a function"))
                .binary;
            (key, binary)
        })
        .collect()
}

/// The binary API Gateway's HTTP API hands `method path` to: an exact
/// route (a trailing slash does not count), else the longest greedy
/// `{proxy+}` prefix, else `$default`.
pub(crate) fn http_function_for(method: &str, path: &str) -> String {
    let routes = routes("HttpApi");
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let exact = routes.iter().find(|(key, _)| {
        key.split_once(' ')
            .is_some_and(|(m, p)| (m == method || m == "ANY") && p == trimmed)
    });
    if let Some((_, binary)) = exact {
        return binary.clone();
    }
    let greedy = routes
        .iter()
        .filter_map(|(key, binary)| {
            let (m, p) = key.split_once(' ')?;
            let prefix = p.strip_suffix("{proxy+}")?;
            ((m == method || m == "ANY") && path.starts_with(prefix) && path.len() > prefix.len())
                .then_some((prefix.len(), binary))
        })
        .max_by_key(|(len, _)| *len);
    if let Some((_, binary)) = greedy {
        return binary.clone();
    }
    routes
        .iter()
        .find(|(key, _)| key == "$default")
        .map(|(_, b)| b.clone())
        .expect("a $default route")
}

/// `functions/src/bin/*.rs`, by name.
fn binaries() -> BTreeSet<String> {
    let dir = format!("{}/functions/src/bin", root());
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| {
            p.file_stem()
                .expect("file name")
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn every_lambda_binary_is_a_function_of_the_template_and_back() {
    let in_template: BTreeSet<String> = functions().into_iter().map(|f| f.binary).collect();
    assert_eq!(
        binaries(),
        in_template,
        "functions/src/bin/ and the template's functions differ"
    );
    assert_eq!(
        functions().len(),
        in_template.len(),
        "one function per binary"
    );
}

#[test]
fn functions_are_built_by_cargo_lambda_for_al2023_on_arm64_by_default() {
    let globals = &template()["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Handler"], "bootstrap");
    assert_eq!(globals["CodeUri"], "../functions");
    assert_eq!(globals["Architectures"], json!([{ "Ref": "Architecture" }]));
    let arch = &template()["Parameters"]["Architecture"];
    assert_eq!(arch["Default"], "arm64");
    assert_eq!(arch["AllowedValues"], json!(["arm64", "x86_64"]));
    let default_memory = globals["MemorySize"].as_u64().expect("MemorySize");
    for f in functions() {
        let r = resource(&f.logical);
        assert_eq!(
            r["Metadata"]["BuildMethod"], "rust-cargolambda",
            "{}",
            f.logical
        );
        for key in ["Runtime", "Handler", "CodeUri", "Architectures"] {
            assert!(
                r["Properties"].get(key).is_none(),
                "{}: {key} comes from Globals",
                f.logical
            );
        }
        let memory = r["Properties"]["MemorySize"]
            .as_u64()
            .unwrap_or(default_memory);
        // Argon2id: 19 MiB per hash and CPU, which Lambda scales with memory.
        if matches!(f.binary.as_str(), "http_login" | "http_signup") {
            assert!(memory >= 1024, "{} hashes passwords: {memory} MB", f.binary);
        } else {
            assert!(memory >= 128, "{}", f.binary);
        }
    }
    let sweep = resource(&function("sweep").logical);
    let events = sweep["Properties"]["Events"]
        .as_object()
        .expect("sweep events");
    assert_eq!(events.len(), 1);
    let event = events.values().next().expect("one event");
    assert_eq!(event["Type"], "Schedule");
    assert_eq!(event["Properties"]["Schedule"], "rate(1 minute)");
}

#[test]
fn cargo_lambda_is_told_the_feature_the_binaries_need() {
    // `sam build` runs `cargo lambda build --bin NAME` and cannot pass
    // `--features`; cargo-lambda reads them from the package metadata.
    let path = format!("{}/functions/Cargo.toml", root());
    let manifest = std::fs::read_to_string(&path).expect("functions/Cargo.toml");
    let section = manifest
        .split("[package.metadata.lambda.build]")
        .nth(1)
        .expect("a [package.metadata.lambda.build] section");
    let features = section
        .lines()
        .find(|l| l.trim_start().starts_with("features"))
        .expect("features = [...]");
    assert!(features.contains("\"lambda\""), "{features}");
}

#[test]
fn every_function_gets_every_variable_it_reads_and_no_other() {
    let wanted: BTreeSet<&str> = VARIABLES
        .iter()
        .filter(|(_, scope)| *scope == Scope::Lambda)
        .map(|(name, _)| *name)
        .collect();
    let eval = Eval::new(&[]);
    for f in functions() {
        let env = eval.environment(&f.logical);
        let set: BTreeSet<&str> = env
            .keys()
            .map(String::as_str)
            .filter(|k| k.starts_with("ROLLCALL_"))
            .collect();
        let missing: Vec<_> = wanted.difference(&set).collect();
        let unknown: Vec<_> = set.difference(&wanted).collect();
        assert!(missing.is_empty(), "{}: not set: {missing:?}", f.logical);
        assert!(
            unknown.is_empty(),
            "{}: set but not read by the functions: {unknown:?}",
            f.logical
        );
    }
}

/// The functions' `Config` from the template's environment under `eval`.
fn config_of(eval: &Eval, binary: &str) -> Config {
    let env = eval.environment(&function(binary).logical);
    Config::from_lookup(|k| env.get(k).cloned())
        .unwrap_or_else(|e| panic!("{binary}: the template's environment is refused: {e}"))
}

#[test]
fn the_environment_is_a_valid_config_with_dynamodb_and_with_redis() {
    let api = format!("WebSocketApi.execute-api.{REGION}.amazonaws.com/prod");
    let page = format!("https://HttpApi.execute-api.{REGION}.amazonaws.com");
    let dynamo = Eval::new(&[]);
    for f in functions() {
        let c = config_of(&dynamo, &f.binary);
        assert_eq!(c.store, StoreChoice::DynamoDb);
        assert_eq!(c.tables.users, "UsersTable");
        assert_eq!(c.tables.sessions, "SessionsTable");
        assert_eq!(c.tables.connections, "ConnectionsTable");
        assert_eq!(c.apigw_endpoint, Some(format!("https://{api}")));
        assert_eq!(c.ws_url, Some(format!("wss://{api}")));
        assert_eq!(c.allowed_origins, {
            let mut p = rollcall::security::origin::OriginPolicy::default();
            p.allow(&page).expect("origin");
            p
        });
        assert!(c.cookie_secure, "pages are served over HTTPS");
        // A lost ping must not expire a live socket's lease.
        assert!(
            c.lease >= c.client_ping_interval * 2,
            "lease {:?} vs client ping {:?}",
            c.lease,
            c.client_ping_interval
        );
        assert_eq!(c.hash_concurrency, 1, "one event at a time per instance");
        assert!(
            resource(&f.logical)["Properties"]
                .get("VpcConfig")
                .is_none()
        );
        let globals_vpc = dynamo.value(&template()["Globals"]["Function"]["VpcConfig"]);
        assert_eq!(globals_vpc, None, "no VPC with DynamoDB");
    }
    let with_domain = Eval::new(&[("PageOrigin", "https://rollcall.example.com")]);
    let c = config_of(&with_domain, "ws_connect");
    let mut both = rollcall::security::origin::OriginPolicy::default();
    both.allow("https://rollcall.example.com").expect("origin");
    both.allow(&page).expect("origin");
    assert_eq!(c.allowed_origins, both);

    let url = "rediss://redis.internal:6379";
    let redis = Eval::new(&[
        ("Store", url),
        ("SubnetIds", "subnet-1,subnet-2"),
        ("SecurityGroupIds", "sg-1"),
    ]);
    for f in functions() {
        let c = config_of(&redis, &f.binary);
        assert_eq!(c.store, StoreChoice::Redis(url.into()));
        assert_eq!(c.redis_prefix, "rollcall:");
    }
    assert_eq!(
        redis.value(&template()["Globals"]["Function"]["VpcConfig"]),
        Some(json!({ "SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"] }))
    );
    for table in ["UsersTable", "SessionsTable", "ConnectionsTable"] {
        assert!(dynamo.exists(table) && !redis.exists(table), "{table}");
    }
    for f in functions() {
        let statements = redis.statements(&f.role);
        assert!(
            statements
                .iter()
                .flat_map(|s| &s.actions)
                .all(|a| !a.starts_with("dynamodb:")),
            "{}: DynamoDB permissions without DynamoDB",
            f.binary
        );
        let vpc = statements
            .iter()
            .any(|s| s.actions.contains(&"ec2:CreateNetworkInterface".to_owned()));
        assert!(
            vpc,
            "{}: in a VPC it needs its network interfaces",
            f.binary
        );
        let without_subnets = Eval::new(&[("Store", url)]);
        assert!(
            !without_subnets
                .statements(&f.role)
                .iter()
                .any(|s| s.actions.contains(&"ec2:CreateNetworkInterface".to_owned())),
            "{}",
            f.binary
        );
    }
}

/// `(name, type)` of a table's attribute definitions, sorted.
fn attribute_definitions(v: &Value) -> BTreeSet<(String, String)> {
    v.as_array()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().expect("name").to_owned(),
                a["AttributeType"].as_str().expect("type").to_owned(),
            )
        })
        .collect()
}

/// A key schema as `[(name, HASH|RANGE)]`.
fn key_schema(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .expect("KeySchema")
        .iter()
        .map(|k| {
            (
                k["AttributeName"].as_str().expect("name").to_owned(),
                k["KeyType"].as_str().expect("type").to_owned(),
            )
        })
        .collect()
}

/// What the template declares for one table: attributes, key, indexes
/// (name → key, projection) and TTL attribute.
#[derive(Debug, PartialEq, Eq)]
struct TableShape {
    attributes: BTreeSet<(String, String)>,
    key: Vec<(String, String)>,
    indexes: BTreeMap<String, (Vec<(String, String)>, String)>,
    ttl: Option<String>,
}

fn template_table(logical: &str) -> TableShape {
    let r = resource(logical);
    assert_eq!(r["Condition"], "UseDynamoDb", "{logical}");
    let p = &r["Properties"];
    assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{logical}");
    assert_eq!(
        p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
        "{logical}"
    );
    assert_eq!(p["SSESpecification"]["SSEEnabled"], true, "{logical}");
    assert_eq!(
        p["DeletionProtectionEnabled"],
        json!({ "Fn::If": ["ProtectTables", true, false] }),
        "{logical}"
    );
    assert!(
        p.get("TableName").is_none(),
        "{logical}: names are generated"
    );
    let indexes = p["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            (
                i["IndexName"].as_str().expect("IndexName").to_owned(),
                (
                    key_schema(&i["KeySchema"]),
                    i["Projection"]["ProjectionType"]
                        .as_str()
                        .expect("ProjectionType")
                        .to_owned(),
                ),
            )
        })
        .collect();
    let ttl = &p["TimeToLiveSpecification"];
    TableShape {
        attributes: attribute_definitions(&p["AttributeDefinitions"]),
        key: key_schema(&p["KeySchema"]),
        indexes,
        ttl: (ttl["Enabled"] == true)
            .then(|| ttl["AttributeName"].as_str().expect("ttl").to_owned()),
    }
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[test]
fn tables_are_the_schema_in_schema_rs() {
    use schema::*;
    let keys_only = |hash: &str, range: &str| {
        (
            vec![pair(hash, "HASH"), pair(range, "RANGE")],
            "KEYS_ONLY".to_owned(),
        )
    };
    assert_eq!(
        template_table("UsersTable"),
        TableShape {
            attributes: [pair(USER_NAME, "S")].into(),
            key: vec![pair(USER_NAME, "HASH")],
            indexes: BTreeMap::new(),
            ttl: None,
        }
    );
    assert_eq!(
        template_table("SessionsTable"),
        TableShape {
            attributes: [pair(SESSION_KEY, "S")].into(),
            key: vec![pair(SESSION_KEY, "HASH")],
            indexes: BTreeMap::new(),
            ttl: Some(TTL.to_owned()),
        }
    );
    assert_eq!(
        template_table("ConnectionsTable"),
        TableShape {
            attributes: [
                pair(CONN_ID, "S"),
                pair(CONN_SHARD, "S"),
                pair(CONN_SESSION, "S"),
                pair(CONN_LEASE_UNTIL, "N"),
            ]
            .into(),
            key: vec![pair(CONN_ID, "HASH")],
            indexes: [
                (INDEX_BY_GROUP.to_owned(), keys_only(CONN_SHARD, CONN_ID)),
                (
                    INDEX_BY_SESSION.to_owned(),
                    keys_only(CONN_SESSION, CONN_ID)
                ),
                (
                    INDEX_BY_LEASE.to_owned(),
                    keys_only(CONN_SHARD, CONN_LEASE_UNTIL)
                ),
            ]
            .into(),
            ttl: Some(TTL.to_owned()),
        }
    );
}

/// The shape DynamoDB reports for a table the store created.
async fn described(client: &aws_sdk_dynamodb::Client, name: &str) -> TableShape {
    let t = client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .expect("DescribeTable")
        .table
        .expect("table");
    let attributes = t
        .attribute_definitions()
        .iter()
        .map(|a| pair(a.attribute_name(), a.attribute_type().as_str()))
        .collect();
    let keys = |k: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        k.iter()
            .map(|e| pair(e.attribute_name(), e.key_type().as_str()))
            .collect::<Vec<_>>()
    };
    let indexes = t
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            (
                i.index_name().expect("index name").to_owned(),
                (
                    keys(i.key_schema()),
                    i.projection()
                        .and_then(|p| p.projection_type())
                        .expect("projection")
                        .as_str()
                        .to_owned(),
                ),
            )
        })
        .collect();
    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .expect("DescribeTimeToLive")
        .time_to_live_description
        .filter(|d| {
            matches!(
                d.time_to_live_status(),
                Some(
                    aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled
                        | aws_sdk_dynamodb::types::TimeToLiveStatus::Enabling
                )
            )
        })
        .and_then(|d| d.attribute_name);
    TableShape {
        attributes,
        key: keys(t.key_schema()),
        indexes,
        ttl,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_are_what_the_store_itself_creates() {
    // The store's own CreateTable requests (schema::create_tables), as a
    // DynamoDB emulator reports the result, against the template.
    let Some(store) = rollcall_tests::moto::dynamo_store().await else {
        return;
    };
    let tables = store.tables().clone();
    for (logical, name) in [
        ("UsersTable", &tables.users),
        ("SessionsTable", &tables.sessions),
        ("ConnectionsTable", &tables.connections),
    ] {
        assert_eq!(
            described(store.client(), name).await,
            template_table(logical),
            "{logical}"
        );
    }
}

#[test]
fn routes_reach_the_functions_that_serve_them() {
    let ws: BTreeMap<String, String> = routes("WebSocketApi").into_iter().collect();
    assert_eq!(
        ws,
        [
            pair("$connect", "ws_connect"),
            pair("$disconnect", "ws_disconnect"),
            pair("$default", "ws_default"),
        ]
        .into()
    );
    let api = &resource("WebSocketApi")["Properties"];
    assert_eq!(api["ProtocolType"], "WEBSOCKET");
    assert_eq!(api["RouteSelectionExpression"], "$request.body.action");
    assert_eq!(resource("HttpApi")["Properties"]["ProtocolType"], "HTTP");

    // Every path the shared router answers, as the README lists them, and
    // some it refuses (404/405 from http_pages).
    let expected = [
        ("GET", "/log_in/", "http_login"),
        ("GET", "/log_in", "http_login"),
        ("POST", "/log_in/", "http_login"),
        ("POST", "/api/log_in", "http_login"),
        ("GET", "/sign_up/", "http_signup"),
        ("GET", "/sign_up", "http_signup"),
        ("POST", "/sign_up/", "http_signup"),
        ("POST", "/api/sign_up", "http_signup"),
        ("POST", "/log_out/", "http_logout"),
        ("POST", "/api/log_out", "http_logout"),
        ("GET", "/", "http_pages"),
        ("HEAD", "/", "http_pages"),
        ("GET", "/api/users", "http_pages"),
        ("GET", "/healthz", "http_pages"),
        ("GET", "/static/rollcall.js", "http_pages"),
        ("GET", "/static/rollcall.css", "http_pages"),
        ("GET", "/log_out/", "http_pages"),
        ("DELETE", "/api/users", "http_pages"),
        ("GET", "/nowhere", "http_pages"),
    ];
    for (method, path, binary) in expected {
        assert_eq!(http_function_for(method, path), binary, "{method} {path}");
    }
    for (key, _) in routes("HttpApi") {
        // HTTP API route keys cannot end in '/' (except the root).
        assert!(key == "GET /" || !key.ends_with('/'), "{key}");
    }

    // Each integrated function may be invoked by API Gateway, for its API only.
    let eval = Eval::new(&[]);
    for (api, binary) in routes("WebSocketApi")
        .into_iter()
        .map(|(_, b)| ("WebSocketApi", b))
        .chain(routes("HttpApi").into_iter().map(|(_, b)| ("HttpApi", b)))
    {
        let logical = function(&binary).logical;
        let permitted = of_type("AWS::Lambda::Permission").into_iter().any(|p| {
            let p = eval
                .value(&resource(p)["Properties"])
                .expect("permission properties");
            p["FunctionName"] == logical.as_str()
                && p["Principal"] == "apigateway.amazonaws.com"
                && p["SourceArn"]
                    == format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/*").as_str()
        });
        assert!(permitted, "{binary} may not be invoked by {api}");
    }
}

#[test]
fn apis_are_throttled_and_log_access_and_functions_log_with_retention() {
    let eval = Eval::new(&[]);
    for stage in of_type("AWS::ApiGatewayV2::Stage") {
        let p = eval.value(&resource(stage)["Properties"]).expect("stage");
        let d = &p["DefaultRouteSettings"];
        assert!(
            d["ThrottlingBurstLimit"].is_string() && d["ThrottlingRateLimit"].is_string(),
            "{stage}: throttling"
        );
        let logs = p["AccessLogSettings"]["DestinationArn"]
            .as_str()
            .expect("access logs");
        assert!(logs.starts_with("arn:aws:logs:"), "{stage}: {logs}");
        assert!(
            p["AccessLogSettings"]["Format"]
                .as_str()
                .is_some_and(|f| f.contains("$context.requestId")),
            "{stage}"
        );
    }
    // Log-in and sign-up (an Argon2id hash each) are throttled harder.
    let http = eval
        .value(&resource("HttpStage")["Properties"])
        .expect("stage");
    for route in [
        "POST /log_in",
        "POST /api/log_in",
        "POST /sign_up",
        "POST /api/sign_up",
    ] {
        assert_eq!(
            http["RouteSettings"][route]["ThrottlingRateLimit"], "10",
            "{route}"
        );
        assert!(
            routes("HttpApi").iter().any(|(k, _)| k == route),
            "{route} is a route"
        );
    }
    for group in of_type("AWS::Logs::LogGroup") {
        assert_eq!(
            resource(group)["Properties"]["RetentionInDays"],
            json!({ "Ref": "LogRetentionDays" }),
            "{group}"
        );
    }
    for f in functions() {
        let logging = &resource(&f.logical)["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"], "JSON", "{}", f.binary);
        let group = target(&logging["LogGroup"]);
        assert_eq!(resource(group)["Type"], "AWS::Logs::LogGroup");
        // Its role may write there, and nowhere else.
        let logs: Vec<Statement> = eval
            .statements(&f.role)
            .into_iter()
            .filter(|s| s.actions.iter().any(|a| a.starts_with("logs:")))
            .collect();
        let own = eval.attribute(group, "Arn");
        assert_eq!(logs.len(), 1, "{}", f.binary);
        assert_eq!(logs[0].resources, vec![own], "{}", f.binary);
        assert_eq!(
            logs[0].actions,
            vec!["logs:CreateLogStream", "logs:PutLogEvents"],
            "{}",
            f.binary
        );
    }
}

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
