//! The event log on Redis: the online cut, and tailing the `P log` stream.
//!
//! A cursor is `{stream entry id}/{entry number}`. Every entry carries its
//! number `n` (consecutive from 1, `INCR P log:n` in the same script), so a
//! reader tells a healthy stream from one that lost entries: the next
//! entry's number must be one more than the cursor's, and the counter must
//! not be below it. Either failing — trimmed past the reader, Redis
//! restarted empty, or restarted from an older append-only file — is a
//! [`LogRead::Gap`].
//!
//! Blocking reads (`XREAD BLOCK`) hold their connection, so they use one of
//! their own, not the multiplexed connection every other call shares.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::{Corrupt, RedisStore, backend, pairs, username};
use crate::domain::{LogEvent, PresenceEvent, Timestamp, UserPresence};
use crate::store::{LogCursor, LogRead, OnlineCut, StoreError, StoreResult};

/// One stream entry as `XREAD` returns it: id and flat field/value list.
type RawEntry = (String, Vec<String>);
/// `GET P log:n` and `XREAD`'s reply: per stream, its entries (nil: none).
type TailReply = (Option<u64>, Option<Vec<(String, Vec<RawEntry>)>>);

fn corrupt(at: &str) -> StoreError {
    StoreError::backend(Corrupt(at.to_owned()))
}

/// `id/n` → (id, n).
fn parse_cursor(c: &LogCursor) -> Option<(&str, u64)> {
    let (id, n) = c.0.rsplit_once('/')?;
    Some((id, n.parse().ok()?))
}

fn make_cursor(id: &str, n: u64) -> LogCursor {
    LogCursor(format!("{id}/{n}"))
}

/// The value of `field` in a flat field/value list.
fn field<'a>(fields: &'a [String], name: &str) -> Option<&'a str> {
    fields
        .chunks(2)
        .find(|c| c.first().is_some_and(|f| f == name))
        .and_then(|c| c.get(1))
        .map(String::as_str)
}

/// An entry's number and event.
fn parse_entry(fields: &[String]) -> StoreResult<(u64, LogEvent)> {
    let at = "log";
    let n: u64 = field(fields, "n")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| corrupt(at))?;
    let user = username(field(fields, "u").ok_or_else(|| corrupt(at))?, at)?;
    let number = |name| -> StoreResult<u64> {
        field(fields, name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt(at))
    };
    let event = match field(fields, "k") {
        Some("p") => {
            let seq = number("s")?;
            let last_seen = field(fields, "t")
                .and_then(|t| t.parse().ok())
                .map(Timestamp::from_millis);
            LogEvent::Presence(PresenceEvent::transition(user, seq, last_seen))
        }
        Some("j") => LogEvent::Joined {
            username: user,
            created_at: Timestamp::from_millis(number("c")?),
        },
        _ => return Err(corrupt(at)),
    };
    Ok((n, event))
}

impl RedisStore {
    pub(super) async fn cut(&self) -> StoreResult<OnlineCut> {
        let mut flat: Vec<String> = self
            .invocation(&self.scripts.online_users)
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        if flat.len() < 2 {
            return Err(corrupt("online"));
        }
        let rest = flat.split_off(2);
        let n: u64 = flat[0].parse().map_err(|_| corrupt("log:n"))?;
        let mut users: Vec<UserPresence> = pairs(rest, "online")?
            .into_iter()
            .map(|(u, seq)| UserPresence::at(u, seq))
            .collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(OnlineCut {
            users,
            cursor: make_cursor(&flat[1], n),
        })
    }

    /// The connection blocking reads use, opened on first use.
    async fn tail_connection(&self, wait: Duration) -> StoreResult<MultiplexedConnection> {
        let mut slot = self.tail.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(wait + super::RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(super::RESPONSE_TIMEOUT));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(backend)?;
        *slot = Some(c.clone());
        Ok(c)
    }

    pub(super) async fn tail_log(
        &self,
        after: &LogCursor,
        max: usize,
        wait: Duration,
    ) -> StoreResult<LogRead> {
        let Some((id, n)) = parse_cursor(after) else {
            return Ok(LogRead::Gap);
        };
        let mut conn = self.tail_connection(wait).await?;
        let mut xread = redis::cmd("XREAD");
        xread.arg("COUNT").arg(max.max(1));
        let block = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        if block > 0 {
            xread.arg("BLOCK").arg(block);
        }
        xread.arg("STREAMS").arg(self.key(&["log"])).arg(id);
        let reply: redis::RedisResult<TailReply> = redis::pipe()
            .cmd("GET")
            .arg(self.key(&["log:n"]))
            .add_command(xread)
            .query_async(&mut conn)
            .await;
        let (head, streams) = match reply {
            Ok(r) => r,
            Err(e) => {
                // Reconnect on the next call.
                *self.tail.lock().await = None;
                return Err(backend(e));
            }
        };
        let head = head.unwrap_or(0);
        if head < n {
            return Ok(LogRead::Gap); // the counter went back: Redis rewound
        }
        let entries: Vec<RawEntry> = streams
            .into_iter()
            .flatten()
            .flat_map(|(_, entries)| entries)
            .collect();
        if entries.is_empty() && head > n {
            return Ok(LogRead::Gap); // entries after the cursor are gone
        }
        let mut events = Vec::with_capacity(entries.len());
        let (mut last_id, mut last_n) = (id.to_owned(), n);
        for (entry_id, fields) in entries {
            let (entry_n, event) = parse_entry(&fields)?;
            if entry_n != last_n + 1 {
                return Ok(LogRead::Gap);
            }
            events.push(event);
            last_id = entry_id;
            last_n = entry_n;
        }
        Ok(LogRead::Entries {
            events,
            cursor: make_cursor(&last_id, last_n),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = make_cursor("1700000000000-3", 42);
        assert_eq!(parse_cursor(&c), Some(("1700000000000-3", 42)));
        assert_eq!(parse_cursor(&LogCursor("nope".into())), None);
        assert_eq!(parse_cursor(&LogCursor("1-0/x".into())), None);
    }

    #[test]
    fn entries_parse_into_events() {
        let f = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (n, e) = parse_entry(&f(&["n", "7", "k", "p", "u", "bob", "s", "3"])).unwrap();
        assert_eq!(n, 7);
        assert!(matches!(e, LogEvent::Presence(p) if p.is_logged_in && p.seq == 3));
        let (_, e) = parse_entry(&f(&[
            "n",
            "9",
            "k",
            "p",
            "u",
            "bob",
            "s",
            "4",
            "t",
            "1795000000123",
        ]))
        .unwrap();
        assert!(matches!(e, LogEvent::Presence(p) if !p.is_logged_in
                && p.last_seen == Some(Timestamp::from_millis(1_795_000_000_123))));
        let (_, e) = parse_entry(&f(&["n", "8", "k", "j", "u", "amy", "c", "99"])).unwrap();
        assert!(matches!(e, LogEvent::Joined { created_at, .. } if created_at.as_millis() == 99));
        assert!(parse_entry(&f(&["n", "8", "k", "x", "u", "amy"])).is_err());
        assert!(parse_entry(&f(&["k", "p", "u", "amy", "s", "1"])).is_err());
    }
}
