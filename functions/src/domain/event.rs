//! What travels over the WebSocket.
//!
//! Server → client: presence events with the Django Channels tutorial's
//! fields, `{"username": "NAME", "is_logged_in": true}`, plus the user's
//! transition number `seq`; every other message carries a `"type"`
//! (`snapshot`, `joined`, `pong`, `logged_out`). Client → server: optional
//! `{"type": "ping"}` / `{"type": "snapshot", "since": MS}`; anything else is
//! ignored.

use serde::{Deserialize, Serialize};

use super::{Timestamp, Username};

/// One user went online or offline (or, with `is_logged_in: false` and
/// `seq == 0`, just signed up).
///
/// `seq` is the store's per-user transition counter: consecutive per user,
/// odd while online, even while offline. It goes to clients, so that a page
/// keeps the newest state of each user whichever path delivered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEvent {
    /// Whose presence changed.
    pub username: Username,
    /// Online (`true`) or offline (`false`) after the change.
    pub is_logged_in: bool,
    /// Per-user transition number (0: the sign-up announcement).
    #[serde(default)]
    pub seq: u64,
    /// On an offline transition: when the store took the user offline (ms
    /// since the epoch). Absent otherwise, and omitted from the JSON then,
    /// so the tutorial's clients see their two fields (and `seq`) as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
}

impl PresenceEvent {
    /// The event of transition `seq` (online iff odd); `last_seen` is kept
    /// only on an offline one.
    pub fn transition(username: Username, seq: u64, last_seen: Option<Timestamp>) -> Self {
        let is_logged_in = seq % 2 == 1;
        Self {
            username,
            is_logged_in,
            seq,
            last_seen: if is_logged_in { None } else { last_seen },
        }
    }

    /// The same event without its `last_seen` (comparing events whose time
    /// the store chose).
    pub fn without_last_seen(&self) -> Self {
        Self {
            last_seen: None,
            ..self.clone()
        }
    }

    /// The wire form: `{"username":…,"is_logged_in":…,"seq":…}`.
    pub fn to_json(&self) -> String {
        json(self)
    }

    /// The announcement of a new user (offline, no transition yet).
    pub fn joined(username: Username) -> Self {
        Self {
            username,
            is_logged_in: false,
            seq: 0,
            last_seen: None,
        }
    }
}

/// A user and whether they are online: a row of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPresence {
    /// The user.
    pub username: Username,
    /// Whether they are online (an odd `seq`).
    pub is_logged_in: bool,
    /// Their transition number (0: never online).
    #[serde(default)]
    pub seq: u64,
    /// While offline, when they last went offline (ms since the epoch);
    /// absent (and omitted from the JSON) while online or if never seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
}

impl UserPresence {
    /// A user at transition `seq`: online iff `seq` is odd.
    pub fn at(username: Username, seq: u64) -> Self {
        Self {
            username,
            is_logged_in: seq % 2 == 1,
            seq,
            last_seen: None,
        }
    }

    /// With `last_seen`, kept only while offline.
    pub fn seen(mut self, last_seen: Option<Timestamp>) -> Self {
        self.last_seen = if self.is_logged_in { None } else { last_seen };
        self
    }

    /// "last seen 5 min ago" as of `now`, if known.
    pub fn last_seen_ago(&self, now: Timestamp) -> Option<String> {
        self.last_seen.map(|t| t.last_seen_ago(now))
    }

    /// The exact time of `last_seen`, for people (UTC), if known.
    pub fn last_seen_utc(&self) -> Option<String> {
        self.last_seen.map(Timestamp::to_human_utc)
    }
}

/// One entry of the store's ordered event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// A presence transition (or, with `seq == 0`, never).
    Presence(PresenceEvent),
    /// A user signed up.
    Joined {
        /// The new user.
        username: Username,
        /// When the account was made.
        created_at: Timestamp,
    },
}

impl LogEvent {
    /// What sockets are sent for this entry.
    pub fn to_presence(&self) -> PresenceEvent {
        match self {
            Self::Presence(e) => e.clone(),
            Self::Joined { username, .. } => PresenceEvent::joined(username.clone()),
        }
    }
}

/// A message from server to client other than a presence event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Who is online, sent first on every (re)connection so the page
    /// converges to the truth whatever it missed. Every user not listed is
    /// offline.
    Snapshot {
        /// `true` when the snapshot is delivered in order with the events
        /// around it (the local server): the page takes it as the truth,
        /// transition numbers included. `false` (the cloud, where a
        /// snapshot and an event may cross): the page keeps, per user,
        /// whichever of the two has the higher `seq`.
        reset: bool,
        /// The server time (ms since the epoch) the snapshot is as of: a
        /// client asks for the users who joined after it when it
        /// reconnects.
        at: u64,
        /// The online users, sorted by name.
        users: Vec<UserPresence>,
        /// How many users are registered, as of the snapshot (when the
        /// server knows it for free: the local server's view; the page's
        /// count "N online · M users"). Omitted when unknown.
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        /// More parts of this snapshot follow (a large one is split so each
        /// message stays under API Gateway's 32 KB frame): the client
        /// takes "everyone not listed is offline" from the last part only.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// Users who signed up after the time the client gave (`since`), so a
    /// page that was disconnected meanwhile lists them.
    Joined {
        /// Their names, oldest first (each is offline unless the snapshot
        /// lists them).
        users: Vec<Username>,
        /// More signed up than one message carries: the page reloads its
        /// list.
        truncated: bool,
    },
    /// Reply to a client `ping`.
    Pong,
}

impl ServerMessage {
    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        json(self)
    }

    /// A snapshot of `users` as parts of at most `max_bytes` of JSON each
    /// (all but the last say `more`; an empty snapshot is one part). A
    /// large snapshot in one message would cost every socket a send buffer
    /// its size, and API Gateway takes at most 32 KB per frame.
    pub fn snapshot_parts(
        reset: bool,
        at: u64,
        users: Vec<UserPresence>,
        total: Option<u64>,
        max_bytes: usize,
    ) -> Vec<ServerMessage> {
        // The envelope (type, reset, at, total, more), and each row with its comma.
        const ENVELOPE: usize = 128;
        let row = |u: &UserPresence| serde_json::to_string(u).map_or(512, |j| j.len() + 1);
        let mut parts = Vec::new();
        let mut current = Vec::new();
        let mut size = ENVELOPE;
        for u in users {
            let n = row(&u);
            if !current.is_empty() && size + n > max_bytes {
                parts.push(std::mem::take(&mut current));
                size = ENVELOPE;
            }
            size += n;
            current.push(u);
        }
        parts.push(current);
        let last = parts.len() - 1;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, users)| ServerMessage::Snapshot {
                reset,
                at,
                users,
                total: if i == last { total } else { None },
                more: i < last,
            })
            .collect()
    }
}

/// What a client may send. Unknown or malformed input parses to `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Keep-alive; refreshes the connection's lease.
    Ping,
    /// Ask for a fresh snapshot (and the users who joined after `since`,
    /// milliseconds since the epoch, if given).
    Snapshot {
        /// The time of the client's list.
        #[serde(default)]
        since: Option<u64>,
    },
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
    fn presence_events_keep_the_tutorial_fields_and_add_the_transition_number() {
        let e = PresenceEvent::transition(name("josé"), 7, Some(Timestamp::from_millis(5)));
        assert_eq!(
            e.to_json(),
            r#"{"username":"josé","is_logged_in":true,"seq":7}"#
        );
        assert_eq!(
            PresenceEvent::joined(name("a")).to_json(),
            r#"{"username":"a","is_logged_in":false,"seq":0}"#
        );
        // An offline transition says when; old clients ignore the field.
        assert_eq!(
            PresenceEvent::transition(
                name("a"),
                8,
                Some(Timestamp::from_millis(1_795_000_000_123))
            )
            .to_json(),
            r#"{"username":"a","is_logged_in":false,"seq":8,"last_seen":1795000000123}"#
        );
        assert_eq!(
            serde_json::from_str::<PresenceEvent>(r#"{"username":"a","is_logged_in":false}"#)
                .unwrap(),
            PresenceEvent::transition(name("a"), 0, None)
        );
        assert_eq!(
            serde_json::to_string(
                &UserPresence::at(name("a"), 2).seen(Some(Timestamp::from_millis(9)))
            )
            .unwrap(),
            r#"{"username":"a","is_logged_in":false,"seq":2,"last_seen":9}"#
        );
        // Online: no last seen, whatever was given.
        assert_eq!(
            UserPresence::at(name("a"), 3)
                .seen(Some(Timestamp::from_millis(9)))
                .last_seen,
            None
        );
    }

    #[test]
    fn other_messages_carry_a_type() {
        let s = ServerMessage::Snapshot {
            reset: true,
            at: 5,
            users: vec![UserPresence::at(name("a.b"), 3)],
            total: None,
            more: false,
        };
        assert_eq!(
            s.to_json(),
            r#"{"type":"snapshot","reset":true,"at":5,"users":[{"username":"a.b","is_logged_in":true,"seq":3}]}"#
        );
        let j = ServerMessage::Joined {
            users: vec![name("n")],
            truncated: false,
        };
        assert_eq!(
            j.to_json(),
            r#"{"type":"joined","users":["n"],"truncated":false}"#
        );
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
    }

    #[test]
    fn online_is_an_odd_transition_number() {
        assert!(!UserPresence::at(name("a"), 0).is_logged_in);
        assert!(UserPresence::at(name("a"), 1).is_logged_in);
        assert!(!UserPresence::at(name("a"), 2).is_logged_in);
    }

    #[test]
    fn client_messages_parse_and_junk_is_ignored() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"ping"}"#),
            Some(ClientMessage::Ping)
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"snapshot"}"#),
            Some(ClientMessage::Snapshot { since: None })
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"snapshot","since":17}"#),
            Some(ClientMessage::Snapshot { since: Some(17) })
        );
        for junk in [
            "",
            "ping",
            "{}",
            r#"{"type":"drop_tables"}"#,
            r#"{"type":"snapshot","since":-1}"#,
            r#"{"type":"snapshot","since":"x"}"#,
            "[1,2]",
            "\u{0}",
        ] {
            assert_eq!(ClientMessage::parse(junk), None, "{junk:?}");
        }
    }
}
