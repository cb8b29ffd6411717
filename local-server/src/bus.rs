//! The event bus between server processes.
//!
//! A handler's broadcast becomes **one** [`BusMessage`] per event, whatever
//! the number of sockets: [`InProcessBus`] hands it straight to this
//! process's [`Hub`] (memory and DynamoDB stores, one process), [`RedisBus`]
//! publishes it on one Redis channel that every process subscribes to
//! ([`subscribe`]), and each process's hub fans it out locally.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use rollcall::domain::{ConnectionId, PresenceEvent};
use rollcall::push::PushError;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;

/// What travels between processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusMessage {
    /// A presence event for every socket but one.
    Presence(Announcement),
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

/// A presence event and the connection it is about (which need not get it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The event.
    #[serde(flatten)]
    pub event: PresenceEvent,
    /// The connection whose arrival or departure this is, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<ConnectionId>,
}

impl Announcement {
    /// An announcement for every socket.
    pub fn to_all(event: PresenceEvent) -> Self {
        Self {
            event,
            except: None,
        }
    }
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
/// Returns once the first subscription is active — a socket accepted
/// before that could miss events — and runs until `stop`. After a lost
/// connection it resubscribes with backoff and asks every socket for a
/// fresh snapshot, since events published meanwhile were missed.
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
                        tracing::info!("event bus resubscribed; resynchronising sockets");
                        hub.resync();
                        backoff = Duration::from_millis(100);
                        p
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event bus: cannot resubscribe yet");
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
                            Err(e) => tracing::warn!(error = %e, "event bus: ignoring a malformed message"),
                        },
                        None => {
                            tracing::warn!("event bus: subscription lost");
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
        let e = BusMessage::Presence(Announcement::to_all(PresenceEvent {
            username: rollcall::domain::Username::parse("a.b").unwrap(),
            is_logged_in: true,
            seq: 3,
        }));
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"kind":"presence","username":"a.b","is_logged_in":true,"seq":3}"#
        );
        assert_eq!(serde_json::from_str::<BusMessage>(&text).unwrap(), e);
        let id = ConnectionId::generate();
        let BusMessage::Presence(mut a) = e else {
            unreachable!()
        };
        a.except = Some(id.clone());
        let text = serde_json::to_string(&BusMessage::Presence(a.clone())).unwrap();
        assert!(text.ends_with(&format!(r#""except":"{id}"}}"#)), "{text}");
        assert_eq!(
            serde_json::from_str::<BusMessage>(&text).unwrap(),
            BusMessage::Presence(a)
        );
    }
}
