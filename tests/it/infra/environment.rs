//! The functions' environment: every variable they read and no other, and
//! a `Config` the code accepts, with DynamoDB (by default) and with Redis
//! (in a VPC, without any DynamoDB table or permission).

use std::collections::BTreeSet;

use rollcall::config::{Config, Scope, StoreChoice, VARIABLES};
use serde_json::json;

use super::eval::{Eval, REGION, queue_url};
use super::model::{function, functions, resource, template};

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
        assert_eq!(c.tables.presence, "PresenceTable");
        assert_eq!(c.tables.sessions, "SessionsTable");
        assert_eq!(c.tables.connections, "ConnectionsTable");
        assert_eq!(c.apigw_endpoint, Some(format!("https://{api}")));
        assert_eq!(c.ws_url, Some(format!("wss://{api}")));
        assert_eq!(c.allowed_origins, {
            let mut p = rollcall::security::origin::OriginPolicy::default();
            p.allow(&page).expect("origin");
            p
        });
        assert_eq!(
            c.push_queue_url,
            Some(queue_url(&dynamo.queue_name("PushQueue"))),
            "{}",
            f.binary
        );
        assert_eq!(
            c.settle_queue_url,
            Some(queue_url(&dynamo.queue_name("SettleQueue"))),
            "{}",
            f.binary
        );
        assert!(c.cookie_secure, "pages are served over HTTPS");
        // Every other ping renews: a late one must not expire a live lease.
        assert!(
            c.lease >= c.client_ping_interval * 3,
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
        // Without a stream the handlers queue their events: same queues.
        assert_eq!(
            c.push_queue_url,
            Some(queue_url(&redis.queue_name("PushQueue")))
        );
        assert!(c.settle_queue_url.is_some(), "{}", f.binary);
    }
    assert_eq!(
        redis.value(&template()["Globals"]["Function"]["VpcConfig"]),
        Some(json!({ "SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"] }))
    );
    for table in super::tables::TABLES {
        assert!(dynamo.exists(table) && !redis.exists(table), "{table}");
    }
    for f in functions() {
        let env = redis.environment(&f.logical);
        for v in [
            "ROLLCALL_USERS_TABLE",
            "ROLLCALL_PRESENCE_TABLE",
            "ROLLCALL_SESSIONS_TABLE",
            "ROLLCALL_CONNECTIONS_TABLE",
        ] {
            assert_eq!(env[v], "", "{}: {v} without DynamoDB", f.logical);
        }
        assert_eq!(config_of(&redis, &f.binary).event_log_max, 100_000);
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
