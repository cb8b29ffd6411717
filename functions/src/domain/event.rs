//! What travels over the WebSocket.
//!
//! Server → client: presence events exactly as the Django Channels tutorial
//! sends them, `{"username": "NAME", "is_logged_in": true}`; every other
//! message carries a `"type"` (`snapshot`, `pong`). Client → server: optional
//! `{"type": "ping"}` / `{"type": "snapshot"}`; anything else is ignored.

use serde::{Deserialize, Serialize};

use super::Username;

/// One user went online or offline (or, with `is_logged_in: false` and
/// `seq == 0`, just signed up).
///
/// `seq` is the store's per-user transition counter. It never reaches a
/// client; fan-out code uses it to drop an event that arrives after a newer
/// one for the same user, so a user's last state always wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEvent {
    /// Whose presence changed.
    pub username: Username,
    /// Online (`true`) or offline (`false`) after the change.
    pub is_logged_in: bool,
    /// Per-user transition number (0: the sign-up announcement).
    #[serde(default)]
    pub seq: u64,
}

impl PresenceEvent {
    /// The tutorial's wire form, `{"username":…,"is_logged_in":…}`; the `seq`
    /// is left out.
    pub fn to_json(&self) -> String {
        json(&UserPresence {
            username: self.username.clone(),
            is_logged_in: self.is_logged_in,
        })
    }
}

/// A user and whether they are online: a row of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPresence {
    /// The user.
    pub username: Username,
    /// Whether they have at least one open connection.
    pub is_logged_in: bool,
}

/// A message from server to client other than a presence event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The whole list, sent first on every (re)connection so the page
    /// converges to the truth whatever it missed.
    Snapshot {
        /// Every user, sorted by name.
        users: Vec<UserPresence>,
    },
    /// Reply to a client `ping`.
    Pong,
}

impl ServerMessage {
    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        json(self)
    }
}

/// What a client may send. Unknown or malformed input parses to `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Keep-alive; refreshes the connection's lease.
    Ping,
    /// Ask for a fresh snapshot.
    Snapshot,
}

impl ClientMessage {
    /// Parses a text frame; anything unexpected is `None` (and is dropped).
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

fn json<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Username {
        Username::parse(s).unwrap()
    }

    #[test]
    fn presence_events_have_exactly_the_tutorial_shape() {
        let e = PresenceEvent {
            username: name("josé"),
            is_logged_in: true,
            seq: 7,
        };
        assert_eq!(e.to_json(), r#"{"username":"josé","is_logged_in":true}"#);
    }

    #[test]
    fn other_messages_carry_a_type() {
        let s = ServerMessage::Snapshot {
            users: vec![UserPresence {
                username: name("a.b"),
                is_logged_in: false,
            }],
        };
        assert_eq!(
            s.to_json(),
            r#"{"type":"snapshot","users":[{"username":"a.b","is_logged_in":false}]}"#
        );
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn client_messages_parse_and_junk_is_ignored() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#),
            Some(ClientMessage::Ping)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"snapshot"}"#),
            Some(ClientMessage::Snapshot)
        );
        for junk in [
            "",
            "ping",
            "{}",
            r#"{"type":"drop_tables"}"#,
            "[1,2]",
            "\u{0}",
        ] {
            assert_eq!(ClientMessage::parse(junk), None, "{junk:?}");
        }
    }
}
