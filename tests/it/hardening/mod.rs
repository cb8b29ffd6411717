//! Hostile input and bounded resources: rate limits (429) end to end on
//! the local server and the cloud path, socket limits (upgrades, tabs per
//! user, messages per socket, session expiry), the limiter conformance
//! suite on real Redis and DynamoDB, a full hasher (503), slow clients cut
//! off, the development Redis keeping its data, and Redis crashing or
//! rewinding under running servers (issue 9).

mod dev_redis;
mod http_limits;
mod limiter_conformance;
mod rate_limits;
mod redis_crash;
mod socket_limits;
