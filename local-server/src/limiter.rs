//! The rate limiter of a node, next to its store: counts shared through
//! the same backend (Redis across processes; DynamoDB's sessions table) or,
//! on the memory store or a store built by the caller, in this process.
//!
//! [`attach`] is called right after [`Node::start`] by everything that
//! starts a node (the program, the tests), since the node's own wiring
//! (`node.rs`) is shared with the presence code.

use std::sync::Arc;

use rollcall::limits::RateLimiter;
use rollcall::limits::dynamodb::DynamoLimiter;
use rollcall::limits::memory::MemoryLimiter;
use rollcall::limits::redis::RedisLimiter;

use crate::node::{Backend, Node, NodeError};

/// The limiter for `backend`, with the node's key prefix and tables.
pub async fn limiter_for(
    backend: &Backend,
    config: &rollcall::config::Config,
) -> Result<Arc<dyn RateLimiter>, NodeError> {
    Ok(match backend {
        Backend::Memory | Backend::InProcess(_) => Arc::new(MemoryLimiter::new()),
        Backend::Redis { url } => Arc::new(
            RedisLimiter::connect(url, &config.redis_prefix)
                .await
                .map_err(|e| NodeError::Store(rollcall::store::StoreError::backend(e)))?,
        ),
        Backend::DynamoDb { .. } => {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            Arc::new(DynamoLimiter::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                config.tables.sessions.clone(),
            ))
        }
    })
}

/// Gives `node`'s context the limiter for `backend`.
pub async fn attach(node: &mut Node, backend: &Backend) -> Result<(), NodeError> {
    let limiter = limiter_for(backend, &node.ctx.config).await?;
    node.ctx = node.ctx.clone().with_limiter(limiter);
    Ok(())
}
