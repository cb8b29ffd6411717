//! Connections: registering and removing them (with the presence count,
//! the transition and its log entry, in one Lua script each), pending
//! offlines, leases, and the listings by session, by group and by lease end.

use redis::AsyncCommands;

use super::{Corrupt, RedisStore, backend, username};
use crate::domain::{ConnectionId, PresenceEvent, SessionKey, Timestamp, Username};
use crate::store::{ConnectionRecord, Offline, Page, RemoveIf, Removed, StoreError, StoreResult};

/// Renewals per script call: bounds how long one call blocks Redis.
const RENEW_BATCH: usize = 500;

fn event(username: Username, seq: u64) -> PresenceEvent {
    PresenceEvent::transition(username, seq, None)
}

/// An offline transition's event, with the time the script recorded
/// (`''` or junk: unknown).
fn offline_event(username: Username, seq: u64, t: &str) -> PresenceEvent {
    PresenceEvent::transition(username, seq, t.parse().ok().map(Timestamp::from_millis))
}

impl RedisStore {
    pub(super) async fn insert_connection(
        &self,
        c: &ConnectionRecord,
        max_per_user: Option<u32>,
    ) -> StoreResult<Option<PresenceEvent>> {
        let seq: i64 = self
            .invocation(&self.scripts.add_connection)
            .arg(c.id.as_str())
            .arg(c.username.as_str())
            .arg(c.session.as_str())
            .arg(c.lease_until.as_millis())
            .arg(max_per_user.map(|n| n.to_string()).unwrap_or_default())
            .arg(c.session_expires_at.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        match u64::try_from(seq) {
            Err(_) if seq == -2 => Err(StoreError::LimitReached),
            Err(_) => Err(StoreError::NotFound),
            Ok(0) => Ok(None),
            Ok(seq) => Ok(Some(event(c.username.clone(), seq))),
        }
    }

    pub(super) async fn delete_connection(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
        offline: Offline,
    ) -> StoreResult<Option<Removed>> {
        let when = match condition {
            RemoveIf::Always => String::new(),
            RemoveIf::ExpiredAt(t) => t.as_millis().to_string(),
        };
        let deadline = match offline {
            Offline::Now => String::new(),
            Offline::After(t) => t.as_millis().to_string(),
        };
        let at = self.key(&["conn:", id.as_str()]);
        let out: Option<(String, String, u64, u8, String)> = self
            .invocation(&self.scripts.remove_connection)
            .arg(id.as_str())
            .arg(when)
            .arg(deadline)
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        let Some((user, session, seq, grace, t)) = out else {
            return Ok(None);
        };
        let username = username(&user, &at)?;
        let session =
            SessionKey::parse(&session).ok_or_else(|| StoreError::backend(Corrupt(at)))?;
        Ok(Some(Removed {
            went_offline: (seq > 0).then(|| offline_event(username.clone(), seq, &t)),
            username,
            session,
            grace_started: grace == 1,
        }))
    }

    pub(super) async fn settle(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<PresenceEvent>> {
        let flat: Vec<String> = self
            .invocation(&self.scripts.settle_offline)
            .arg(now.as_millis())
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        flat.chunks(3)
            .map(|c| match c {
                [user, seq, t] => Ok(offline_event(
                    username(user, "pending")?,
                    seq.parse()
                        .map_err(|_| StoreError::backend(Corrupt("pending".into())))?,
                    t,
                )),
                _ => Err(StoreError::backend(Corrupt("pending".into()))),
            })
            .collect()
    }

    pub(super) async fn settle_one(
        &self,
        user: &Username,
        now: Timestamp,
    ) -> StoreResult<Option<PresenceEvent>> {
        let (seq, t): (u64, String) = self
            .invocation(&self.scripts.settle_user)
            .arg(user.as_str())
            .arg(now.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        Ok((seq > 0).then(|| offline_event(user.clone(), seq, &t)))
    }

    pub(super) async fn take_offline(&self, user: &Username) -> StoreResult<Option<PresenceEvent>> {
        let (seq, t): (u64, String) = self
            .invocation(&self.scripts.offline_now)
            .arg(user.as_str())
            .invoke_async(&mut self.conn())
            .await
            .map_err(backend)?;
        Ok((seq > 0).then(|| offline_event(user.clone(), seq, &t)))
    }

    pub(super) async fn extend_leases(
        &self,
        ids: &[ConnectionId],
        until: Timestamp,
    ) -> StoreResult<Vec<ConnectionId>> {
        let mut missing = Vec::new();
        for chunk in ids.chunks(RENEW_BATCH) {
            let mut call = self.scripts.renew_leases.key(self.key(&["leases"]));
            call.arg(until.as_millis()).arg(self.key(&["conn:"]));
            for id in chunk {
                call.arg(id.as_str());
            }
            let gone: Vec<String> = call.invoke_async(&mut self.conn()).await.map_err(backend)?;
            missing.extend(gone.iter().filter_map(|g| ConnectionId::parse(g).ok()));
        }
        Ok(missing)
    }

    pub(super) async fn connections_of_session(
        &self,
        key: &SessionKey,
    ) -> StoreResult<Vec<ConnectionId>> {
        let ids: Vec<String> = self
            .conn()
            .smembers(self.key(&["sconns:", key.as_str()]))
            .await
            .map_err(backend)?;
        let mut ids: Vec<ConnectionId> = ids
            .iter()
            .filter_map(|i| ConnectionId::parse(i).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    pub(super) async fn group_page(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<ConnectionId>> {
        let min = cursor.map_or_else(|| "-".to_owned(), |c| format!("({c}"));
        let mut items: Vec<String> = self
            .conn()
            .zrangebylex_limit(
                self.key(&["group:users"]),
                min,
                "+",
                0,
                isize::try_from(limit.saturating_add(1)).unwrap_or(isize::MAX),
            )
            .await
            .map_err(backend)?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().cloned()
        } else {
            None
        };
        let items = items
            .iter()
            .filter_map(|i| ConnectionId::parse(i).ok())
            .collect();
        Ok(Page { items, next })
    }

    pub(super) async fn expired(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<ConnectionId>> {
        let ids: Vec<String> = self
            .conn()
            .zrangebyscore_limit(
                self.key(&["leases"]),
                "-inf",
                now.as_millis(),
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await
            .map_err(backend)?;
        Ok(ids
            .iter()
            .filter_map(|i| ConnectionId::parse(i).ok())
            .collect())
    }
}
