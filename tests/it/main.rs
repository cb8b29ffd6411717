//! rollcall's integration tests: one binary, modules by topic.

mod bench;
mod browser;
mod cloud;
mod conformance;
mod costs;
mod gateway;
mod grace;
mod hardening;
mod house;
mod infra;
mod input;
mod lambda_events;
mod multi_node;
mod page;
mod presence;
