//! rollcall's integration tests: one binary, modules by topic.

mod browser;
mod conformance;
mod input;
mod multi_node;
mod presence;
