//! rollcall's integration tests: one binary, modules by topic.

mod browser;
mod conformance;
mod gateway;
mod input;
mod lambda_events;
mod multi_node;
mod presence;
