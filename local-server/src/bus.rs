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
//!
//! A subscription can die silently (a half-open TCP connection: Redis
//! restarted behind a NAT or a failed-over proxy, a dead network path), so
//! [`subscribe`] pings Redis over the subscription itself every
//! [`PING_EVERY`]; no answer within [`PING_TIMEOUT`] counts as lost, and it
//! resubscribes. A dead subscription is therefore noticed within
//! `PING_EVERY + PING_TIMEOUT` (7 s).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use redis::aio::ConnectionManager;
use rollcall::domain::ConnectionId;
use rollcall::push::PushError;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;

/// How often the subscription is pinged.
pub const PING_EVERY: Duration = Duration::from_secs(5);
/// How long a ping (or a resubscription) may take before the connection
/// counts as dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

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
        let publish = || async {
            redis::cmd("PUBLISH")
                .arg(&self.channel)
                .arg(&payload)
                .query_async::<i64>(&mut self.conn.clone())
                .await
        };
        match publish().await {
            Ok(_) => Ok(()),
            // This connection is idle between publishes, so after Redis
            // restarted the first one finds it broken (the manager then
            // reconnects): once more, on the new connection.
            Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                tracing::debug!(error = %e, "control bus: publishing again after reconnecting");
                publish().await.map(|_| ()).map_err(PushError::new)
            }
            Err(e) => Err(PushError::new(e)),
        }
    }
}

/// Subscribes this process's hub to `channel` and keeps it subscribed.
///
/// Returns once the first subscription is active and runs until `stop`.
/// After a lost connection (closed, or silent to a ping) it resubscribes
/// with backoff, counting each loss in `lost`.
pub async fn subscribe(
    url: &str,
    channel: &str,
    hub: Arc<Hub>,
    lost: Counter,
    stop: CancellationToken,
) -> redis::RedisResult<tokio::task::JoinHandle<()>> {
    let client = redis::Client::open(url)?;
    let pubsub = resubscribe(&client, channel).await?;
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
            let (mut sink, mut messages) = pubsub.split();
            let mut ping =
                tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
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
                    },
                    _ = ping.tick() => {
                        let answer = tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await;
                        if !matches!(answer, Ok(Ok(_))) {
                            tracing::warn!("control bus: no answer to a ping; resubscribing");
                            break;
                        }
                    }
                }
            }
            lost.inc();
        }
    });
    let _ = ready_rx.await;
    Ok(task)
}

/// A new subscription to `channel`, within [`PING_TIMEOUT`] (a dead server
/// must not hold the bus's task).
async fn resubscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let subscribing = async {
        let mut p = client.get_async_pubsub().await?;
        p.subscribe(channel).await?;
        Ok(p)
    };
    tokio::time::timeout(PING_TIMEOUT, subscribing)
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "control bus: subscribing timed out",
            )))
        })
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
