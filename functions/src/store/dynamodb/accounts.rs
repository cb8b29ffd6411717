//! Users and sessions on DynamoDB: sign-up, look-ups, the presence list and
//! sessions with expiry checked on read.

use aws_sdk_dynamodb::types::ReturnValue;

use super::DynamoStore;
use super::attrs::{Item, n, opt_n, opt_s, req_n, s, sdk, session_key, ttl_secs, username};
use super::schema::{
    SESSION_EXPIRES_AT, SESSION_KEY, SESSION_USERNAME, TTL, USER_CONNS, USER_CREATED_AT, USER_NAME,
    USER_PASSWORD_HASH,
};
use crate::domain::{SessionKey, Timestamp, UserPresence, Username};
use crate::store::{SessionRecord, StoreError, StoreResult, UserRecord};

impl DynamoStore {
    /// Sign-up: one conditional UpdateItem. The name is free if no item has
    /// it or the item only holds presence counters (a connection counted
    /// before the account existed); those counters are kept.
    pub(super) async fn put_user(&self, user: &UserRecord) -> StoreResult<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.users)
            .key(USER_NAME, s(user.username.as_str()))
            .update_expression("SET #hash = :hash, #created = :created")
            .condition_expression("attribute_not_exists(#name) OR attribute_not_exists(#hash)")
            .expression_attribute_names("#name", USER_NAME)
            .expression_attribute_names("#hash", USER_PASSWORD_HASH)
            .expression_attribute_names("#created", USER_CREATED_AT)
            .expression_attribute_values(":hash", s(&user.password_hash))
            .expression_attribute_values(":created", n(user.created_at.as_millis()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(sdk("UpdateItem", e)),
        }
    }

    /// Consistent GetItem; an item without `password_hash` is not a user.
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

    /// A consistent, paginated Scan of the users table, sorted here.
    pub(super) async fn scan_presence(&self) -> StoreResult<Vec<UserPresence>> {
        let table = &self.tables.users;
        let mut list = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .projection_expression("#name, #conns, #hash")
                .expression_attribute_names("#name", USER_NAME)
                .expression_attribute_names("#conns", USER_CONNS)
                .expression_attribute_names("#hash", USER_PASSWORD_HASH)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk("Scan", e))?;
            for item in out.items() {
                if opt_s(item, USER_PASSWORD_HASH).is_none() {
                    continue;
                }
                list.push(UserPresence {
                    username: username(item, USER_NAME, table)?,
                    is_logged_in: opt_n(item, USER_CONNS, table)?.unwrap_or(0) > 0,
                });
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        list.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(list)
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
}
