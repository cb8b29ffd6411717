//! The AWS template (`infra/template.yaml`) against the code it deploys:
//! every Lambda binary is a function and every function a binary; every
//! variable the functions read (`Scope::Lambda` in `rollcall::config`) is
//! set for every function, to values `Config` accepts, and no unknown one;
//! the DynamoDB tables are exactly what the store creates; the routes reach
//! the functions that serve them; the fan-out's queues, event source
//! mappings and alarms are wired to the right functions; and
//! `infra/README.md`'s permission table is the template's.
//!
//! The template is read with `serde_yaml_ng`, which keeps CloudFormation's
//! short-form tags (`!Ref`, `!Sub`, `!If`, …) as tagged values; [`template`]
//! turns them into the JSON long form (`{"Ref": …}`, `{"Fn::Sub": …}`), and
//! [`Eval`] resolves intrinsics for given parameter values, naming resources
//! by their logical ids (table `UsersTable`, API `WebSocketApi`, ARNs in
//! account `123456789012`, region `us-east-1`). `costs` uses the same
//! helpers to check every call it observes against the roles.
//!
//! # Layout
//!
//! * [`model`] — reading the template: resources, functions.
//! * [`eval`] — [`Eval`]: intrinsics, conditions, environments.
//! * [`iam`] — roles' statements, IAM globs, the ARNs calls are checked on.
//! * Tests by topic: [`functions`] (binaries and how they are built),
//!   [`environment`], [`tables`], [`apis`] (routes, throttling, logs),
//!   [`fanout`] (queues, mappings, alarms) and [`permissions`] (who may
//!   queue and post, the README's table).

mod apis;
mod environment;
mod eval;
mod fanout;
mod functions;
mod iam;
mod model;
mod permissions;
mod tables;

pub(crate) use eval::{Eval, queue_arn};
pub(crate) use iam::{allows, connection_arn, table_arn};
pub(crate) use model::{function, resource, template};

/// A pair of owned strings, as the tests compare them.
fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}
