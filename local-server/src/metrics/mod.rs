//! [`Metrics`]: what an operator scrapes at `GET /metrics`, in the
//! Prometheus text format (0.0.4), through `prometheus-client`.
//!
//! Counters and gauges are atomics: the hot paths (a frame queued on every
//! socket, an entry applied) cost one atomic add per fan-out or batch, never
//! a lock per frame. Labelled families (close reasons, store operations,
//! rate-limit rules) take a read lock per increment and are only touched on
//! rare paths (a socket closing, a store error, a refusal). Gauges that
//! describe a state (open sockets, hashes waiting, users online) are read
//! from their owner when scraped.
//!
//! The store and the rate limiter are wrapped ([`store::CountingStore`],
//! [`limiter::CountingLimiter`]) so the shared handlers carry no metrics
//! code of their own.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub mod limiter;
pub mod store;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// One label, `name="value"`, with a value from the code (never a client's).
macro_rules! label {
    ($(#[$doc:meta])* $ty:ident, $field:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
        pub struct $ty {
            /// The label's value.
            pub $field: &'static str,
        }
    };
}

label!(
    /// Why a socket closed (`lagging`, `idle`, `client`, …).
    Reason,
    reason
);
label!(
    /// A store operation (`add_connection`, `read_log`, …).
    Op,
    op
);
label!(
    /// A rate-limit rule (`login:addr`, `ws:session`, `ws:message`, …).
    RuleName,
    rule
);
label!(
    /// How a log read failed (`error`, `timeout`).
    Failure,
    kind
);

/// Every metric of one process.
pub struct Metrics {
    registry: Registry,
    /// Sockets open in this process (set when scraped).
    pub sockets_open: Gauge,
    /// Sockets opened (upgraded and registered) since the start.
    pub sockets_opened: Counter,
    /// Sockets closed, by reason.
    pub sockets_closed: Family<Reason, Counter>,
    /// Upgrades refused before upgrading (401, 403, 429, 500), any reason.
    pub upgrades_refused: Counter,
    /// Log entries applied to the presence view.
    pub log_entries: Counter,
    /// Event frames queued on sockets (one per socket per event).
    pub frames_queued: Counter,
    /// From a batch of log entries read to each entry's frames queued on
    /// every socket, in seconds.
    pub fanout_seconds: Histogram,
    /// View reloads after a gap in the log (trimmed, Redis rewound or
    /// emptied): each sends every socket a fresh snapshot.
    pub view_reloads: Counter,
    /// Failed log reads, by kind (`error`, `timeout`: a read that hung).
    pub log_read_failures: Family<Failure, Counter>,
    /// Store calls that failed (the backend did not answer or erred), by
    /// operation.
    pub store_errors: Family<Op, Counter>,
    /// Requests and messages refused by a rate limit, by rule.
    pub rate_limited: Family<RuleName, Counter>,
    /// Rate-limiter calls that failed (the request was let through).
    pub limiter_errors: Counter,
    /// Control-bus subscriptions lost or found dead (then resubscribed).
    pub bus_reconnects: Counter,
    /// Password hashes running (set when scraped).
    pub hash_running: Gauge,
    /// Requests waiting for a hashing slot: the hash queue's depth (set
    /// when scraped).
    pub hash_waiting: Gauge,
    /// Users the presence view knows (set when scraped).
    pub users: Gauge,
    /// Users the presence view shows online (set when scraped).
    pub users_online: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh metrics, registered under the `rollcall_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rollcall");
        let m = Self {
            registry: Registry::default(),
            sockets_open: Gauge::default(),
            sockets_opened: Counter::default(),
            sockets_closed: Family::default(),
            upgrades_refused: Counter::default(),
            log_entries: Counter::default(),
            frames_queued: Counter::default(),
            fanout_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 9)),
            view_reloads: Counter::default(),
            log_read_failures: Family::default(),
            store_errors: Family::default(),
            rate_limited: Family::default(),
            limiter_errors: Counter::default(),
            bus_reconnects: Counter::default(),
            hash_running: Gauge::default(),
            hash_waiting: Gauge::default(),
            users: Gauge::default(),
            users_online: Gauge::default(),
        };
        let r = &mut registry;
        r.register(
            "sockets_open",
            "Sockets open in this process",
            m.sockets_open.clone(),
        );
        r.register("sockets_opened", "Sockets opened", m.sockets_opened.clone());
        r.register(
            "sockets_closed",
            "Sockets closed, by reason",
            m.sockets_closed.clone(),
        );
        r.register(
            "socket_upgrades_refused",
            "Socket upgrades refused before upgrading (401, 403, 429, 500)",
            m.upgrades_refused.clone(),
        );
        r.register(
            "log_entries_applied",
            "Event log entries applied to the presence view",
            m.log_entries.clone(),
        );
        r.register(
            "frames_queued",
            "Event frames queued on sockets (one per socket per event)",
            m.frames_queued.clone(),
        );
        r.register(
            "fanout_seconds",
            "From a batch of log entries read to each entry's frames queued on every socket",
            m.fanout_seconds.clone(),
        );
        r.register(
            "view_reloads",
            "Presence view reloads after a gap in the event log (every socket resynchronised)",
            m.view_reloads.clone(),
        );
        r.register(
            "log_read_failures",
            "Event log reads that failed or hung, by kind",
            m.log_read_failures.clone(),
        );
        r.register(
            "store_errors",
            "Store calls that failed, by operation",
            m.store_errors.clone(),
        );
        r.register(
            "rate_limited",
            "Requests and socket messages refused by a rate limit, by rule",
            m.rate_limited.clone(),
        );
        r.register(
            "rate_limiter_errors",
            "Rate limiter calls that failed (requests let through)",
            m.limiter_errors.clone(),
        );
        r.register(
            "bus_reconnects",
            "Control bus subscriptions lost or found dead, then resubscribed",
            m.bus_reconnects.clone(),
        );
        r.register(
            "hash_running",
            "Password hashes running",
            m.hash_running.clone(),
        );
        r.register(
            "hash_queue_depth",
            "Requests waiting for a password hashing slot",
            m.hash_waiting.clone(),
        );
        r.register("users", "Users the presence view knows", m.users.clone());
        r.register("users_online", "Users online", m.users_online.clone());
        Self { registry, ..m }
    }

    /// Counts a socket closed for `reason`.
    pub fn closed(&self, reason: &'static str) {
        self.sockets_closed.get_or_create(&Reason { reason }).inc();
    }

    /// Counts a refusal by rule `rule`.
    pub fn limited(&self, rule: &'static str) {
        self.rate_limited.get_or_create(&RuleName { rule }).inc();
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// A gauge's value from a count.
pub fn gauge(g: &Gauge, n: usize) {
    g.set(i64::try_from(n).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_rendered_with_its_help_and_labels() {
        let m = Metrics::new();
        m.frames_queued.inc_by(3);
        m.closed("lagging");
        m.limited("ws:session");
        m.fanout_seconds.observe(0.002);
        gauge(&m.sockets_open, 7);
        let text = m.render();
        for line in [
            "# TYPE rollcall_frames_queued_total counter",
            "rollcall_frames_queued_total 3",
            "rollcall_sockets_closed_total{reason=\"lagging\"} 1",
            "rollcall_rate_limited_total{rule=\"ws:session\"} 1",
            "rollcall_sockets_open 7",
            "rollcall_fanout_seconds_count 1",
            "# TYPE rollcall_hash_queue_depth gauge",
            "rollcall_view_reloads_total 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in:\n{text}");
        }
    }
}
