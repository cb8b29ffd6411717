//! Users and sessions on DynamoDB: sign-up (the account and its presence
//! item's directory entry in one transaction), look-ups, the user list and
//! joins by index, and sessions with expiry checked on read.

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};

use super::DynamoStore;
use super::attrs::{
    Item, build, limit, n, opt_n, opt_s, req_n, s, sdk, session_key, ttl_secs, username,
};
use super::schema::{
    DIRECTORY, INDEX_BY_CREATED, INDEX_BY_NAME, PRESENCE_CREATED_AT, PRESENCE_DIR,
    PRESENCE_LAST_SEEN, PRESENCE_NAME, PRESENCE_SEQ, SESSION_EXPIRES_AT, SESSION_KEY,
    SESSION_USERNAME, TICKET_PREFIX, TICKET_SESSION, TTL, USER_COUNT, USER_COUNT_KEY,
    USER_CREATED_AT, USER_NAME, USER_PASSWORD_HASH,
};
use super::txn::{Contended, MAX_ATTEMPTS, TxError, backoff};
use crate::domain::{NamePrefix, PageStart, SessionKey, Timestamp, UserPresence, Username};
use crate::store::{Page, SessionRecord, StoreError, StoreResult, UserRecord};

impl DynamoStore {
    /// Sign-up: one transaction of the account (if the name is free), the
    /// `dir`/`created_at` of its presence item — whose stream record is
    /// the log's `Joined` entry — and the count of accounts (`#count`).
    /// Presence counters already there (a connection counted before the
    /// account existed) are kept.
    pub(super) async fn put_user(&self, user: &UserRecord) -> StoreResult<()> {
        let put = Put::builder()
            .table_name(&self.tables.users)
            .item(USER_NAME, s(user.username.as_str()))
            .item(USER_PASSWORD_HASH, s(&user.password_hash))
            .item(USER_CREATED_AT, n(user.created_at.as_millis()))
            .condition_expression("attribute_not_exists(#name)")
            .expression_attribute_names("#name", USER_NAME)
            .build()
            .map_err(build)?;
        let joined = Update::builder()
            .table_name(&self.tables.presence)
            .key(PRESENCE_NAME, s(user.username.as_str()))
            .update_expression("SET #dir = :dir, #created = :created")
            .expression_attribute_names("#dir", PRESENCE_DIR)
            .expression_attribute_names("#created", PRESENCE_CREATED_AT)
            .expression_attribute_values(":dir", s(DIRECTORY))
            .expression_attribute_values(":created", n(user.created_at.as_millis()))
            .build()
            .map_err(build)?;
        let count = Update::builder()
            .table_name(&self.tables.users)
            .key(USER_NAME, s(USER_COUNT_KEY))
            .update_expression("ADD #n :one")
            .expression_attribute_names("#n", USER_COUNT)
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build)?;
        let count = TransactWriteItem::builder().update(count).build();
        for attempt in 0..MAX_ATTEMPTS {
            match self
                .transact(
                    TransactWriteItem::builder().put(put.clone()),
                    joined.clone(),
                    Some(count.clone()),
                )
                .await
            {
                Ok(()) => return Ok(()),
                Err(TxError::Cancelled(codes))
                    if codes.first().is_some_and(|c| c == "ConditionalCheckFailed") =>
                {
                    return Err(StoreError::Conflict);
                }
                // A presence change of the same user raced us: again.
                Err(TxError::Cancelled(codes)) => {
                    tracing::debug!(attempt, ?codes, "sign-up cancelled; retrying");
                    backoff(attempt).await;
                }
                Err(TxError::Failed(e)) => return Err(e),
            }
        }
        Err(StoreError::backend(Contended("create_user")))
    }

    /// Consistent GetItem of the account.
    pub(super) async fn get_user(&self, name: &Username) -> StoreResult<Option<UserRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.users)
            .key(USER_NAME, s(name.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let Some(hash) = opt_s(item, USER_PASSWORD_HASH) else {
            return Ok(None);
        };
        Ok(Some(UserRecord {
            username: name.clone(),
            password_hash: hash.to_owned(),
            created_at: Timestamp::from_millis(
                opt_n(item, USER_CREATED_AT, &self.tables.users)?.unwrap_or(0),
            ),
        }))
    }

    /// A Query of `by_name` from `after` on (names, `seq` and `last_seen`),
    /// with `prefix` only the names that begin with it (`begins_with` on
    /// the sort key: a range of the index, not a filter).
    pub(super) async fn users_page(
        &self,
        after: Option<&Username>,
        prefix: Option<&NamePrefix>,
        max: usize,
    ) -> StoreResult<Page<UserPresence>> {
        let table = &self.tables.presence;
        let want = max.saturating_add(1);
        let mut items: Vec<UserPresence> = Vec::new();
        // With a prefix, a start key must be inside the key condition.
        let after = match prefix.map(|p| p.start_after(after)) {
            None => after,
            Some(None) => {
                return Ok(Page { items, next: None });
            }
            Some(Some(PageStart::From(_))) => None,
            Some(Some(PageStart::After(a))) => Some(a),
        };
        let mut start: Option<Item> = after.map(|a| {
            Item::from([
                (PRESENCE_DIR.to_owned(), s(DIRECTORY)),
                (PRESENCE_NAME.to_owned(), s(a.as_str())),
            ])
        });
        loop {
            let query = self
                .client
                .query()
                .table_name(table)
                .index_name(INDEX_BY_NAME)
                .expression_attribute_names("#dir", PRESENCE_DIR)
                .expression_attribute_values(":dir", s(DIRECTORY));
            let query = match prefix {
                None => query.key_condition_expression("#dir = :dir"),
                Some(p) => query
                    .key_condition_expression("#dir = :dir AND begins_with(#name, :prefix)")
                    .expression_attribute_names("#name", PRESENCE_NAME)
                    .expression_attribute_values(":prefix", s(p.as_str())),
            };
            let out = query
                .limit(limit(want - items.len()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk("Query", e))?;
            for item in out.items() {
                let seq = opt_n(item, PRESENCE_SEQ, table)?.unwrap_or(0);
                let seen = opt_n(item, PRESENCE_LAST_SEEN, table)?.map(Timestamp::from_millis);
                items.push(UserPresence::at(username(item, PRESENCE_NAME, table)?, seq).seen(seen));
            }
            start = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
            if start.is_none() || items.len() >= want {
                break;
            }
        }
        let next = if items.len() > max {
            items.truncate(max);
            items.last().map(|u| u.username.as_str().to_owned())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// GetItem of the count of accounts (eventually consistent: a sign-up
    /// a moment ago may not be in it yet). No item yet: none.
    pub(super) async fn user_count(&self) -> StoreResult<u64> {
        let table = &self.tables.users;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key(USER_NAME, s(USER_COUNT_KEY))
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        match out.item() {
            Some(item) => Ok(opt_n(item, USER_COUNT, table)?.unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// A Query of `by_created` for `created_at > since`, oldest first.
    pub(super) async fn joined_after(
        &self,
        since: Timestamp,
        max: usize,
    ) -> StoreResult<Vec<Username>> {
        let table = &self.tables.presence;
        let mut names = Vec::new();
        let mut start: Option<Item> = None;
        while names.len() < max {
            let out = self
                .client
                .query()
                .table_name(table)
                .index_name(INDEX_BY_CREATED)
                .key_condition_expression("#dir = :dir AND #created > :since")
                .expression_attribute_names("#dir", PRESENCE_DIR)
                .expression_attribute_names("#created", PRESENCE_CREATED_AT)
                .expression_attribute_values(":dir", s(DIRECTORY))
                .expression_attribute_values(":since", n(since.as_millis()))
                .limit(limit(max - names.len()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk("Query", e))?;
            for item in out.items() {
                names.push(username(item, PRESENCE_NAME, table)?);
            }
            start = out.last_evaluated_key().filter(|k| !k.is_empty()).cloned();
            if start.is_none() {
                break;
            }
        }
        names.truncate(max);
        Ok(names)
    }

    /// PutItem with the TTL attribute at the expiry (rounded up).
    pub(super) async fn put_session(&self, session: &SessionRecord) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.tables.sessions)
            .item(SESSION_KEY, s(session.key.as_str()))
            .item(SESSION_USERNAME, s(session.username.as_str()))
            .item(SESSION_EXPIRES_AT, n(session.expires_at.as_millis()))
            .item(TTL, n(ttl_secs(session.expires_at)))
            .send()
            .await
            .map_err(|e| sdk("PutItem", e))?;
        Ok(())
    }

    /// Consistent GetItem, then the expiry check (TTL deletes lazily).
    pub(super) async fn get_session(
        &self,
        key: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionRecord>> {
        let table = &self.tables.sessions;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key(SESSION_KEY, s(key.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let expires_at = Timestamp::from_millis(req_n(item, SESSION_EXPIRES_AT, table)?);
        if expires_at <= now {
            return Ok(None);
        }
        Ok(Some(SessionRecord {
            key: session_key(item, SESSION_KEY, table)?,
            username: username(item, SESSION_USERNAME, table)?,
            expires_at,
        }))
    }

    /// DeleteItem returning the old item, to tell whether there was one.
    pub(super) async fn drop_session(&self, key: &SessionKey) -> StoreResult<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.tables.sessions)
            .key(SESSION_KEY, s(key.as_str()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk("DeleteItem", e))?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }

    /// PutItem of `ticket#{hash}` in the sessions table, with the TTL
    /// attribute at the expiry (rounded up).
    pub(super) async fn put_ticket(
        &self,
        ticket: &SessionKey,
        session: &SessionKey,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.tables.sessions)
            .item(
                SESSION_KEY,
                s(format!("{TICKET_PREFIX}{}", ticket.as_str())),
            )
            .item(TICKET_SESSION, s(session.as_str()))
            .item(SESSION_EXPIRES_AT, n(expires_at.as_millis()))
            .item(TTL, n(ttl_secs(expires_at)))
            .send()
            .await
            .map_err(|e| sdk("PutItem", e))?;
        Ok(())
    }

    /// DeleteItem of `ticket#{hash}` on condition that it has not expired,
    /// returning the old item: one call, so of racing takes exactly one
    /// gets it. An unknown or expired ticket fails the condition (an
    /// expired one is left to the TTL).
    pub(super) async fn consume_ticket(
        &self,
        ticket: &SessionKey,
        now: Timestamp,
    ) -> StoreResult<Option<SessionKey>> {
        let table = &self.tables.sessions;
        let result = self
            .client
            .delete_item()
            .table_name(table)
            .key(
                SESSION_KEY,
                s(format!("{TICKET_PREFIX}{}", ticket.as_str())),
            )
            .condition_expression("#exp > :now")
            .expression_attribute_names("#exp", SESSION_EXPIRES_AT)
            .expression_attribute_values(":now", n(now.as_millis()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => match out.attributes() {
                Some(item) if !item.is_empty() => {
                    Ok(Some(session_key(item, TICKET_SESSION, table)?))
                }
                _ => Ok(None),
            },
            Err(e) => match e.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(_)) => Ok(None),
                _ => Err(sdk("DeleteItem", e)),
            },
        }
    }
}
