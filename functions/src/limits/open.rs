//! [`open`]: the rate limiter next to the store the configuration names.

use std::sync::Arc;

use super::memory::MemoryLimiter;
use super::{LimitError, RateLimiter};
use crate::config::{Config, StoreChoice};

/// The limiter for the store `choice` (resolved as for
/// [`crate::store::open`]): counts in Redis or in DynamoDB's sessions
/// table, shared by every process or function on that store; in this
/// process for the memory store.
pub async fn open(
    choice: &StoreChoice,
    config: &Config,
) -> Result<Arc<dyn RateLimiter>, LimitError> {
    let _ = config;
    Ok(match choice {
        #[cfg(feature = "redis")]
        StoreChoice::Redis(url) => {
            Arc::new(super::redis::RedisLimiter::connect(url, &config.redis_prefix).await?)
        }
        #[cfg(feature = "dynamodb")]
        StoreChoice::DynamoDb => {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            Arc::new(super::dynamodb::DynamoLimiter::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                config.tables.sessions.clone(),
            ))
        }
        _ => Arc::new(MemoryLimiter::new()),
    })
}
