//! rollcall's local / self-hosted server: the shared handlers behind axum,
//! with Redis pub/sub carrying events between any number of processes.
//!
//! # Layout
//!
//! * [`app`] — [`app::router`] and [`app::serve`] (takes a bound listener).
//! * [`ws`] — the WebSocket `/users/`: authorize and register, upgrade, the
//!   socket loop.
//! * [`feed`] — follows the store's event log into this process's presence
//!   view ([`rollcall::presence::PresenceView`]) and out to its sockets.
//! * [`hub`] — this process's sockets and the fan-out to them.
//! * [`metrics`] — what `GET /metrics` shows (Prometheus text), and the
//!   store and limiter wrappers that count failures and refusals.
//! * [`bus`] — control messages between processes (close these sockets,
//!   send that one a text), in-process or over Redis pub/sub.
//! * [`pusher`] — the [`rollcall::push::Pusher`] over the bus.
//! * [`node`] — a process's parts and background tasks (feed, leases,
//!   grace settling, sweep).
//! * `dev_redis` — a private Redis for development (testcontainers or a
//!   `redis-server` child; feature `dev-redis`, on by default).
//! * [`process`] — child processes that die with us.
//! * [`cli`] — the program: environment, store, listener, signals.
//! * `gateway` — a local API Gateway stand-in running the Lambda
//!   functions' code path (`rollcall-gateway`; feature `gateway`).
//!
//! A production build leaves both out: `cargo build --release -p
//! rollcall-local-server --no-default-features [--features dynamodb]`.

pub mod app;
pub mod bus;
pub mod cli;
#[cfg(feature = "dev-redis")]
pub mod dev_redis;
pub mod feed;
#[cfg(feature = "gateway")]
pub mod gateway;
pub mod hub;
pub mod metrics;
pub mod node;
pub mod process;
pub mod pusher;
pub mod ws;
