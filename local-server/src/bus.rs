//! The control bus between server processes: messages for particular
//! sockets wherever they are open (close these, send this one a text).
//!
//! Presence events do not travel here: every process reads them from the
//! store's event log ([`crate::feed`]). A [`BusMessage`] is one message
//! whatever the number of sockets: [`InProcessBus`] hands it straight to
//! this process's [`Hub`] (memory and DynamoDB stores, one process),
//! [`RedisBus`] publishes it on one Redis channel that every process
//! subscribes to ([`subscribe`]), and each process's hub acts on it for its
//! own sockets. A message lost while the subscription is down is made up
//! for: a socket that should have closed fails its next lease renewal
//! (its registration is gone) and is closed then.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use rollcall::domain::ConnectionId;
use rollcall::push::PushError;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;

/// What travels between processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusMessage {
    /// Send this text to one socket, wherever it is open.
    Send {
        /// The connection.
        id: ConnectionId,
        /// The text frame.
        text: String,
    },
    /// Close these sockets, wherever they are open, with this close code.
    Close {
        /// The connections.
        ids: Vec<ConnectionId>,
        /// The WebSocket close code.
        code: u16,
    },
}

/// Carries [`BusMessage`]s to every process's hub.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes to every process (this one included).
    async fn publish(&self, msg: BusMessage) -> Result<(), PushError>;
}

/// One process: deliver directly.
pub struct InProcessBus {
    hub: Arc<Hub>,
}

impl InProcessBus {
    /// A bus into `hub`.
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, msg: BusMessage) -> Result<(), PushError> {
        self.hub.deliver(msg);
        Ok(())
    }
}

/// Many processes: `PUBLISH` on one Redis channel.
pub struct RedisBus {
    conn: ConnectionManager,
    channel: String,
}

impl RedisBus {
    /// A bus publishing on `channel` of the Redis at `url`.
    pub async fn connect(url: &str, channel: &str) -> redis::RedisResult<Self> {
        let conn = ConnectionManager::new(redis::Client::open(url)?).await?;
        Ok(Self {
            conn,
            channel: channel.to_owned(),
        })
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, msg: BusMessage) -> Result<(), PushError> {
        let payload = serde_json::to_string(&msg).map_err(PushError::new)?;
        let _receivers: i64 = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(PushError::new)?;
        Ok(())
    }
}

/// Subscribes this process's hub to `channel` and keeps it subscribed.
///
/// Returns once the first subscription is active and runs until `stop`.
/// After a lost connection it resubscribes with backoff.
pub async fn subscribe(
    url: &str,
    channel: &str,
    hub: Arc<Hub>,
    stop: CancellationToken,
) -> redis::RedisResult<tokio::task::JoinHandle<()>> {
    let client = redis::Client::open(url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    let (ready_tx, ready_rx) = oneshot::channel::<()>();
    let channel = channel.to_owned();
    let task = tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut first = Some(pubsub);
        let mut backoff = Duration::from_millis(100);
        loop {
            let pubsub = match first.take() {
                Some(p) => p,
                None => match resubscribe(&client, &channel).await {
                    Ok(p) => {
                        tracing::info!("control bus resubscribed");
                        backoff = Duration::from_millis(100);
                        p
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "control bus: cannot resubscribe yet");
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                },
            };
            if let Some(r) = ready.take() {
                let _ = r.send(());
            }
            let mut messages = pubsub.into_on_message();
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    msg = messages.next() => match msg {
                        Some(msg) => match serde_json::from_slice::<BusMessage>(msg.get_payload_bytes()) {
                            Ok(m) => hub.deliver(m),
                            Err(e) => tracing::warn!(error = %e, "control bus: ignoring a malformed message"),
                        },
                        None => {
                            tracing::warn!("control bus: subscription lost");
                            break;
                        }
                    }
                }
            }
        }
    });
    let _ = ready_rx.await;
    Ok(task)
}

async fn resubscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut p = client.get_async_pubsub().await?;
    p.subscribe(channel).await?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_messages_round_trip_as_json() {
        let m = BusMessage::Close {
            ids: vec![ConnectionId::generate()],
            code: 4001,
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<BusMessage>(&text).unwrap(), m);
        let id = ConnectionId::generate();
        let s = BusMessage::Send {
            id: id.clone(),
            text: "hi".into(),
        };
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(
            text,
            format!(r#"{{"kind":"send","id":"{id}","text":"hi"}}"#)
        );
        assert_eq!(serde_json::from_str::<BusMessage>(&text).unwrap(), s);
    }
}
