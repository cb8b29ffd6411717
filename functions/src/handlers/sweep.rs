//! The sweep: finds connections whose lease ran out (their server crashed,
//! API Gateway's `$disconnect` never came, the network vanished), removes
//! them, announces the resulting offline transitions and closes whatever is
//! left of those sockets.

use crate::context::AppContext;
use crate::domain::Timestamp;
use crate::error::AppError;
use crate::push::CloseReason;
use crate::store::RemoveIf;

/// Connections handled per store round trip.
const BATCH: usize = 500;
/// Upper bound of batches per sweep, so one run always ends.
const MAX_BATCHES: usize = 200;

/// Removes every connection whose lease ended at or before `now`; returns
/// how many were removed.
#[tracing::instrument(skip_all)]
pub async fn sweep(ctx: &AppContext, now: Timestamp) -> Result<usize, AppError> {
    let mut removed = 0;
    for _ in 0..MAX_BATCHES {
        let expired = ctx.store.expired_connections(now, BATCH).await?;
        let mut closed = Vec::with_capacity(expired.len());
        for id in &expired {
            // Conditional: a socket that renewed since the listing stays.
            if let Some(r) = ctx
                .store
                .remove_connection(id, RemoveIf::ExpiredAt(now))
                .await?
            {
                removed += 1;
                closed.push(id.clone());
                if let Some(offline) = r.went_offline {
                    ctx.pusher.broadcast(&offline, None).await?;
                }
            }
        }
        if !closed.is_empty() {
            ctx.pusher.close(&closed, CloseReason::Expired).await?;
        }
        if expired.len() < BATCH {
            break;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "swept expired connections");
    }
    Ok(removed)
}
