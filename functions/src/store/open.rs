//! [`open`]: the one place a store is built from the configuration.

use std::sync::Arc;

use super::memory::MemoryStore;
use super::{Store, StoreError, StoreResult};
use crate::config::{Config, StoreChoice};

/// A store that cannot be opened as configured.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unavailable(String);

/// Opens the store `choice` names, with `config`'s settings (Redis prefix
/// and log length, DynamoDB tables and whether to create them).
/// [`StoreChoice::Auto`] must be resolved by the caller first (the local
/// server starts a private Redis, the Lambda functions use DynamoDB).
pub async fn open(choice: &StoreChoice, config: &Config) -> StoreResult<Arc<dyn Store>> {
    match choice {
        StoreChoice::Memory => Ok(Arc::new(MemoryStore::new())),
        #[cfg(feature = "redis")]
        StoreChoice::Redis(url) => Ok(Arc::new(
            super::redis::RedisStore::connect_with(url, &config.redis_prefix, config.event_log_max)
                .await?,
        )),
        #[cfg(feature = "dynamodb")]
        StoreChoice::DynamoDb => {
            let store = super::dynamodb::DynamoStore::from_env(config.tables.clone()).await;
            if config.create_tables {
                store.create_tables().await?;
            }
            Ok(Arc::new(store))
        }
        other => Err(StoreError::backend(Unavailable(format!(
            "ROLLCALL_STORE={other:?} is not available in this build"
        )))),
    }
}
