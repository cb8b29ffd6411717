//! What a stream record of the presence table stands for in the event log:
//! a record whose `seq` grew is a presence transition; one where `dir`
//! appeared is a sign-up; anything else (a second tab counted, a grace
//! period started) is no entry. Shared by the stream reader (`stream.rs`)
//! and the `fanout` function (whose event source mapping hands over the
//! same images).

use super::schema::{
    PRESENCE_CREATED_AT, PRESENCE_DIR, PRESENCE_LAST_SEEN, PRESENCE_NAME, PRESENCE_SEQ,
};
use serde_json::Value;

use crate::domain::{LogEvent, PresenceEvent, Timestamp, Username};

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
        let last_seen = number(new(PRESENCE_LAST_SEEN)).map(Timestamp::from_millis);
        return Some(LogEvent::Presence(PresenceEvent::transition(
            username, seq, last_seen,
        )));
    }
    if new(PRESENCE_DIR).is_some() && old(PRESENCE_DIR).is_none() {
        return Some(LogEvent::Joined {
            username,
            created_at: Timestamp::from_millis(number(new(PRESENCE_CREATED_AT)).unwrap_or(0)),
        });
    }
    None
}

/// An attribute of a stream image as text (`{"S": …}` or `{"N": …}`).
fn attribute<'a>(image: &'a Value, name: &str) -> Option<&'a str> {
    let v = image.get(name)?;
    v.get("S").or_else(|| v.get("N")).and_then(Value::as_str)
}

/// The log entries of a Lambda DynamoDB stream event, each with its
/// record's sequence number, in order.
pub fn stream_entries(event: &Value) -> Vec<(Option<String>, LogEvent)> {
    let none = Value::Null;
    let records = event["Records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    records
        .iter()
        .filter_map(|r| {
            let change = &r["dynamodb"];
            let new = change.get("NewImage").unwrap_or(&none);
            let old = change.get("OldImage").unwrap_or(&none);
            let entry = log_event(|n| attribute(new, n), |n| attribute(old, n))?;
            let seq = change["SequenceNumber"].as_str().map(str::to_owned);
            Some((seq, entry))
        })
        .collect()
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
        assert!(e.is_logged_in && e.seq == 3 && e.last_seen.is_none());
        let gone = image(&[
            ("username", "amy"),
            ("dir", "users"),
            ("seq", "4"),
            ("conns", "0"),
            ("last_seen", "1795000000123"),
        ]);
        let Some(LogEvent::Presence(e)) = log_event(gone, after) else {
            panic!("a transition")
        };
        assert!(!e.is_logged_in && e.last_seen == Some(Timestamp::from_millis(1_795_000_000_123)));
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
