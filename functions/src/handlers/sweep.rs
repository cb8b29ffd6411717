//! The sweep: announces the users whose offline grace period ended with no
//! connection back, and finds connections whose lease ran out (their server
//! crashed, API Gateway's `$disconnect` never came, the network vanished,
//! or its session ended: a lease is never renewed past that),
//! removes them — their users go offline at once, the grace does not apply
//! to a lost connection — and closes whatever is left of those sockets.
//!
//! One bad item (a store call that fails for it) is reported and skipped;
//! the rest of the round goes on.

use crate::context::AppContext;
use crate::domain::Timestamp;
use crate::error::AppError;
use crate::push::CloseReason;
use crate::store::{Offline, RemoveIf};

/// Connections handled per store round trip.
const BATCH: usize = 500;
/// Upper bound of batches per sweep, so one run always ends.
const MAX_BATCHES: usize = 200;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Users taken offline after their grace period.
    pub settled: usize,
    /// Expired connections removed.
    pub removed: usize,
    /// Items skipped because the store failed on them.
    pub failed: usize,
}

/// Takes offline every user whose grace ended at or before `now`.
#[tracing::instrument(skip_all)]
pub async fn settle(ctx: &AppContext, now: Timestamp) -> Result<usize, AppError> {
    let mut settled = 0;
    for _ in 0..MAX_BATCHES {
        let events = ctx.store.settle_offline(now, BATCH).await?;
        settled += events.len();
        for e in &events {
            ctx.announce(e).await?;
        }
        if events.len() < BATCH {
            break;
        }
    }
    Ok(settled)
}

/// [`settle`], then removes every connection whose lease ended at or
/// before `now`.
#[tracing::instrument(skip_all)]
pub async fn sweep(ctx: &AppContext, now: Timestamp) -> Result<Swept, AppError> {
    let mut out = Swept {
        settled: settle(ctx, now).await?,
        ..Swept::default()
    };
    for _ in 0..MAX_BATCHES {
        let expired = ctx.store.expired_connections(now, BATCH).await?;
        let mut closed = Vec::with_capacity(expired.len());
        for id in &expired {
            // Conditional: a socket that renewed since the listing stays.
            match ctx
                .store
                .remove_connection(id, RemoveIf::ExpiredAt(now), Offline::Now)
                .await
            {
                Ok(Some(r)) => {
                    out.removed += 1;
                    closed.push(id.clone());
                    if let Some(offline) = r.went_offline {
                        ctx.announce(&offline).await?;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    out.failed += 1;
                    tracing::warn!(conn = %id, error = %e, "sweep: could not remove an expired connection; skipped");
                }
            }
        }
        if !closed.is_empty() {
            ctx.pusher.close(&closed, CloseReason::Expired).await?;
        }
        // A full batch of which nothing could be removed would come back
        // the same: stop until the next round.
        if expired.len() < BATCH || closed.is_empty() {
            break;
        }
    }
    if out.removed > 0 || out.settled > 0 {
        tracing::info!(removed = out.removed, settled = out.settled, "swept");
    }
    Ok(out)
}
