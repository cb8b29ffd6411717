//! The event log on DynamoDB: the presence table's stream (new and old
//! images), read through DynamoDB Streams (feature `dynamodb-log`).
//!
//! Records are turned into the records of a Lambda DynamoDB event — the
//! shape an event source mapping hands the `fanout` function — and log
//! entries are read off those ([`super::records`]), so the local server's
//! reader and the cloud's function read the stream the same way.
//!
//! A cursor is the JSON of every shard being followed with its next
//! iterator and the last sequence number read (to make a new iterator if
//! the old one expired). A shard that ends hands over to its children,
//! found with `DescribeStream`, so a user's records stay in order. A cursor
//! of another stream, or records trimmed away (older than 24 hours), is a
//! [`LogRead::Gap`]. DynamoDB Streams has no blocking read: an empty read
//! polls every [`POLL`] until the wait is up.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodbstreams::Client as Streams;
use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
use serde::{Deserialize, Serialize};

use super::DynamoStore;
use super::attrs::sdk;
use super::records::stream_entries;
use crate::store::{LogCursor, LogRead, StoreError, StoreResult};
use serde_json::{Map, Value, json};

/// How often an idle reader asks again (DynamoDB allows 5 reads a second
/// per shard).
const POLL: Duration = Duration::from_millis(250);

/// An attribute as Lambda's event JSON writes it (`{"S": …}`, `{"N": …}`…).
fn attribute_json(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::L(v) => json!({ "L": v.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": image_json(m) }),
        _ => Value::Null,
    }
}

fn image_json(item: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), attribute_json(v)))
            .collect::<Map<String, Value>>(),
    )
}

/// A stream record as the record of a Lambda DynamoDB event.
fn lambda_record(r: &aws_sdk_dynamodbstreams::types::Record, arn: &str) -> Value {
    let mut change = Map::new();
    if let Some(d) = r.dynamodb() {
        if let Some(t) = d.approximate_creation_date_time() {
            change.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
        }
        for (name, image) in [
            ("Keys", d.keys()),
            ("NewImage", d.new_image()),
            ("OldImage", d.old_image()),
        ] {
            if let Some(i) = image {
                change.insert(name.into(), image_json(i));
            }
        }
        if let Some(seq) = d.sequence_number() {
            change.insert("SequenceNumber".into(), json!(seq));
        }
        if let Some(n) = d.size_bytes() {
            change.insert("SizeBytes".into(), json!(n));
        }
        change.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
    }
    json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": r.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region().unwrap_or("us-east-1"),
        "dynamodb": Value::Object(change),
        "eventSourceARN": arn,
    })
}

/// Where a reader is in one shard.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct ShardPosition {
    /// The shard.
    id: String,
    /// The next iterator, if one is held.
    it: Option<String>,
    /// The last sequence number read, if any.
    seq: Option<String>,
}

/// A cursor: the stream and the shards being followed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Position {
    arn: String,
    shards: Vec<ShardPosition>,
}

impl Position {
    fn parse(c: &LogCursor) -> Option<Self> {
        serde_json::from_str(&c.0).ok()
    }

    fn cursor(&self) -> LogCursor {
        LogCursor(serde_json::to_string(self).unwrap_or_default())
    }
}

/// Why a read of the stream could not go on from a cursor.
enum Lost {
    Gap,
    Failed(StoreError),
}

impl From<StoreError> for Lost {
    fn from(e: StoreError) -> Self {
        Self::Failed(e)
    }
}

impl DynamoStore {
    fn streams(&self) -> StoreResult<&Streams> {
        self.streams.as_ref().ok_or_else(|| {
            StoreError::backend(super::attrs::corrupt(
                &self.tables.presence,
                "this build cannot read the presence stream (feature dynamodb-log)",
            ))
        })
    }

    /// The presence table's stream.
    async fn stream_arn(&self) -> StoreResult<String> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.tables.presence)
            .send()
            .await
            .map_err(|e| sdk("DescribeTable", e))?;
        out.table()
            .and_then(|t| t.latest_stream_arn())
            .map(str::to_owned)
            .ok_or_else(|| {
                super::attrs::corrupt(&self.tables.presence, "no stream on the presence table")
            })
    }

    /// A cursor at the end of the stream now: every open shard after its
    /// last record (read through once).
    pub(super) async fn stream_end(&self) -> StoreResult<LogCursor> {
        let streams = self.streams()?;
        let arn = self.stream_arn().await?;
        let desc = streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .map_err(|e| sdk("DescribeStream", e))?;
        let mut shards = Vec::new();
        for shard in desc
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default()
        {
            let open = shard
                .sequence_number_range()
                .is_none_or(|r| r.ending_sequence_number().is_none());
            let Some(id) = shard.shard_id().filter(|_| open) else {
                continue;
            };
            // The shard's last record so far, read from its start: a
            // position named by sequence number (not a LATEST iterator) can
            // always be anchored again (see `read_once`).
            let mut shard = ShardPosition {
                id: id.to_owned(),
                it: None,
                seq: None,
            };
            loop {
                let it = match shard.it.take() {
                    Some(it) => it,
                    None => self.iterator(&arn, &shard).await.map_err(|l| match l {
                        Lost::Failed(e) => e,
                        Lost::Gap => {
                            super::attrs::corrupt(&self.tables.presence, "stream shard vanished")
                        }
                    })?,
                };
                let out = streams
                    .get_records()
                    .shard_iterator(&it)
                    .limit(1000)
                    .send()
                    .await
                    .map_err(|e| sdk("GetRecords", e))?;
                if let Some(seq) = out
                    .records()
                    .last()
                    .and_then(|r| r.dynamodb())
                    .and_then(|d| d.sequence_number())
                {
                    shard.seq = Some(seq.to_owned());
                }
                let caught_up = out.records().is_empty();
                shard.it = out.next_shard_iterator().map(str::to_owned);
                if caught_up || shard.it.is_none() {
                    break;
                }
            }
            shards.push(shard);
        }
        Ok(Position { arn, shards }.cursor())
    }

    /// The stream's records after `after` that are there now (one read of
    /// each shard, at most `max` each), as a Lambda DynamoDB event's
    /// `Records`, and the cursor after them; `None` if the cursor is lost (a
    /// gap). What an event source mapping hands the `fanout` function.
    pub async fn stream_records(
        &self,
        after: &LogCursor,
        max: usize,
    ) -> StoreResult<Option<(Vec<Value>, LogCursor)>> {
        let Some(mut pos) = Position::parse(after) else {
            return Ok(None);
        };
        match self.read_once(&mut pos, max.clamp(1, 1000)).await {
            Ok(records) => Ok(Some((records, pos.cursor()))),
            Err(Lost::Gap) => Ok(None),
            Err(Lost::Failed(e)) => Err(e),
        }
    }

    /// A cursor at the end of the presence table's stream, now.
    pub async fn stream_position(&self) -> StoreResult<LogCursor> {
        self.stream_end().await
    }

    /// Entries after `after`, polling until `wait` is up if there are none.
    pub(super) async fn stream_read(
        &self,
        after: &LogCursor,
        max: usize,
        wait: Duration,
    ) -> StoreResult<LogRead> {
        let Some(mut pos) = Position::parse(after) else {
            return Ok(LogRead::Gap);
        };
        if pos.arn != self.stream_arn().await? {
            return Ok(LogRead::Gap); // the table (and its stream) was recreated
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.read_once(&mut pos, max.clamp(1, 1000)).await {
                Ok(records) if !records.is_empty() => {
                    let event = json!({ "Records": records });
                    let events = stream_entries(&event).into_iter().map(|(_, e)| e).collect();
                    return Ok(LogRead::Entries {
                        events,
                        cursor: pos.cursor(),
                    });
                }
                Ok(_) => {}
                Err(Lost::Gap) => return Ok(LogRead::Gap),
                Err(Lost::Failed(e)) => return Err(e),
            }
            if tokio::time::Instant::now() + POLL > deadline {
                return Ok(LogRead::Entries {
                    events: Vec::new(),
                    cursor: pos.cursor(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// One read of every followed shard, as the records of a Lambda
    /// DynamoDB event; ended shards hand over to their children.
    async fn read_once(&self, pos: &mut Position, max: usize) -> Result<Vec<Value>, Lost> {
        let streams = self.streams()?;
        let mut records = Vec::new();
        let mut ended = Vec::new();
        for shard in &mut pos.shards {
            let it = match shard.it.take() {
                Some(it) => it,
                None => self.iterator(&pos.arn, shard).await?,
            };
            let out = match streams
                .get_records()
                .shard_iterator(&it)
                .limit(max as i32)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let service = e.as_service_error();
                    if service.is_some_and(|s| s.is_trimmed_data_access_exception()) {
                        return Err(Lost::Gap);
                    }
                    if service.is_some_and(|s| s.is_expired_iterator_exception()) {
                        // Made again from the last sequence number next time.
                        if shard.seq.is_none() {
                            return Err(Lost::Gap);
                        }
                        continue;
                    }
                    return Err(Lost::Failed(sdk("GetRecords", e)));
                }
            };
            for record in out.records() {
                if let Some(seq) = record.dynamodb().and_then(|r| r.sequence_number()) {
                    shard.seq = Some(seq.to_owned());
                }
                records.push(lambda_record(record, &pos.arn));
            }
            match out.next_shard_iterator() {
                // Nothing new: anchor again by sequence number next time.
                // moto replaces a table's stream shard when it rolls back a
                // cancelled transaction, which strands its iterators; a
                // reader that re-anchors when idle is immune (on DynamoDB it
                // costs one GetShardIterator per idle read).
                Some(_) if out.records().is_empty() => shard.it = None,
                Some(next) => shard.it = Some(next.to_owned()),
                None => ended.push(shard.id.clone()),
            }
        }
        if !ended.is_empty() {
            self.hand_over(pos, &ended).await?;
        }
        Ok(records)
    }

    /// An iterator after the shard's last record read, or from its start.
    async fn iterator(&self, arn: &str, shard: &ShardPosition) -> Result<String, Lost> {
        let streams = self.streams()?;
        let req = streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(&shard.id);
        let req = match &shard.seq {
            Some(seq) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        match req.send().await {
            Ok(out) => out.shard_iterator().map(str::to_owned).ok_or(Lost::Gap),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_trimmed_data_access_exception() || s.is_resource_not_found_exception()
                }) =>
            {
                Err(Lost::Gap)
            }
            Err(e) => Err(Lost::Failed(sdk("GetShardIterator", e))),
        }
    }

    /// Replaces the ended shards with their children (from their start).
    async fn hand_over(&self, pos: &mut Position, ended: &[String]) -> Result<(), Lost> {
        let desc = self
            .streams()?
            .describe_stream()
            .stream_arn(&pos.arn)
            .send()
            .await
            .map_err(|e| Lost::Failed(sdk("DescribeStream", e)))?;
        let shards = desc
            .stream_description()
            .map(|d| d.shards())
            .unwrap_or_default();
        let children: HashMap<&str, Vec<&str>> = shards.iter().fold(HashMap::new(), |mut m, s| {
            if let (Some(parent), Some(id)) = (s.parent_shard_id(), s.shard_id()) {
                m.entry(parent).or_default().push(id);
            }
            m
        });
        pos.shards.retain(|s| !ended.contains(&s.id));
        for id in ended {
            for child in children.get(id.as_str()).into_iter().flatten() {
                if !pos.shards.iter().any(|s| s.id == *child) {
                    pos.shards.push(ShardPosition {
                        id: (*child).to_owned(),
                        it: None,
                        seq: None,
                    });
                }
            }
        }
        Ok(())
    }
}
