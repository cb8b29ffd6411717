//! Domain types. Each is made only by parsing, so a value of the type is
//! valid by construction ("parse, don't validate").
//!
//! * [`Username`] — NFKC-normalised, 1–150 letters/digits/`@.+-_`.
//! * [`Password`] — a candidate password that passed the rules; a secret.
//! * [`SessionToken`] / [`SessionKey`] — the bearer secret and the hash of it
//!   that the store keeps.
//! * [`ConnectionId`] — an API Gateway or local WebSocket connection id.
//! * [`PresenceEvent`], [`UserPresence`], [`ServerMessage`] — what the server
//!   says to sockets; [`LogEvent`] — an entry of the store's event log.
//! * [`ClientAddr`] — the address a request came from (for rate limits);
//!   [`TrustedProxies`] finds it behind reverse proxies.
//! * [`NamePrefix`] — the start of a name, what the user list is searched by.
//! * [`Timestamp`] — milliseconds since the Unix epoch.

mod client_addr;
mod connection;
mod event;
mod password;
mod prefix;
mod proxies;
mod session;
mod time;
mod username;

pub use client_addr::{ClientAddr, ClientAddrError};
pub use connection::{ConnectionId, ConnectionIdError};
pub use event::{ClientMessage, LogEvent, PresenceEvent, ServerMessage, UserPresence};
pub use password::{MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, Password, PasswordError};
pub use prefix::{NamePrefix, PageStart};
pub use proxies::TrustedProxies;
pub use session::{SessionKey, SessionToken, SessionTokenError};
pub use time::Timestamp;
pub use username::{MAX_USERNAME_CHARS, Username, UsernameError};
