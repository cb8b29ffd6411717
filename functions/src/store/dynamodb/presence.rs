//! Presence transitions on DynamoDB: registering and unregistering a
//! connection together with its user's presence item, atomically.
//!
//! Each attempt reads the user's `(conns, seq)` with a consistent GetItem and
//! then writes the connection item and the presence item in ONE
//! TransactWriteItems (the presence item's stream record is the log entry):
//!
//! Every connect also checks, in the same transaction, that its session
//! still exists and has not expired (a log out racing the connect refuses
//! it: `StoreError::NotFound`).
//!
//! * connect, `seq` even (offline): Put the connection
//!   (`attribute_not_exists(id)`) and `SET conns = c + 1, seq = s + 1,
//!   online = online#N REMOVE pending, offline_at` on condition that `conns`
//!   and `seq` are still exactly what was read → the online event `s + 1`;
//! * connect, `seq` odd, `conns = 0` (an offline pending its grace): Put +
//!   `SET conns = 1 REMOVE pending, offline_at` if unchanged → no event;
//! * connect, `conns ≥ 1`: Put + `SET conns = conns + 1` if `conns >= 1`
//!   (and `conns < cap` under a per-user cap);
//! * connect, `conns` at the cap: refused without writing
//!   (`StoreError::LimitReached`); the counters were read consistently, and
//!   a connect that raced past the read fails its condition and re-reads;
//! * disconnect, `conns ≤ 1`: Delete the connection (it still exists with
//!   this user and, for the sweep, an ended lease) + either `SET conns = 0,
//!   seq = s + 1, last_seen = now REMOVE online, …` (offline now → the
//!   offline event, with its time: the user's last seen) or
//!   `SET conns = 0, offline_at = T, pending = pending#N` (after the grace),
//!   if unchanged;
//! * disconnect, `conns > 1`: Delete + `SET conns = conns - 1` if `conns > 1`.
//!
//! `seq` only moves on 0→1 and 1→0, each conditioned on its exact previous
//! value, and `conns` always equals the user's connection items, so the
//! transitions of a user are totally ordered with consecutive numbers — one
//! `true` per 0→1, one `false` per 1→0 — however many Lambdas race. A
//! cancelled transaction (the counters moved, or a conflict) is retried
//! after a jittered backoff, up to `MAX_ATTEMPTS` (100) times (`txn.rs`).
//! Pending offlines are settled in `pending.rs`.

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};

use super::DynamoStore;
use super::attrs::{Item, build, n, opt_n, s, sdk, session_key, timestamp, username};
use super::leases::conn_ttl;
use super::schema::{
    CONN_ID, CONN_LEASE_UNTIL, CONN_SESSION, CONN_SESSION_ENDS, CONN_SHARD, CONN_USERNAME,
    PRESENCE_CONNS, PRESENCE_LAST_SEEN, PRESENCE_NAME, PRESENCE_OFFLINE_AT, PRESENCE_ONLINE,
    PRESENCE_PENDING, PRESENCE_SEQ, SESSION_EXPIRES_AT, SESSION_KEY, TTL, online_value,
    pending_value, shard_of, shard_value,
};
use super::txn::{Contended, MAX_ATTEMPTS, TxError, backoff};
use crate::domain::{ConnectionId, PresenceEvent, Timestamp, Username};
use crate::store::{ConnectionRecord, Offline, RemoveIf, Removed, StoreError, StoreResult};

/// The user's presence item as read: `None` where an attribute is absent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counters {
    pub(super) conns: Option<u64>,
    pub(super) seq: Option<u64>,
    pub(super) offline_at: Option<u64>,
}

impl Counters {
    pub(super) fn online(&self) -> bool {
        self.seq.unwrap_or(0) % 2 == 1
    }
}

/// The condition "the counters are still exactly `c`", with its values.
pub(super) fn unchanged(c: Counters, update: UpdateBuilder, extra: &str) -> UpdateBuilder {
    let (conns_cond, update) = match c.conns {
        Some(v) => (
            "#conns = :conns",
            update.expression_attribute_values(":conns", n(v)),
        ),
        None => ("attribute_not_exists(#conns)", update),
    };
    let (seq_cond, update) = match c.seq {
        Some(v) => (
            "#seq = :seq",
            update.expression_attribute_values(":seq", n(v)),
        ),
        None => ("attribute_not_exists(#seq)", update),
    };
    update
        .expression_attribute_names("#seq", PRESENCE_SEQ)
        .condition_expression(format!("{conns_cond} AND {seq_cond}{extra}"))
}

/// An event at transition `seq` (an offline one with when it happened).
pub(super) fn event(username: &Username, seq: u64, last_seen: Option<Timestamp>) -> PresenceEvent {
    PresenceEvent::transition(username.clone(), seq, last_seen)
}

impl DynamoStore {
    /// Registers `c` (see the module docs); the online event on 0→1.
    pub(super) async fn register(
        &self,
        c: &ConnectionRecord,
        max_per_user: Option<u32>,
    ) -> StoreResult<Option<PresenceEvent>> {
        let mut item = Item::new();
        item.insert(CONN_ID.into(), s(c.id.as_str()));
        item.insert(CONN_USERNAME.into(), s(c.username.as_str()));
        item.insert(CONN_SESSION.into(), s(c.session.as_str()));
        item.insert(CONN_LEASE_UNTIL.into(), n(c.lease_until.as_millis()));
        item.insert(
            CONN_SESSION_ENDS.into(),
            n(c.session_expires_at.as_millis()),
        );
        item.insert(CONN_SHARD.into(), s(shard_value(shard_of(&c.id))));
        item.insert(TTL.into(), n(conn_ttl(c.lease_until)));
        for attempt in 0..MAX_ATTEMPTS {
            let counters = self.counters(&c.username).await?;
            let put = Put::builder()
                .table_name(&self.tables.connections)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", CONN_ID)
                .build()
                .map_err(build)?;
            let update = self.presence_update(&c.username);
            let conns = counters.conns.unwrap_or(0);
            if max_per_user.is_some_and(|cap| conns >= u64::from(cap)) {
                // Unless this very id is registered already (a retried
                // connect only extends its lease).
                if self.connection(&c.id).await?.is_some() {
                    self.extend_lease(&c.id, c.lease_until).await?;
                    return Ok(None);
                }
                return Err(StoreError::LimitReached);
            }
            let (update, seq) = if !counters.online() {
                let next = counters.seq.unwrap_or(0) + 1;
                let update = update
                    .update_expression(
                        "SET #conns = :c, #seq = :next, #online = :online REMOVE #pending, #at",
                    )
                    .expression_attribute_names("#online", PRESENCE_ONLINE)
                    .expression_attribute_names("#pending", PRESENCE_PENDING)
                    .expression_attribute_names("#at", PRESENCE_OFFLINE_AT)
                    .expression_attribute_values(":c", n(conns + 1))
                    .expression_attribute_values(":next", n(next))
                    .expression_attribute_values(":online", s(online_value(&c.username)));
                (unchanged(counters, update, ""), Some(next))
            } else if conns == 0 {
                // Back within the grace: cancel the pending offline.
                let update = update
                    .update_expression("SET #conns = :one REMOVE #pending, #at")
                    .expression_attribute_names("#pending", PRESENCE_PENDING)
                    .expression_attribute_names("#at", PRESENCE_OFFLINE_AT)
                    .expression_attribute_values(":one", n(1));
                (unchanged(counters, update, ""), None)
            } else {
                let update = update
                    .update_expression("SET #conns = #conns + :one")
                    .expression_attribute_values(":one", n(1));
                let update = match max_per_user {
                    // Another connect may have taken the last place since
                    // the read: then this fails, and the retry re-reads.
                    Some(cap) => update
                        .condition_expression("#conns >= :one AND #conns < :cap")
                        .expression_attribute_values(":cap", n(u64::from(cap))),
                    None => update.condition_expression("#conns >= :one"),
                };
                (update, None)
            };
            let update = update.build().map_err(build)?;
            // The session must still exist (a log out racing this connect).
            let live = ConditionCheck::builder()
                .table_name(&self.tables.sessions)
                .key(SESSION_KEY, s(c.session.as_str()))
                .condition_expression("attribute_exists(#key) AND #exp > :now")
                .expression_attribute_names("#key", SESSION_KEY)
                .expression_attribute_names("#exp", SESSION_EXPIRES_AT)
                .expression_attribute_values(":now", n(Timestamp::now().as_millis()))
                .build()
                .map_err(build)?;
            let live = TransactWriteItem::builder().condition_check(live).build();
            match self
                .transact(TransactWriteItem::builder().put(put), update, Some(live))
                .await
            {
                Ok(()) => return Ok(seq.map(|seq| event(&c.username, seq, None))),
                Err(TxError::Failed(e)) => return Err(e),
                Err(TxError::Cancelled(codes)) => {
                    if codes.get(2).is_some_and(|c| c == "ConditionalCheckFailed") {
                        return Err(StoreError::NotFound);
                    }
                    let registered = match codes.first() {
                        Some(code) => code == "ConditionalCheckFailed",
                        None => self.connection(&c.id).await?.is_some(),
                    };
                    if registered {
                        // A retried connect: only extend the lease.
                        self.extend_lease(&c.id, c.lease_until).await?;
                        return Ok(None);
                    }
                    tracing::debug!(attempt, ?codes, "add_connection cancelled; retrying");
                    backoff(attempt).await;
                }
            }
        }
        Err(StoreError::backend(Contended("add_connection")))
    }

    /// Unregisters `id` (see the module docs); the offline event on 1→0
    /// with [`Offline::Now`].
    pub(super) async fn unregister(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
        offline: Offline,
    ) -> StoreResult<Option<Removed>> {
        let table = &self.tables.connections;
        for attempt in 0..MAX_ATTEMPTS {
            let Some(item) = self.connection(id).await? else {
                return Ok(None);
            };
            let user = username(&item, CONN_USERNAME, table)?;
            let session = session_key(&item, CONN_SESSION, table)?;
            let lease_until = timestamp(&item, CONN_LEASE_UNTIL, table)?;
            let delete = Delete::builder()
                .table_name(table)
                .key(CONN_ID, s(id.as_str()))
                .expression_attribute_names("#id", CONN_ID)
                .expression_attribute_names("#user", CONN_USERNAME)
                .expression_attribute_values(":user", s(user.as_str()));
            let delete = match condition {
                RemoveIf::Always => {
                    delete.condition_expression("attribute_exists(#id) AND #user = :user")
                }
                RemoveIf::ExpiredAt(now) => {
                    if lease_until > now {
                        return Ok(None);
                    }
                    delete
                        .condition_expression(
                            "attribute_exists(#id) AND #user = :user AND #lease <= :now",
                        )
                        .expression_attribute_names("#lease", CONN_LEASE_UNTIL)
                        .expression_attribute_values(":now", n(now.as_millis()))
                }
            };
            let delete = delete.build().map_err(build)?;
            let counters = self.counters(&user).await?;
            let now = Timestamp::now();
            let (update, went_offline, grace_started) = self.leaving(&user, counters, offline, now);
            let update = update.build().map_err(build)?;
            match self
                .transact(TransactWriteItem::builder().delete(delete), update, None)
                .await
            {
                Ok(()) => {
                    return Ok(Some(Removed {
                        went_offline: went_offline.map(|seq| event(&user, seq, Some(now))),
                        username: user,
                        session,
                        grace_started,
                    }));
                }
                Err(TxError::Failed(e)) => return Err(e),
                // Removed or renewed meanwhile (the next read tells), or the
                // counters moved: try again.
                Err(TxError::Cancelled(codes)) => {
                    tracing::debug!(attempt, ?codes, "remove_connection cancelled; retrying");
                    backoff(attempt).await;
                }
            }
        }
        Err(StoreError::backend(Contended("remove_connection")))
    }

    /// The presence update of a connection leaving, the transition it
    /// makes (if any; going offline at `now`, the last seen) and whether a
    /// grace period starts.
    fn leaving(
        &self,
        user: &Username,
        counters: Counters,
        offline: Offline,
        now: Timestamp,
    ) -> (UpdateBuilder, Option<u64>, bool) {
        let update = self.presence_update(user);
        let conns = counters.conns.unwrap_or(0);
        if conns > 1 {
            let update = update
                .update_expression("SET #conns = #conns - :one")
                .condition_expression("#conns > :one")
                .expression_attribute_values(":one", n(1));
            return (update, None, false);
        }
        if !counters.online() {
            let update = update
                .update_expression("SET #conns = :zero")
                .expression_attribute_values(":zero", n(0));
            return (unchanged(counters, update, ""), None, false);
        }
        match offline {
            Offline::Now => {
                let next = counters.seq.unwrap_or(0) + 1;
                let update = update
                    .update_expression(
                        "SET #conns = :zero, #seq = :next, #seen = :seen REMOVE #online, #pending, #at",
                    )
                    .expression_attribute_names("#online", PRESENCE_ONLINE)
                    .expression_attribute_names("#pending", PRESENCE_PENDING)
                    .expression_attribute_names("#at", PRESENCE_OFFLINE_AT)
                    .expression_attribute_names("#seen", PRESENCE_LAST_SEEN)
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(":next", n(next))
                    .expression_attribute_values(":seen", n(now.as_millis()));
                (unchanged(counters, update, ""), Some(next), false)
            }
            Offline::After(at) => {
                let update = update
                    .update_expression("SET #conns = :zero, #at = :at, #pending = :pending")
                    .expression_attribute_names("#pending", PRESENCE_PENDING)
                    .expression_attribute_names("#at", PRESENCE_OFFLINE_AT)
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(":at", n(at.as_millis()))
                    .expression_attribute_values(":pending", s(pending_value(user)));
                (unchanged(counters, update, ""), None, true)
            }
        }
    }

    /// An Update of `user`'s presence item; every counter expression names
    /// `#conns`.
    pub(super) fn presence_update(&self, user: &Username) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.tables.presence)
            .key(PRESENCE_NAME, s(user.as_str()))
            .expression_attribute_names("#conns", PRESENCE_CONNS)
    }

    /// The user's counters, read consistently.
    pub(super) async fn counters(&self, user: &Username) -> StoreResult<Counters> {
        let table = &self.tables.presence;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key(PRESENCE_NAME, s(user.as_str()))
            .consistent_read(true)
            .projection_expression("#conns, #seq, #at")
            .expression_attribute_names("#conns", PRESENCE_CONNS)
            .expression_attribute_names("#seq", PRESENCE_SEQ)
            .expression_attribute_names("#at", PRESENCE_OFFLINE_AT)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(Counters {
                conns: None,
                seq: None,
                offline_at: None,
            });
        };
        Ok(Counters {
            conns: opt_n(item, PRESENCE_CONNS, table)?,
            seq: opt_n(item, PRESENCE_SEQ, table)?,
            offline_at: opt_n(item, PRESENCE_OFFLINE_AT, table)?,
        })
    }

    /// Takes `user` offline if they have no connection and are online
    /// (their offline pending or not), conditioned on the counters read and,
    /// with `due`, on the deadline having passed. `None` if that no longer
    /// holds.
    pub(super) async fn take_offline(
        &self,
        user: &Username,
        due: Option<Timestamp>,
    ) -> StoreResult<Option<PresenceEvent>> {
        for attempt in 0..MAX_ATTEMPTS {
            let counters = self.counters(user).await?;
            if counters.conns.unwrap_or(0) > 0 || !counters.online() {
                return Ok(None);
            }
            if let Some(now) = due
                && counters.offline_at.is_none_or(|at| at > now.as_millis())
            {
                return Ok(None);
            }
            let next = counters.seq.unwrap_or(0) + 1;
            let seen = Timestamp::now();
            let update = self
                .presence_update(user)
                .update_expression("SET #seq = :next, #seen = :seen REMOVE #online, #pending, #at")
                .expression_attribute_names("#online", PRESENCE_ONLINE)
                .expression_attribute_names("#pending", PRESENCE_PENDING)
                .expression_attribute_names("#at", PRESENCE_OFFLINE_AT)
                .expression_attribute_names("#seen", PRESENCE_LAST_SEEN)
                .expression_attribute_values(":next", n(next))
                .expression_attribute_values(":seen", n(seen.as_millis()));
            let update = unchanged(counters, update, "").build().map_err(build)?;
            let result = self
                .client
                .update_item()
                .table_name(update.table_name())
                .set_key(Some(update.key().clone()))
                .update_expression(update.update_expression())
                .set_condition_expression(update.condition_expression().map(str::to_owned))
                .set_expression_attribute_names(update.expression_attribute_names().cloned())
                .set_expression_attribute_values(update.expression_attribute_values().cloned())
                .send()
                .await;
            match result {
                Ok(_) => return Ok(Some(event(user, next, Some(seen)))),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    // Moved meanwhile (a connection came back, another
                    // process settled it): look again.
                    backoff(attempt).await;
                }
                Err(e) => return Err(sdk("UpdateItem", e)),
            }
        }
        Err(StoreError::backend(Contended("offline")))
    }
}
