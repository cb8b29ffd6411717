//! What each event costs on the cloud code path, counted: the Lambda
//! functions' adapters behind the local API Gateway stand-in, on DynamoDB
//! served by moto, with every DynamoDB request recorded by an SDK
//! interceptor (operation, table, index, consistency) and tagged with the
//! function that sent it (`gateway::current_function`), every change of a
//! presence item read back from its stream (for the index writes it
//! made), and the stand-in's own counters for invocations and
//! `@connections` calls. The functions run with the template's offline
//! grace period, as in AWS: a last tab closing announces nothing, the
//! sweep announces the offline once the grace has passed.
//!
//! The tests assert the exact calls per event, so the numbers in
//! `infra/README.md` ("Costs") are the code's; they print the table the
//! README shows (`cargo test -p rollcall-tests --test it costs -- --nocapture`).
//! Every call observed is also checked against the IAM role the template
//! gives the function that made it: a missing permission fails here, not in
//! production.
//!
//! # Layout
//!
//! * [`recorder`] — the SDK interceptor recording every DynamoDB request.
//! * [`stream`] — the presence table's stream, read back for the index
//!   writes each presence write makes.
//! * [`cloud`] — [`cloud::Cloud`]: the functions behind the stand-in on
//!   fresh moto tables, with counters to mark and settle, and its clients.
//! * [`pricing`] — request units, list prices, and the printed table.
//! * [`checks`] — calls against the roles, and their shape for asserting.
//! * Scenarios: [`per_user`] (each user's own events), [`broadcast`] (an
//!   event watched by many pages) and [`dead_connections`] (found by a post
//!   or by the sweep).

mod broadcast;
mod checks;
mod cloud;
mod dead_connections;
mod per_user;
mod pricing;
mod recorder;
mod stream;
