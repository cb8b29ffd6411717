//! [`ApiGwPusher`]: delivery through the API Gateway Management API.
//!
//! Posting an event to a shard of the `users` group (the push function's
//! job, one queue message per shard) pages through that shard by key (never
//! a scan) and posts to each connection with bounded concurrency, retrying
//! throttled posts (a throttled post was not delivered, so nothing is sent
//! twice). A `GoneException` (410) means exactly that connection is dead —
//! API Gateway's `$disconnect` is best effort — so exactly that connection
//! is unregistered, and if it was its user's last, they go offline: the
//! store's stream announces it, or, on a store without one, the pusher
//! queues it. (The AWS chat sample deletes the *sender* instead; that is a
//! bug.)
//!
//! One exception: API Gateway also answers 410 for a connection still in its
//! `$connect` (not open yet), and another Lambda may broadcast just then. So
//! a 410 only buries a connection whose lease was last set more than a grace
//! period ago (a third of the lease, at most 10 s); a fresher one is left to
//! a later 410 or to the sweep.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use futures_util::StreamExt;
use futures_util::stream;

use super::{CloseReason, PushError, Pusher};
use crate::domain::{ConnectionId, PresenceEvent, Timestamp};
use crate::queue::Queues;
use crate::store::{Offline, RemoveIf, Store};

/// Group members fetched per page.
const PAGE: usize = 500;
/// Attempts per post when API Gateway throttles.
const ATTEMPTS: u32 = 3;
/// What a logged-out page is told before its connection is deleted (API
/// Gateway cannot send a close code).
pub const LOGGED_OUT: &str = r#"{"type":"logged_out"}"#;

/// Pushes through `PostToConnection` and closes with `DeleteConnection`.
pub struct ApiGwPusher {
    client: Client,
    store: Arc<dyn Store>,
    concurrency: usize,
    lease: Duration,
    /// Where the offline transitions of buried connections are announced,
    /// on a store without a stream (`None`: the stream announces them).
    queues: Option<Arc<dyn Queues>>,
}

/// What one post found.
enum Outcome {
    Delivered,
    Gone,
    Failed,
}

impl ApiGwPusher {
    /// A pusher over `client` (already pointed at the API's
    /// `https://{api}.execute-api.{region}.amazonaws.com/{stage}`), cleaning
    /// dead connections out of `store`; `lease` is the connections' lease.
    pub fn new(client: Client, store: Arc<dyn Store>, concurrency: usize, lease: Duration) -> Self {
        Self {
            client,
            store,
            concurrency: concurrency.max(1),
            lease,
            queues: None,
        }
    }

    /// This pusher announcing the offline transitions of the connections
    /// it buries through `queues` (a store without a stream).
    pub fn announcing_through(mut self, queues: Arc<dyn Queues>) -> Self {
        self.queues = Some(queues);
        self
    }

    /// A client for `endpoint` from the ambient AWS configuration.
    pub fn client_for(sdk: &aws_config::SdkConfig, endpoint: &str) -> Client {
        let conf = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
            .endpoint_url(endpoint)
            .build();
        Client::from_conf(conf)
    }

    async fn post(&self, id: &ConnectionId, data: &Blob) -> Outcome {
        for attempt in 0..ATTEMPTS {
            let sent = self
                .client
                .post_to_connection()
                .connection_id(id.as_str())
                .data(data.clone())
                .send()
                .await;
            match sent {
                Ok(_) => return Outcome::Delivered,
                Err(e) => match e.as_service_error() {
                    Some(s) if s.is_gone_exception() => return Outcome::Gone,
                    Some(s) if s.is_limit_exceeded_exception() && attempt + 1 < ATTEMPTS => {
                        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    }
                    _ => {
                        tracing::warn!(conn = %id, error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e), "post failed");
                        return Outcome::Failed;
                    }
                },
            }
        }
        Outcome::Failed
    }

    /// Unregisters dead connections; returns the offline events that causes.
    async fn bury(&self, gone: &[ConnectionId]) -> Result<Vec<PresenceEvent>, PushError> {
        // Spare connections registered or renewed within the grace period:
        // one may just be in its `$connect`.
        let grace = (self.lease / 3).min(Duration::from_secs(10));
        let cutoff = Timestamp::now().plus(self.lease.saturating_sub(grace));
        let mut offline = Vec::new();
        for id in gone {
            tracing::info!(conn = %id, "connection gone (410): unregistering it");
            let removed = self
                .store
                .remove_connection(id, RemoveIf::ExpiredAt(cutoff), Offline::Now)
                .await
                .map_err(PushError::new)?;
            offline.extend(removed.and_then(|r| r.went_offline));
        }
        Ok(offline)
    }

    /// Posts `data` to every member of group shard `shard`; returns the
    /// dead ones.
    async fn post_to_members(
        &self,
        shard: u32,
        data: &Blob,
    ) -> Result<Vec<ConnectionId>, PushError> {
        let mut gone = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .store
                .group_shard(shard, cursor.as_deref(), PAGE)
                .await
                .map_err(PushError::new)?;
            let outcomes: Vec<(ConnectionId, Outcome)> = stream::iter(page.items)
                .map(|id| async move {
                    let o = self.post(&id, data).await;
                    (id, o)
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            gone.extend(
                outcomes
                    .into_iter()
                    .filter(|(_, o)| matches!(o, Outcome::Gone))
                    .map(|(id, _)| id),
            );
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(gone),
            }
        }
    }

    /// Announces the offline transitions burying caused: through the push
    /// queue on a store without a stream; the store's stream does it
    /// otherwise.
    async fn announce(&self, offline: Vec<PresenceEvent>) -> Result<(), PushError> {
        if let Some(queues) = &self.queues {
            for e in offline {
                queues.fan_out(&e, self.store.group_shards()).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Pusher for ApiGwPusher {
    async fn post_to_shard(&self, shard: u32, event: &PresenceEvent) -> Result<(), PushError> {
        let data = Blob::new(event.to_json());
        let gone = self.post_to_members(shard, &data).await?;
        let offline = self.bury(&gone).await?;
        self.announce(offline).await
    }

    async fn send(&self, to: &ConnectionId, text: &str) -> Result<bool, PushError> {
        match self.post(to, &Blob::new(text)).await {
            Outcome::Delivered => Ok(true),
            Outcome::Failed => Ok(false),
            Outcome::Gone => {
                let offline = self.bury(std::slice::from_ref(to)).await?;
                self.announce(offline).await?;
                Ok(false)
            }
        }
    }

    async fn close(&self, ids: &[ConnectionId], reason: CloseReason) -> Result<(), PushError> {
        stream::iter(ids)
            .for_each_concurrent(self.concurrency, |id| async move {
                if reason == CloseReason::LoggedOut {
                    // Best effort: the page then knows not to reconnect.
                    let _ = self.post(id, &Blob::new(LOGGED_OUT)).await;
                }
                if let Err(e) = self.client.delete_connection().connection_id(id.as_str()).send().await
                    && !e.as_service_error().is_some_and(|s| s.is_gone_exception())
                {
                    tracing::warn!(conn = %id, error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&e), "delete failed");
                }
            })
            .await;
        Ok(())
    }
}
