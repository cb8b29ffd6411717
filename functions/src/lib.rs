//! rollcall's core: everything the product does, independent of how requests
//! arrive. Both front ends — the Lambda functions (`src/bin/`) and the axum
//! local server (`local-server/`) — call the very same handlers here, so the
//! two deployments are equivalent by construction.
//!
//! # Layout
//!
//! * [`domain`] — types that parse: [`domain::Username`], [`domain::Password`],
//!   [`domain::SessionToken`], [`domain::ConnectionId`], presence events.
//! * [`config`] — one [`config::Config`], read once from the environment.
//! * [`security`] — Argon2id hashing, CSRF tokens, cookies, Origin checks.
//! * [`store`] — the [`store::Store`] trait (state and the ordered event
//!   log), its backends (memory, Redis, DynamoDB) and the conformance suite
//!   every backend passes.
//! * [`presence`] — what a process knows of presence: the
//!   [`presence::PresenceView`] kept current from the store's event log,
//!   and [`presence::PresenceSource`], where handlers read presence from.
//! * [`queue`] — the cloud's push and settle queues (fan-out outside the
//!   request, the grace period's timer).
//! * [`push`] — the [`push::Pusher`] trait that delivers events to sockets.
//! * [`handlers`] — one handler per route (pages, JSON API, WebSocket
//!   connect/disconnect/default, sweep), over neutral `http` types.
//! * [`limits`] — the [`limits::RateLimiter`] trait, its rules and backends
//!   (memory, Redis, DynamoDB) and their conformance suite.
//! * [`context`] — [`context::AppContext`]: store + pusher + config, built once.
//! * [`error`] — [`error::AppError`] and the one place errors become responses.
//! * [`pages`] — the askama page types and the page's script.
//! * `lambda` — `lambda_http` adapters for the functions in `src/bin/`
//!   (feature `lambda`).

pub mod config;
pub mod context;
pub mod domain;
pub mod error;
pub mod handlers;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod limits;
pub mod pages;
pub mod presence;
pub mod push;
pub mod queue;
pub mod security;
pub mod store;

pub use context::AppContext;
pub use error::AppError;

#[cfg(test)]
mod proptests;
