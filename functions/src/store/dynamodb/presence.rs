//! Presence transitions on DynamoDB: registering and unregistering a
//! connection together with its user's counters, atomically.
//!
//! Each attempt reads the user's `(conns, seq)` with a consistent GetItem and
//! then writes the connection item and the counters in ONE
//! TransactWriteItems:
//!
//! * connect, `conns` absent or 0: Put the connection
//!   (`attribute_not_exists(id)`) and Update the user `SET conns = 1,
//!   seq = s + 1` on condition that `conns` and `seq` are still exactly what
//!   was read → the online event, number `s + 1`;
//! * connect, `conns ≥ 1`: Put + `SET conns = conns + 1` if `conns >= 1`;
//! * disconnect, `conns ≤ 1`: Delete the connection (it still exists with
//!   this user and, for the sweep, an ended lease) + `SET conns = 0,
//!   seq = s + 1` if `conns`/`seq` are unchanged → the offline event;
//! * disconnect, `conns > 1`: Delete + `SET conns = conns - 1` if `conns > 1`.
//!
//! `seq` only moves on 0→1 and 1→0, each conditioned on its exact previous
//! value, and `conns` always equals the user's connection items, so the
//! transitions of a user are totally ordered with consecutive numbers — one
//! `true` per 0→1, one `false` per 1→0 — however many Lambdas race. A
//! cancelled transaction (the counters moved, or a conflict) is retried
//! after a jittered backoff, up to `MAX_ATTEMPTS` (100) times (`txn.rs`).

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};

use super::DynamoStore;
use super::attrs::{Item, build, n, opt_n, s, sdk, session_key, timestamp, username};
use super::leases::conn_ttl;
use super::schema::{
    CONN_ID, CONN_LEASE_UNTIL, CONN_SESSION, CONN_SHARD, CONN_USERNAME, TTL, USER_CONNS, USER_NAME,
    USER_SEQ, shard_of, shard_value,
};
use super::txn::{Contended, MAX_ATTEMPTS, TxError, backoff};
use crate::domain::{ConnectionId, PresenceEvent, Username};
use crate::store::{ConnectionRecord, RemoveIf, Removed, StoreError, StoreResult};

/// The user's counters as read: `None` where the attribute is absent.
#[derive(Debug, Clone, Copy)]
struct Counters {
    conns: Option<u64>,
    seq: Option<u64>,
}

/// The condition "the counters are still exactly `c`", with its values.
fn unchanged(c: Counters, update: UpdateBuilder) -> UpdateBuilder {
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
    update.condition_expression(format!("{conns_cond} AND {seq_cond}"))
}

impl DynamoStore {
    /// Registers `c` (see the module docs); the online event on 0→1.
    pub(super) async fn register(
        &self,
        c: &ConnectionRecord,
    ) -> StoreResult<Option<PresenceEvent>> {
        let mut item = Item::new();
        item.insert(CONN_ID.into(), s(c.id.as_str()));
        item.insert(CONN_USERNAME.into(), s(c.username.as_str()));
        item.insert(CONN_SESSION.into(), s(c.session.as_str()));
        item.insert(CONN_LEASE_UNTIL.into(), n(c.lease_until.as_millis()));
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
            let update = self.user_update(&c.username);
            let (update, seq) = match counters.conns.unwrap_or(0) {
                0 => {
                    let next = counters.seq.unwrap_or(0) + 1;
                    let update = update
                        .update_expression("SET #conns = :one, #seq = :next")
                        .expression_attribute_names("#seq", USER_SEQ)
                        .expression_attribute_values(":one", n(1))
                        .expression_attribute_values(":next", n(next));
                    (unchanged(counters, update), Some(next))
                }
                _ => (
                    update
                        .update_expression("SET #conns = #conns + :one")
                        .condition_expression("#conns >= :one")
                        .expression_attribute_values(":one", n(1)),
                    None,
                ),
            };
            let update = update.build().map_err(build)?;
            match self
                .transact(TransactWriteItem::builder().put(put), update)
                .await
            {
                Ok(()) => {
                    return Ok(seq.map(|seq| PresenceEvent {
                        username: c.username.clone(),
                        is_logged_in: true,
                        seq,
                    }));
                }
                Err(TxError::Failed(e)) => return Err(e),
                Err(TxError::Cancelled(codes)) => {
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

    /// Unregisters `id` (see the module docs); the offline event on 1→0.
    pub(super) async fn unregister(
        &self,
        id: &ConnectionId,
        condition: RemoveIf,
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
            let update = self.user_update(&user);
            let (update, seq) = match counters.conns.unwrap_or(0) {
                0 | 1 => {
                    let next = counters.seq.unwrap_or(0) + 1;
                    let update = update
                        .update_expression("SET #conns = :zero, #seq = :next")
                        .expression_attribute_names("#seq", USER_SEQ)
                        .expression_attribute_values(":zero", n(0))
                        .expression_attribute_values(":next", n(next));
                    (unchanged(counters, update), Some(next))
                }
                _ => (
                    update
                        .update_expression("SET #conns = #conns - :one")
                        .condition_expression("#conns > :one")
                        .expression_attribute_values(":one", n(1)),
                    None,
                ),
            };
            let update = update.build().map_err(build)?;
            match self
                .transact(TransactWriteItem::builder().delete(delete), update)
                .await
            {
                Ok(()) => {
                    let went_offline = seq.map(|seq| PresenceEvent {
                        username: user.clone(),
                        is_logged_in: false,
                        seq,
                    });
                    return Ok(Some(Removed {
                        username: user,
                        session,
                        went_offline,
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

    /// An Update of `user`'s item; every counter expression names `#conns`.
    fn user_update(&self, user: &Username) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.tables.users)
            .key(USER_NAME, s(user.as_str()))
            .expression_attribute_names("#conns", USER_CONNS)
    }

    /// The user's counters, read consistently.
    async fn counters(&self, user: &Username) -> StoreResult<Counters> {
        let table = &self.tables.users;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key(USER_NAME, s(user.as_str()))
            .consistent_read(true)
            .projection_expression("#conns, #seq")
            .expression_attribute_names("#conns", USER_CONNS)
            .expression_attribute_names("#seq", USER_SEQ)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(Counters {
                conns: None,
                seq: None,
            });
        };
        Ok(Counters {
            conns: opt_n(item, USER_CONNS, table)?,
            seq: opt_n(item, USER_SEQ, table)?,
        })
    }
}
