//! [`RedisLimiter`]: counts shared by every process on one Redis.
//!
//! One key per limited key, window length and window index,
//! `P limit:{window ms}:{index}:{key}`, counted by a small Lua script (`INCR`,
//! and `PEXPIRE` to the window's end on the first hit) so the count and its
//! expiry are set atomically; the key disappears by itself.

use async_trait::async_trait;
use redis::Script;
use redis::aio::ConnectionManager;

use super::{Decision, LimitError, RateLimiter, Rule, decide, window};
use crate::domain::Timestamp;

/// `KEYS[1]` the counter, `ARGV[1]` 1 to count or 0 to read, `ARGV[2]` ms
/// until it may expire. Returns the count.
const COUNT: &str = r"
local n
if ARGV[1] == '1' then
  n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
else
  n = tonumber(redis.call('GET', KEYS[1]) or '0')
end
return n
";

/// A limiter on Redis.
#[derive(Clone)]
pub struct RedisLimiter {
    conn: ConnectionManager,
    prefix: String,
    script: Script,
}

impl RedisLimiter {
    /// Connects to `url`; every key starts with `prefix`.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, LimitError> {
        let client = redis::Client::open(url).map_err(LimitError::backend)?;
        let conn =
            ConnectionManager::new_with_config(client, crate::store::redis::manager_config())
                .await
                .map_err(LimitError::backend)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            script: Script::new(COUNT),
        })
    }

    async fn count(&self, key: &str, rule: Rule, counting: bool) -> Result<Decision, LimitError> {
        if rule.is_off() {
            return Ok(Decision::Allowed);
        }
        let (index, left) = window(Timestamp::now(), rule);
        let redis_key = format!(
            "{}limit:{}:{index}:{key}",
            self.prefix,
            rule.window.as_millis()
        );
        // A little past the window's end, for clocks a little apart.
        let expire_ms = left.as_millis().saturating_add(1_000);
        let n: u64 = self
            .script
            .key(redis_key)
            .arg(u8::from(counting))
            .arg(u64::try_from(expire_ms).unwrap_or(u64::MAX))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(|e| LimitError::from(crate::store::redis::store_error(e)))?;
        Ok(decide(n, rule, left, counting))
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn check(&self, key: &str, rule: Rule) -> Result<Decision, LimitError> {
        self.count(key, rule, true).await
    }

    async fn peek(&self, key: &str, rule: Rule) -> Result<Decision, LimitError> {
        self.count(key, rule, false).await
    }
}
