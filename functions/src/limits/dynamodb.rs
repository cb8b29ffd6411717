//! [`DynamoLimiter`]: counts shared by every Lambda, in DynamoDB.
//!
//! One counter item per limited key, window length and window index, in the
//! **sessions table** (no new table): key `limit#{window ms}#{index}#{key}`
//! (never a session key, which is hex), attribute `hits` (N) and the table's
//! `ttl` (N, epoch seconds) a little after the window ends. A hit is one
//! `UpdateItem` (`ADD hits 1`, atomic however many Lambdas race); a peek is
//! one consistent `GetItem`. The TTL deletes old windows lazily, which is
//! harmless: a window's key is never used again once it has ended.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::{Decision, LimitError, RateLimiter, Rule, decide, window};
use crate::domain::Timestamp;
use crate::store::dynamodb::schema::{SESSION_KEY, TTL};
use crate::store::dynamodb::sdk;

/// Counter items: hits so far in the window (N).
pub const HITS: &str = "hits";

/// A limiter on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoLimiter {
    client: Client,
    table: String,
}

impl DynamoLimiter {
    /// Counts in `table` (the sessions table) through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The same table through another client (another Lambda's).
    #[must_use]
    pub fn with_client(&self, client: Client) -> Self {
        Self {
            client,
            table: self.table.clone(),
        }
    }

    async fn count(&self, key: &str, rule: Rule, counting: bool) -> Result<Decision, LimitError> {
        if rule.is_off() {
            return Ok(Decision::Allowed);
        }
        let now = Timestamp::now();
        let (index, left) = window(now, rule);
        let item_key =
            AttributeValue::S(format!("limit#{}#{index}#{key}", rule.window.as_millis()));
        let hits = if counting {
            let ttl = now.plus(left).as_millis() / 1000 + 60;
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(SESSION_KEY, item_key)
                .update_expression("ADD #h :one SET #t = if_not_exists(#t, :ttl)")
                .expression_attribute_names("#h", HITS)
                .expression_attribute_names("#t", TTL)
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await
                .map_err(|e| LimitError::from(sdk("UpdateItem", e)))?;
            hits_of(out.attributes())
        } else {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key(SESSION_KEY, item_key)
                .consistent_read(true)
                .projection_expression("#h")
                .expression_attribute_names("#h", HITS)
                .send()
                .await
                .map_err(|e| LimitError::from(sdk("GetItem", e)))?;
            hits_of(out.item())
        };
        Ok(decide(hits, rule, left, counting))
    }
}

fn hits_of(item: Option<&std::collections::HashMap<String, AttributeValue>>) -> u64 {
    item.and_then(|i| i.get(HITS))
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[async_trait]
impl RateLimiter for DynamoLimiter {
    async fn check(&self, key: &str, rule: Rule) -> Result<Decision, LimitError> {
        self.count(key, rule, true).await
    }

    async fn peek(&self, key: &str, rule: Rule) -> Result<Decision, LimitError> {
        self.count(key, rule, false).await
    }
}
