//! What a process knows of presence, and where handlers read it from.
//!
//! * [`view::PresenceView`] — a process's own copy: every user with their
//!   transition number, the online set, the users who joined lately. Loaded
//!   once from the store (a consistent [`crate::store::OnlineCut`] plus the
//!   user list), then kept current by applying the store's event log in
//!   order. Snapshots and the page's list are serialised from it once per
//!   change and shared by every socket and page that needs them: a socket
//!   connect or a snapshot costs no store read, whatever the number of
//!   users. The local server runs one per process.
//! * [`source::PresenceSource`] — what the handlers need (the online list,
//!   a page of users, the users who joined since a time, the page's list),
//!   answered from a view ([`view::PresenceView`]) or, in a process that has
//!   none (a Lambda function), from the store by key
//!   ([`source::StoreSource`]).

pub mod source;
pub mod view;

pub use source::{ListHead, LiveSource, PresenceSource, StoreSource};
pub use view::PresenceView;

/// Users listed in a `joined` message at most; beyond that the page reloads
/// its list.
pub const MAX_JOINED: usize = 1000;
