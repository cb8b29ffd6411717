//! [`PresenceStream`]: the presence table's stream, read back to count the
//! index writes of each presence write exactly.
//!
//! Which of the presence table's four indexes a write touches depends on
//! the item before it (a `REMOVE pending` of an item with no `pending`
//! writes no index entry), so it is not the request's to tell. The stream
//! carries every change with its old and new images, and DynamoDB's rule
//! for a global secondary index is a function of those two: an entry
//! appears or disappears (1 write), its key changes (2: delete and put), a
//! projected attribute changes (1), or nothing it holds changed (0).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::ProjectionType;
use aws_sdk_dynamodbstreams::Client as Streams;
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};

/// An item image as the stream gives it.
pub(super) type Image = HashMap<String, AttributeValue>;

/// One change of a presence item: its images before and after.
#[derive(Debug, Clone)]
pub(super) struct Change {
    pub(super) old: Option<Image>,
    pub(super) new: Option<Image>,
}

impl Change {
    /// Whose presence item it is.
    pub(super) fn username(&self) -> Option<&str> {
        self.new
            .as_ref()
            .or(self.old.as_ref())
            .and_then(|i| i.get("username"))
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }
}

/// One global secondary index as DynamoDB describes it.
#[derive(Debug, Clone)]
struct Index {
    /// Its key attributes (hash, then range).
    keys: Vec<String>,
    /// The attributes an entry holds besides its keys and the table's key;
    /// `None` for `ALL`.
    projected: Option<Vec<String>>,
}

/// The presence table's stream and indexes.
pub(super) struct PresenceStream {
    client: Streams,
    arn: String,
    table_key: Vec<String>,
    indexes: Vec<Index>,
}

/// The sequence numbers read so far, to measure what came after.
#[derive(Debug, Clone, Default)]
pub(super) struct Seen(BTreeSet<String>);

impl PresenceStream {
    /// The stream and index definitions of `table`, as DynamoDB reports them.
    pub(super) async fn new(
        dynamo: &aws_sdk_dynamodb::Client,
        client: Streams,
        table: &str,
    ) -> Self {
        let t = dynamo
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("DescribeTable")
            .table
            .expect("table");
        let arn = t
            .latest_stream_arn()
            .expect("the presence table has a stream")
            .to_owned();
        let names = |k: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<String> {
            k.iter().map(|e| e.attribute_name().to_owned()).collect()
        };
        let indexes = t
            .global_secondary_indexes()
            .iter()
            .map(|i| {
                let p = i.projection().expect("projection");
                Index {
                    keys: names(i.key_schema()),
                    projected: match p.projection_type() {
                        Some(ProjectionType::All) => None,
                        _ => Some(p.non_key_attributes().to_vec()),
                    },
                }
            })
            .collect();
        Self {
            client,
            arn,
            table_key: names(t.key_schema()),
            indexes,
        }
    }

    /// Every record of every shard, from the start, with its sequence number.
    async fn records(&self) -> Vec<(String, Change)> {
        let desc = self
            .client
            .describe_stream()
            .stream_arn(&self.arn)
            .send()
            .await
            .expect("DescribeStream");
        let mut out = Vec::new();
        for shard in desc
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
        {
            let id = shard.shard_id().expect("shard id");
            let mut it = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.arn)
                .shard_id(id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("GetShardIterator")
                .shard_iterator;
            while let Some(iterator) = it.take() {
                let got = self
                    .client
                    .get_records()
                    .shard_iterator(iterator)
                    .send()
                    .await
                    .expect("GetRecords");
                if got.records().is_empty() {
                    break;
                }
                for r in got.records() {
                    let s = r.dynamodb().expect("stream record");
                    out.push((
                        s.sequence_number().expect("sequence number").to_owned(),
                        Change {
                            old: s.old_image.clone(),
                            new: s.new_image.clone(),
                        },
                    ));
                }
                it = got.next_shard_iterator;
            }
        }
        out
    }

    /// What the stream holds now.
    pub(super) async fn mark(&self) -> Seen {
        Seen(self.records().await.into_iter().map(|(s, _)| s).collect())
    }

    /// The changes after `seen`.
    pub(super) async fn since(&self, seen: &Seen) -> Vec<Change> {
        let changes: Vec<Change> = self
            .records()
            .await
            .into_iter()
            .filter(|(s, _)| !seen.0.contains(s))
            .map(|(_, c)| c)
            .collect();
        self.one_per_write(changes)
    }

    /// `changes` without moto's extra record: moto writes a transaction's
    /// Update that creates an item as two inserts (the bare key, then the
    /// item, neither with an old image), where DynamoDB writes one.
    fn one_per_write(&self, changes: Vec<Change>) -> Vec<Change> {
        let bare = |c: &Change| {
            c.old.is_none()
                && c.new
                    .as_ref()
                    .is_some_and(|n| n.keys().all(|k| self.table_key.contains(k)))
        };
        let key = |i: &Option<Image>| -> Vec<Option<AttributeValue>> {
            self.table_key
                .iter()
                .map(|k| i.as_ref().and_then(|i| i.get(k)).cloned())
                .collect()
        };
        let mut out: Vec<Change> = Vec::with_capacity(changes.len());
        for c in changes {
            if c.old.is_none()
                && out
                    .last()
                    .is_some_and(|prev| bare(prev) && key(&prev.new) == key(&c.new))
            {
                out.pop();
            }
            out.push(c);
        }
        out
    }

    /// The index entries `change` writes, over every index (each entry
    /// is under 1 KB: one write unit each).
    pub(super) fn index_writes(&self, change: &Change) -> u32 {
        self.indexes
            .iter()
            .map(|i| entry_writes(i, &self.table_key, change))
            .sum()
    }
}

/// The writes of `change` to `index` (of a table keyed by `table_key`).
fn entry_writes(index: &Index, table_key: &[String], change: &Change) -> u32 {
    // An image's entry in this (sparse) index, if it has one: its key,
    // and every attribute it holds.
    type Entry = (Vec<AttributeValue>, Vec<(String, AttributeValue)>);
    let entry = |image: &Option<Image>| -> Option<Entry> {
        let image = image.as_ref()?;
        let key: Vec<AttributeValue> = index
            .keys
            .iter()
            .map(|k| image.get(k).cloned())
            .collect::<Option<_>>()?;
        let mut held: Vec<(String, AttributeValue)> = image
            .iter()
            .filter(|(a, _)| match &index.projected {
                None => true,
                Some(extra) => index.keys.contains(a) || table_key.contains(a) || extra.contains(a),
            })
            .map(|(a, v)| (a.clone(), v.clone()))
            .collect();
        held.sort_by(|x, y| x.0.cmp(&y.0));
        Some((key, held))
    };
    match (entry(&change.old), entry(&change.new)) {
        (None, None) => 0,
        (Some(_), None) | (None, Some(_)) => 1,
        (Some((old_key, _)), Some((new_key, _))) if old_key != new_key => 2,
        (Some((_, old)), Some((_, new))) => u32::from(old != new),
    }
}

fn image(pairs: &[(&str, &str)]) -> Option<Image> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttributeValue::S((*v).to_owned())))
            .collect(),
    )
}

fn writes(index: &Index, old: Option<Image>, new: Option<Image>) -> u32 {
    entry_writes(index, &["username".to_owned()], &Change { old, new })
}

#[test]
fn index_writes_follow_dynamodbs_rule_for_a_sparse_index() {
    let online = Index {
        keys: vec!["online".into(), "username".into()],
        projected: Some(vec!["seq".into()]),
    };
    let offline = image(&[("username", "a"), ("seq", "2"), ("conns", "0")]);
    let on = image(&[
        ("username", "a"),
        ("seq", "3"),
        ("conns", "1"),
        ("online", "online#1"),
    ]);
    let two_tabs = image(&[
        ("username", "a"),
        ("seq", "3"),
        ("conns", "2"),
        ("online", "online#1"),
    ]);
    let moved = image(&[
        ("username", "a"),
        ("seq", "3"),
        ("conns", "2"),
        ("online", "online#2"),
    ]);
    assert_eq!(
        writes(&online, offline.clone(), offline.clone()),
        0,
        "not in it"
    );
    assert_eq!(writes(&online, offline.clone(), on.clone()), 1, "appears");
    assert_eq!(
        writes(&online, on.clone(), offline.clone()),
        1,
        "disappears"
    );
    assert_eq!(
        writes(&online, on.clone(), two_tabs.clone()),
        0,
        "conns is not projected"
    );
    assert_eq!(writes(&online, two_tabs.clone(), moved), 2, "key changed");
    let by_seq = Index {
        keys: vec!["dir".into(), "username".into()],
        projected: Some(vec!["seq".into()]),
    };
    let dir = |seq: &str| image(&[("username", "a"), ("dir", "users"), ("seq", seq)]);
    assert_eq!(
        writes(&by_seq, dir("2"), dir("3")),
        1,
        "projected attribute changed"
    );
    assert_eq!(writes(&by_seq, None, dir("0")), 1, "a new item");
    let all = Index {
        keys: vec!["dir".into(), "username".into()],
        projected: None,
    };
    let with = |c: &str| image(&[("username", "a"), ("dir", "users"), ("conns", c)]);
    assert_eq!(
        writes(&all, with("1"), with("2")),
        1,
        "ALL holds everything"
    );
}
