//! rollcall's local / self-hosted server: the shared handlers behind axum,
//! with Redis pub/sub carrying events between any number of processes.
//!
//! # Layout
//!
//! * [`app`] — [`app::router`] and [`app::serve`] (takes a bound listener).
//! * [`ws`] — the WebSocket `/users/`: authorize, upgrade, the socket loop.
//! * [`hub`] — this process's sockets and the fan-out to them.
//! * [`bus`] — one message per event between processes (in-process or Redis).
//! * [`pusher`] — the [`rollcall::push::Pusher`] over the bus.
//! * [`limiter`] — the node's rate limiter, on the node's backend.
//! * [`node`] — a process's parts and background tasks (leases, sweep).
//! * [`dev_redis`] — a private Redis for development (testcontainers or a
//!   `redis-server` child).
//! * [`process`] — child processes that die with us.
//! * [`cli`] — the program: environment, store, listener, signals.
//! * [`gateway`] — a local API Gateway stand-in running the Lambda
//!   functions' code path (`rollcall-gateway`).

pub mod app;
pub mod bus;
pub mod cli;
pub mod dev_redis;
pub mod gateway;
pub mod hub;
pub mod limiter;
pub mod node;
pub mod process;
pub mod pusher;
pub mod ws;
