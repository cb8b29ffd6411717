//! Clients that behave like a browser tab: [`Visitor`] (HTTP with cookies
//! and CSRF tokens) and [`Socket`] (the WebSocket, reading presence events).
//!
//! # Layout
//!
//! * `visitor.rs` — [`Visitor`] and its [`Reply`]s.
//! * `page.rs` — what tests read off a page: [`csrf_token`],
//!   [`listed_users`].
//! * `socket.rs` — [`Socket`], [`users_of`] a snapshot, [`EVENT_WAIT`],
//!   [`refusal`] of an upgrade.
//! * `model.rs` — [`Watcher`]: a page's model of who is online, fed by its
//!   socket, and what it has [`Seen`].

mod model;
mod page;
mod socket;
mod visitor;

pub use model::{Audit, Seen, Watcher};
pub use page::{csrf_token, listed_users};
pub use socket::{EVENT_WAIT, Socket, refusal, users_of};
pub use visitor::{Reply, Visitor};
