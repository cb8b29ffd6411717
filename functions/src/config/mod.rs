//! [`Config`]: every setting, read once from the environment (12-factor).
//!
//! [`Config::from_lookup`] takes a lookup function instead of reading the
//! process environment, so tests build configs without touching global state.
//! The README's configuration table lists the same variables and defaults.

use std::time::Duration;

use crate::domain::TrustedProxies;
use crate::limits::{RateLimits, Rule, SocketLimits};
use crate::security::origin::OriginPolicy;

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// Development default of the local server: start a private Redis
    /// (testcontainers if Docker is reachable, else `redis-server`).
    Auto,
    /// In-process memory: one process only, lost on exit.
    Memory,
    /// A Redis server at this URL (`redis://…` or `rediss://…`).
    Redis(String),
    /// DynamoDB (tables named in [`Config::tables`]).
    DynamoDb,
}

/// Every setting, with its default.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ROLLCALL_BIND` — address the local server listens on. Default `127.0.0.1:8000`.
    pub bind: String,
    /// `ROLLCALL_STORE` — `auto` (default), `memory`, `redis://…`, `dynamodb`.
    pub store: StoreChoice,
    /// `ROLLCALL_REDIS_PREFIX` — prefix of every Redis key and channel. Default `rollcall:`.
    pub redis_prefix: String,
    /// `ROLLCALL_ALLOWED_ORIGINS` — extra origins (comma-separated) allowed to
    /// post forms and open WebSockets; the request's own host is always
    /// allowed. Default: none.
    pub allowed_origins: OriginPolicy,
    /// `ROLLCALL_COOKIE_SECURE` — add `Secure` to cookies (set behind HTTPS). Default `false`.
    pub cookie_secure: bool,
    /// `ROLLCALL_SESSION_TTL_SECS` — session lifetime. Default 1209600 (two weeks).
    pub session_ttl: Duration,
    /// `ROLLCALL_WS_PING_SECS` — server → client ping period. Default 20.
    pub ws_ping_interval: Duration,
    /// `ROLLCALL_WS_IDLE_TIMEOUT_SECS` — a socket silent this long (no pong,
    /// no message) is closed and its user may go offline. Default 60.
    pub ws_idle_timeout: Duration,
    /// `ROLLCALL_LEASE_SECS` — how long a connection stays registered without
    /// being renewed; bounds how long a crashed server's users stay online.
    /// Default 90.
    pub lease: Duration,
    /// `ROLLCALL_SWEEP_SECS` — period of the expired-connection sweep. Default 15.
    pub sweep_interval: Duration,
    /// `ROLLCALL_CLIENT_PING_SECS` — how often the page pings (keeps API
    /// Gateway's 10-minute idle timer and the lease fresh). Default 30.
    pub client_ping_interval: Duration,
    /// `ROLLCALL_WS_URL` — the WebSocket URL the page opens; empty means the
    /// page's own host at `/users/` (local server). Default empty.
    pub ws_url: Option<String>,
    /// `ROLLCALL_HASH_CONCURRENCY` — Argon2 hashes allowed at once (19 MiB
    /// each). Default 4.
    pub hash_concurrency: usize,
    /// `ROLLCALL_USERS_TABLE`, `ROLLCALL_PRESENCE_TABLE`,
    /// `ROLLCALL_SESSIONS_TABLE`, `ROLLCALL_CONNECTIONS_TABLE` — the
    /// DynamoDB tables. Defaults `rollcall-users`, `rollcall-presence`,
    /// `rollcall-sessions`, `rollcall-connections`.
    pub tables: Tables,
    /// `ROLLCALL_APIGW_ENDPOINT` — the API Gateway Management API endpoint
    /// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`) the
    /// Lambda functions push through; required there. Default empty.
    pub apigw_endpoint: Option<String>,
    /// `ROLLCALL_PUSH_CONCURRENCY` — `PostToConnection` calls in flight per
    /// group shard being posted to. Default 64.
    pub push_concurrency: usize,
    /// `ROLLCALL_PUSH_QUEUE_URL` — Lambda functions: the SQS FIFO queue of
    /// events to post, one message per group shard. Default empty.
    pub push_queue_url: Option<String>,
    /// `ROLLCALL_SETTLE_QUEUE_URL` — Lambda functions: the SQS queue whose
    /// delayed messages end grace periods. Default empty.
    pub settle_queue_url: Option<String>,
    /// `ROLLCALL_CREATE_TABLES` — the local server and the gateway stand-in
    /// create the DynamoDB tables if missing (emulators, trials; in AWS the
    /// template owns them). Default `false`.
    pub create_tables: bool,
    /// `ROLLCALL_OFFLINE_GRACE_SECS` — when a user's last connection
    /// closes, they are announced offline only if none of theirs opens
    /// within this long (refreshes, blips and rolling restarts do not
    /// flicker); 0 announces at once. Log out and expired leases are always
    /// immediate. Default 5.
    pub offline_grace: Duration,
    /// `ROLLCALL_CLIENT_REFRESH_SECS` — the page replaces its socket this
    /// often (API Gateway cuts connections at 2 h), opening the new one
    /// before closing the old. Default 6600 (110 minutes).
    pub client_refresh: Duration,
    /// `ROLLCALL_EVENT_LOG_MAX` — entries the Redis event log keeps (about;
    /// a process further behind reloads). Default 100000.
    pub event_log_max: usize,
    /// `ROLLCALL_HASH_QUEUE` — requests allowed to wait for a hashing slot;
    /// beyond it a request gets 503 with `Retry-After`. Default 4 ×
    /// `ROLLCALL_HASH_CONCURRENCY`.
    pub hash_queue: usize,
    /// `ROLLCALL_LOGIN_RATE_PER_ADDR`, `ROLLCALL_LOGIN_FAILURES_PER_USER`,
    /// `ROLLCALL_SIGNUP_RATE_PER_ADDR`, `ROLLCALL_SIGNUP_RATE_PER_USER` —
    /// rate limits as `N/WINDOW` (`30/1m`) or `off`; see [`RateLimits`].
    pub rate_limits: RateLimits,
    /// `ROLLCALL_WS_UPGRADES_PER_SESSION`, `ROLLCALL_WS_UPGRADES_PER_ADDR`,
    /// `ROLLCALL_WS_MAX_PER_USER`, `ROLLCALL_WS_MESSAGE_RATE` — the
    /// WebSocket limits; see [`SocketLimits`].
    pub socket_limits: SocketLimits,
    /// `ROLLCALL_HTTP_TIMEOUT_SECS` — local server: longest a request may
    /// take, headers read to response written (408 after). Default 30.
    pub http_timeout: Duration,
    /// `ROLLCALL_HTTP_HEADER_TIMEOUT_SECS` — local server: time allowed to
    /// send a request's headers (slow clients are cut off). Default 10.
    pub http_header_timeout: Duration,
    /// `ROLLCALL_HTTP_MAX_CONCURRENCY` — local server: HTTP requests handled
    /// at once (upgraded WebSockets do not count); more wait. Default 256.
    pub http_max_concurrency: usize,
    /// `ROLLCALL_DATA_DIR` — local server: where the private development
    /// Redis keeps its append-only file. Default `$XDG_DATA_HOME/rollcall`
    /// (`~/.local/share/rollcall`).
    pub data_dir: Option<std::path::PathBuf>,
    /// `ROLLCALL_TRUSTED_PROXIES` — local server: reverse proxies (addresses
    /// or networks, comma-separated) whose `X-Forwarded-For` names the
    /// client for rate limits. Default none: the TCP peer is the client.
    pub trusted_proxies: TrustedProxies,
}

/// DynamoDB table names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// Accounts (key `username`).
    pub users: String,
    /// Per-user presence: counters, transition numbers, the online and
    /// pending indexes; its stream is the event log (key `username`).
    pub presence: String,
    /// Sessions (key `key`, TTL attribute `ttl`).
    pub sessions: String,
    /// Connections (key `id`, TTL attribute `ttl`, indexes `by_group`,
    /// `by_session`, `by_lease`).
    pub connections: String,
}

/// Which deployment reads a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The local server (and the gateway stand-in) only.
    Local,
    /// The Lambda functions too (the AWS template must set it).
    Lambda,
}

/// Every `ROLLCALL_*` variable [`Config::from_lookup`] reads, and who reads
/// it. The infra test checks the AWS template sets every [`Scope::Lambda`]
/// one; a unit test checks this list is exactly what is read.
pub const VARIABLES: &[(&str, Scope)] = &[
    ("ROLLCALL_BIND", Scope::Local),
    ("ROLLCALL_STORE", Scope::Lambda),
    ("ROLLCALL_REDIS_PREFIX", Scope::Lambda),
    ("ROLLCALL_ALLOWED_ORIGINS", Scope::Lambda),
    ("ROLLCALL_COOKIE_SECURE", Scope::Lambda),
    ("ROLLCALL_SESSION_TTL_SECS", Scope::Lambda),
    ("ROLLCALL_WS_PING_SECS", Scope::Local),
    ("ROLLCALL_WS_IDLE_TIMEOUT_SECS", Scope::Local),
    ("ROLLCALL_LEASE_SECS", Scope::Lambda),
    ("ROLLCALL_SWEEP_SECS", Scope::Local),
    ("ROLLCALL_CLIENT_PING_SECS", Scope::Lambda),
    ("ROLLCALL_WS_URL", Scope::Lambda),
    ("ROLLCALL_HASH_CONCURRENCY", Scope::Lambda),
    ("ROLLCALL_USERS_TABLE", Scope::Lambda),
    ("ROLLCALL_PRESENCE_TABLE", Scope::Lambda),
    ("ROLLCALL_SESSIONS_TABLE", Scope::Lambda),
    ("ROLLCALL_CONNECTIONS_TABLE", Scope::Lambda),
    ("ROLLCALL_APIGW_ENDPOINT", Scope::Lambda),
    ("ROLLCALL_PUSH_CONCURRENCY", Scope::Lambda),
    ("ROLLCALL_PUSH_QUEUE_URL", Scope::Lambda),
    ("ROLLCALL_SETTLE_QUEUE_URL", Scope::Lambda),
    ("ROLLCALL_CREATE_TABLES", Scope::Local),
    ("ROLLCALL_OFFLINE_GRACE_SECS", Scope::Lambda),
    ("ROLLCALL_EVENT_LOG_MAX", Scope::Lambda),
    ("ROLLCALL_CLIENT_REFRESH_SECS", Scope::Lambda),
    ("ROLLCALL_HASH_QUEUE", Scope::Lambda),
    ("ROLLCALL_LOGIN_RATE_PER_ADDR", Scope::Lambda),
    ("ROLLCALL_LOGIN_FAILURES_PER_USER", Scope::Lambda),
    ("ROLLCALL_SIGNUP_RATE_PER_ADDR", Scope::Lambda),
    ("ROLLCALL_SIGNUP_RATE_PER_USER", Scope::Lambda),
    ("ROLLCALL_WS_UPGRADES_PER_SESSION", Scope::Lambda),
    ("ROLLCALL_WS_UPGRADES_PER_ADDR", Scope::Lambda),
    ("ROLLCALL_WS_TICKETS_PER_SESSION", Scope::Lambda),
    ("ROLLCALL_WS_TICKETS_PER_ADDR", Scope::Lambda),
    ("ROLLCALL_WS_MAX_PER_USER", Scope::Lambda),
    ("ROLLCALL_WS_MESSAGE_RATE", Scope::Lambda),
    ("ROLLCALL_HTTP_TIMEOUT_SECS", Scope::Local),
    ("ROLLCALL_HTTP_HEADER_TIMEOUT_SECS", Scope::Local),
    ("ROLLCALL_HTTP_MAX_CONCURRENCY", Scope::Local),
    ("ROLLCALL_DATA_DIR", Scope::Local),
    ("ROLLCALL_TRUSTED_PROXIES", Scope::Local),
];

/// A variable is set to something that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The variable's name.
    pub var: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `lookup` (a missing or empty value means the default).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let secs = |var: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match get(var) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => parse_duration(&v).ok_or_else(|| ConfigError {
                    var,
                    message: format!("{v:?} is not a number of seconds (e.g. 30 or 0.5)"),
                }),
            }
        };
        let flag = |var: &'static str| -> Result<bool, ConfigError> {
            match get(var).as_deref() {
                None | Some("0" | "false" | "no" | "off") => Ok(false),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some(v) => Err(ConfigError {
                    var,
                    message: format!("{v:?} is not true or false"),
                }),
            }
        };
        let store = match get("ROLLCALL_STORE").as_deref() {
            None | Some("auto") => StoreChoice::Auto,
            Some("memory") => StoreChoice::Memory,
            Some("dynamodb") => StoreChoice::DynamoDb,
            Some(url) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                StoreChoice::Redis(url.to_owned())
            }
            Some(other) => {
                return Err(ConfigError {
                    var: "ROLLCALL_STORE",
                    message: format!(
                        "{other:?} is not one of auto, memory, dynamodb, redis://host:port"
                    ),
                });
            }
        };
        let allowed_origins = OriginPolicy::parse(
            &get("ROLLCALL_ALLOWED_ORIGINS").unwrap_or_default(),
        )
        .map_err(|message| ConfigError {
            var: "ROLLCALL_ALLOWED_ORIGINS",
            message,
        })?;
        let count = |var: &'static str, default: usize| -> Result<usize, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ConfigError {
                        var,
                        message: format!("{v:?} is not a positive whole number"),
                    }),
            }
        };
        let hash_concurrency = count("ROLLCALL_HASH_CONCURRENCY", 4)?;
        let defaults = RateLimits::default();
        let rule = |var: &'static str, default: Rule| -> Result<Rule, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => Rule::parse(&v).map_err(|message| ConfigError { var, message }),
            }
        };
        let rate_limits = RateLimits {
            login_per_addr: rule("ROLLCALL_LOGIN_RATE_PER_ADDR", defaults.login_per_addr)?,
            login_failures_per_user: rule(
                "ROLLCALL_LOGIN_FAILURES_PER_USER",
                defaults.login_failures_per_user,
            )?,
            signup_per_addr: rule("ROLLCALL_SIGNUP_RATE_PER_ADDR", defaults.signup_per_addr)?,
            signup_per_user: rule("ROLLCALL_SIGNUP_RATE_PER_USER", defaults.signup_per_user)?,
        };
        let client_ping_interval = secs("ROLLCALL_CLIENT_PING_SECS", 30)?;
        let ws = SocketLimits::defaults(client_ping_interval);
        let socket_limits = SocketLimits {
            upgrades_per_session: rule(
                "ROLLCALL_WS_UPGRADES_PER_SESSION",
                ws.upgrades_per_session,
            )?,
            upgrades_per_addr: rule("ROLLCALL_WS_UPGRADES_PER_ADDR", ws.upgrades_per_addr)?,
            tickets_per_session: rule("ROLLCALL_WS_TICKETS_PER_SESSION", ws.tickets_per_session)?,
            tickets_per_addr: rule("ROLLCALL_WS_TICKETS_PER_ADDR", ws.tickets_per_addr)?,
            max_per_user: match get("ROLLCALL_WS_MAX_PER_USER") {
                None => ws.max_per_user,
                Some(v) if v.eq_ignore_ascii_case("off") => None,
                Some(v) => Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| ConfigError {
                            var: "ROLLCALL_WS_MAX_PER_USER",
                            message: format!("{v:?} is not a positive whole number or off"),
                        })?,
                ),
            },
            messages: rule("ROLLCALL_WS_MESSAGE_RATE", ws.messages)?,
        };
        let config = Self {
            bind: get("ROLLCALL_BIND").unwrap_or_else(|| "127.0.0.1:8000".into()),
            store,
            redis_prefix: get("ROLLCALL_REDIS_PREFIX").unwrap_or_else(|| "rollcall:".into()),
            allowed_origins,
            cookie_secure: flag("ROLLCALL_COOKIE_SECURE")?,
            session_ttl: secs("ROLLCALL_SESSION_TTL_SECS", 14 * 24 * 3600)?,
            ws_ping_interval: secs("ROLLCALL_WS_PING_SECS", 20)?,
            ws_idle_timeout: secs("ROLLCALL_WS_IDLE_TIMEOUT_SECS", 60)?,
            lease: secs("ROLLCALL_LEASE_SECS", 90)?,
            sweep_interval: secs("ROLLCALL_SWEEP_SECS", 15)?,
            client_ping_interval,
            ws_url: get("ROLLCALL_WS_URL"),
            hash_concurrency,
            tables: Tables {
                users: get("ROLLCALL_USERS_TABLE").unwrap_or_else(|| "rollcall-users".into()),
                presence: get("ROLLCALL_PRESENCE_TABLE")
                    .unwrap_or_else(|| "rollcall-presence".into()),
                sessions: get("ROLLCALL_SESSIONS_TABLE")
                    .unwrap_or_else(|| "rollcall-sessions".into()),
                connections: get("ROLLCALL_CONNECTIONS_TABLE")
                    .unwrap_or_else(|| "rollcall-connections".into()),
            },
            apigw_endpoint: get("ROLLCALL_APIGW_ENDPOINT"),
            push_concurrency: count("ROLLCALL_PUSH_CONCURRENCY", 64)?,
            push_queue_url: get("ROLLCALL_PUSH_QUEUE_URL"),
            settle_queue_url: get("ROLLCALL_SETTLE_QUEUE_URL"),
            create_tables: flag("ROLLCALL_CREATE_TABLES")?,
            offline_grace: secs("ROLLCALL_OFFLINE_GRACE_SECS", 5)?,
            event_log_max: count("ROLLCALL_EVENT_LOG_MAX", 100_000)?,
            client_refresh: secs("ROLLCALL_CLIENT_REFRESH_SECS", 6600)?,
            hash_queue: count("ROLLCALL_HASH_QUEUE", hash_concurrency.saturating_mul(4))?,
            rate_limits,
            socket_limits,
            http_timeout: secs("ROLLCALL_HTTP_TIMEOUT_SECS", 30)?,
            http_header_timeout: secs("ROLLCALL_HTTP_HEADER_TIMEOUT_SECS", 10)?,
            http_max_concurrency: count("ROLLCALL_HTTP_MAX_CONCURRENCY", 256)?,
            data_dir: get("ROLLCALL_DATA_DIR").map(Into::into),
            trusted_proxies: TrustedProxies::parse(
                &get("ROLLCALL_TRUSTED_PROXIES").unwrap_or_default(),
            )
            .map_err(|message| ConfigError {
                var: "ROLLCALL_TRUSTED_PROXIES",
                message,
            })?,
        };
        config.check()?;
        Ok(config)
    }

    /// Defaults for tests and examples (every variable unset, store memory).
    pub fn for_tests() -> Self {
        let mut c = Self::from_lookup(|_| None).unwrap_or_else(|e| unreachable!("{e}"));
        c.store = StoreChoice::Memory;
        c
    }

    fn check(&self) -> Result<(), ConfigError> {
        let zero = |var, d: Duration| {
            if d.is_zero() {
                Err(ConfigError {
                    var,
                    message: "must be greater than zero".into(),
                })
            } else {
                Ok(())
            }
        };
        zero("ROLLCALL_WS_PING_SECS", self.ws_ping_interval)?;
        zero("ROLLCALL_WS_IDLE_TIMEOUT_SECS", self.ws_idle_timeout)?;
        zero("ROLLCALL_SWEEP_SECS", self.sweep_interval)?;
        zero("ROLLCALL_CLIENT_PING_SECS", self.client_ping_interval)?;
        zero("ROLLCALL_SESSION_TTL_SECS", self.session_ttl)?;
        zero("ROLLCALL_CLIENT_REFRESH_SECS", self.client_refresh)?;
        zero("ROLLCALL_HTTP_TIMEOUT_SECS", self.http_timeout)?;
        zero(
            "ROLLCALL_HTTP_HEADER_TIMEOUT_SECS",
            self.http_header_timeout,
        )?;
        // On the cloud path only the page's pings renew a connection's
        // lease, and only every other one does (`handlers::ws::renewal_due`):
        // renewals can be up to three ping periods apart. The local server
        // renews every lease/3 by itself, which this also covers.
        if self.lease < self.client_ping_interval * 3 {
            return Err(ConfigError {
                var: "ROLLCALL_LEASE_SECS",
                message: format!(
                    "must be at least three times ROLLCALL_CLIENT_PING_SECS (every other ping of \
                     the page renews the lease): ROLLCALL_LEASE_SECS is {}s, \
                     ROLLCALL_CLIENT_PING_SECS {}s",
                    self.lease.as_secs_f64(),
                    self.client_ping_interval.as_secs_f64()
                ),
            });
        }
        if !self.socket_limits.fits_the_page(self.client_ping_interval) {
            let m = self.socket_limits.messages;
            return Err(ConfigError {
                var: "ROLLCALL_WS_MESSAGE_RATE",
                message: format!(
                    "{}/{}s leaves the page no room: allow at least 4 messages and twice its \
                     ping rate (ROLLCALL_CLIENT_PING_SECS is {}s), or set it off",
                    m.limit,
                    m.window.as_secs_f64(),
                    self.client_ping_interval.as_secs_f64()
                ),
            });
        }
        Ok(())
    }
}

/// Seconds as a whole or decimal number (`30`, `0.5`).
fn parse_duration(v: &str) -> Option<Duration> {
    let secs: f64 = v.parse().ok()?;
    (0.0..1e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests;
