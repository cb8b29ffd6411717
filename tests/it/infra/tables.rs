//! The DynamoDB tables: the template's are the schema in `schema.rs`, and
//! what the store itself creates (on moto) is the template's.

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
