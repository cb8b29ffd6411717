//! The DynamoDB tables: the template's are the schema in `schema.rs`, and
//! what the store itself creates (on moto) is the template's — attributes,
//! keys, indexes with their projections, streams and TTL — and the
//! template has no other table.

use std::collections::{BTreeMap, BTreeSet};

use rollcall::store::dynamodb::schema;
use serde_json::{Value, json};

use super::model::resource;
use super::pair;

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

/// An index: its key and projection (type, and the non-key attributes an
/// `INCLUDE` adds, sorted).
type IndexShape = (Vec<(String, String)>, String, Vec<String>);

/// What the template declares for one table: attributes, key, indexes
/// (name → [`IndexShape`]), stream view type and TTL attribute.
#[derive(Debug, PartialEq, Eq)]
struct TableShape {
    attributes: BTreeSet<(String, String)>,
    key: Vec<(String, String)>,
    indexes: BTreeMap<String, IndexShape>,
    stream: Option<String>,
    ttl: Option<String>,
}

/// The non-key attributes of a projection, sorted.
fn non_key(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a.as_str().expect("NonKeyAttributes").to_owned())
        .collect();
    names.sort();
    names
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
                    non_key(&i["Projection"]["NonKeyAttributes"]),
                ),
            )
        })
        .collect();
    let ttl = &p["TimeToLiveSpecification"];
    TableShape {
        attributes: attribute_definitions(&p["AttributeDefinitions"]),
        key: key_schema(&p["KeySchema"]),
        indexes,
        stream: p["StreamSpecification"]["StreamViewType"]
            .as_str()
            .map(str::to_owned),
        ttl: (ttl["Enabled"] == true)
            .then(|| ttl["AttributeName"].as_str().expect("ttl").to_owned()),
    }
}

/// The template's tables, by logical id.
pub(super) const TABLES: [&str; 4] = [
    "UsersTable",
    "PresenceTable",
    "SessionsTable",
    "ConnectionsTable",
];

#[test]
fn the_template_has_exactly_the_stores_tables() {
    let eval = super::Eval::new(&[]);
    let tables: BTreeSet<&str> = super::model::of_type("AWS::DynamoDB::Table")
        .into_iter()
        .filter(|t| eval.exists(t))
        .collect();
    assert_eq!(tables, TABLES.into());
}

#[test]
fn tables_are_the_schema_in_schema_rs() {
    use schema::*;
    let keys_only = |hash: &str, range: &str| {
        (
            vec![pair(hash, "HASH"), pair(range, "RANGE")],
            "KEYS_ONLY".to_owned(),
            Vec::new(),
        )
    };
    let including = |hash: &str, range: &str, extra: &[&str]| {
        (
            vec![pair(hash, "HASH"), pair(range, "RANGE")],
            "INCLUDE".to_owned(),
            extra.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        template_table("UsersTable"),
        TableShape {
            attributes: [pair(USER_NAME, "S")].into(),
            key: vec![pair(USER_NAME, "HASH")],
            indexes: BTreeMap::new(),
            stream: None,
            ttl: None,
        }
    );
    assert_eq!(
        template_table("PresenceTable"),
        TableShape {
            attributes: [
                pair(PRESENCE_NAME, "S"),
                pair(PRESENCE_DIR, "S"),
                pair(PRESENCE_CREATED_AT, "N"),
                pair(PRESENCE_ONLINE, "S"),
                pair(PRESENCE_PENDING, "S"),
                pair(PRESENCE_OFFLINE_AT, "N"),
            ]
            .into(),
            key: vec![pair(PRESENCE_NAME, "HASH")],
            indexes: [
                (
                    INDEX_BY_NAME.to_owned(),
                    including(
                        PRESENCE_DIR,
                        PRESENCE_NAME,
                        &[PRESENCE_LAST_SEEN, PRESENCE_SEQ]
                    )
                ),
                (
                    INDEX_BY_CREATED.to_owned(),
                    keys_only(PRESENCE_DIR, PRESENCE_CREATED_AT)
                ),
                (
                    INDEX_BY_ONLINE.to_owned(),
                    including(PRESENCE_ONLINE, PRESENCE_NAME, &[PRESENCE_SEQ])
                ),
                (
                    INDEX_BY_PENDING.to_owned(),
                    keys_only(PRESENCE_PENDING, PRESENCE_OFFLINE_AT)
                ),
            ]
            .into(),
            // The event log: a transition is a change of `seq`, told apart
            // only with the old image.
            stream: Some("NEW_AND_OLD_IMAGES".to_owned()),
            ttl: None,
        }
    );
    assert_eq!(
        template_table("SessionsTable"),
        TableShape {
            attributes: [pair(SESSION_KEY, "S")].into(),
            key: vec![pair(SESSION_KEY, "HASH")],
            indexes: BTreeMap::new(),
            stream: None,
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
            stream: None,
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
                    {
                        let mut names: Vec<String> = i
                            .projection()
                            .map(|p| p.non_key_attributes().to_vec())
                            .unwrap_or_default();
                        names.sort();
                        names
                    },
                ),
            )
        })
        .collect();
    let stream = t
        .stream_specification()
        .filter(|s| s.stream_enabled())
        .and_then(|s| s.stream_view_type())
        .map(|v| v.as_str().to_owned());
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
        stream,
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
    let created = [
        ("UsersTable", &tables.users),
        ("PresenceTable", &tables.presence),
        ("SessionsTable", &tables.sessions),
        ("ConnectionsTable", &tables.connections),
    ];
    assert_eq!(created.map(|(logical, _)| logical), TABLES);
    // Every table the store made (its names share a unique suffix) is one
    // of these: a fifth would be missing from the template.
    let suffix = tables
        .users
        .rsplit_once("-users")
        .map(|(_, s)| s.to_owned())
        .expect("unique table names");
    let mut made = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = store
            .client()
            .list_tables()
            .set_exclusive_start_table_name(start.take())
            .send()
            .await
            .expect("ListTables");
        made.extend(
            out.table_names()
                .iter()
                .filter(|n| n.ends_with(&suffix))
                .cloned(),
        );
        match out.last_evaluated_table_name() {
            Some(last) => start = Some(last.to_owned()),
            None => break,
        }
    }
    made.sort();
    let mut expected: Vec<String> = created.iter().map(|(_, n)| (*n).clone()).collect();
    expected.sort();
    assert_eq!(made, expected, "the tables create_tables makes");
    for (logical, name) in created {
        assert_eq!(
            described(store.client(), name).await,
            template_table(logical),
            "{logical}"
        );
    }
}
