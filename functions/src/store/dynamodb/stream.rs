//! The event log on DynamoDB: the presence table's stream (new and old
//! images), read through DynamoDB Streams (feature `dynamodb-log`).
//!
//! A record whose `seq` grew is a presence transition; one where `dir`
//! appeared is a sign-up; anything else (a second tab counted, a grace
//! period started) is no entry. [`log_event`] turns a record into an entry
//! and is shared with whatever reads the stream another way (a Lambda
//! event source mapping hands the same images over).
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
use super::schema::{PRESENCE_CREATED_AT, PRESENCE_DIR, PRESENCE_NAME, PRESENCE_SEQ};
use crate::domain::{LogEvent, PresenceEvent, Timestamp, Username};
use crate::store::{LogCursor, LogRead, StoreError, StoreResult};

/// How often an idle reader asks again (DynamoDB allows 5 reads a second
/// per shard).
const POLL: Duration = Duration::from_millis(250);

/// The log entry a stream record of the presence table stands for, from
/// the attributes of its new and old images (`get(image, name)` gives an
/// attribute as a string, numbers included).
pub fn log_event<'a>(
    new: impl Fn(&str) -> Option<&'a str>,
    old: impl Fn(&str) -> Option<&'a str>,
) -> Option<LogEvent> {
    let username = Username::parse(new(PRESENCE_NAME).or_else(|| old(PRESENCE_NAME))?).ok()?;
    let number = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok());
    let (seq, was) = (
        number(new(PRESENCE_SEQ)).unwrap_or(0),
        number(old(PRESENCE_SEQ)).unwrap_or(0),
    );
    if seq > was {
        return Some(LogEvent::Presence(PresenceEvent {
            username,
            is_logged_in: seq % 2 == 1,
            seq,
        }));
    }
    if new(PRESENCE_DIR).is_some() && old(PRESENCE_DIR).is_none() {
        return Some(LogEvent::Joined {
            username,
            created_at: Timestamp::from_millis(number(new(PRESENCE_CREATED_AT)).unwrap_or(0)),
        });
    }
    None
}

/// The string or number in an attribute.
fn text(v: &AttributeValue) -> Option<&str> {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => Some(s),
        _ => None,
    }
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

    /// A cursor at the end of the stream now: every open shard from its
    /// latest record on.
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
            let it = streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(id)
                .shard_iterator_type(ShardIteratorType::Latest)
                .send()
                .await
                .map_err(|e| sdk("GetShardIterator", e))?;
            shards.push(ShardPosition {
                id: id.to_owned(),
                it: it.shard_iterator().map(str::to_owned),
                seq: None,
            });
        }
        Ok(Position { arn, shards }.cursor())
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
                Ok(events) if !events.is_empty() => {
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

    /// One read of every followed shard; ended shards hand over to their
    /// children.
    async fn read_once(&self, pos: &mut Position, max: usize) -> Result<Vec<LogEvent>, Lost> {
        let streams = self.streams()?;
        let mut events = Vec::new();
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
                let Some(r) = record.dynamodb() else { continue };
                if let Some(seq) = r.sequence_number() {
                    shard.seq = Some(seq.to_owned());
                }
                let (new, old) = (r.new_image(), r.old_image());
                let get_new = |name: &str| new.and_then(|i| i.get(name)).and_then(text);
                let get_old = |name: &str| old.and_then(|i| i.get(name)).and_then(text);
                events.extend(log_event(get_new, get_old));
            }
            match out.next_shard_iterator() {
                Some(next) => shard.it = Some(next.to_owned()),
                None => ended.push(shard.id.clone()),
            }
        }
        if !ended.is_empty() {
            self.hand_over(pos, &ended).await?;
        }
        Ok(events)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn image<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + Copy {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    #[test]
    fn records_become_log_entries_or_nothing() {
        let none = image(&[]);
        let joined = image(&[("username", "amy"), ("dir", "users"), ("created_at", "7")]);
        assert_eq!(
            log_event(joined, none),
            Some(LogEvent::Joined {
                username: Username::parse("amy").unwrap(),
                created_at: Timestamp::from_millis(7),
            })
        );
        let before = image(&[
            ("username", "amy"),
            ("dir", "users"),
            ("seq", "2"),
            ("conns", "0"),
        ]);
        let after = image(&[
            ("username", "amy"),
            ("dir", "users"),
            ("seq", "3"),
            ("conns", "1"),
        ]);
        let Some(LogEvent::Presence(e)) = log_event(after, before) else {
            panic!("a transition")
        };
        assert!(e.is_logged_in && e.seq == 3);
        let second_tab = image(&[
            ("username", "amy"),
            ("dir", "users"),
            ("seq", "3"),
            ("conns", "2"),
        ]);
        assert_eq!(log_event(second_tab, after), None);
        assert_eq!(log_event(none, none), None);
    }
}
