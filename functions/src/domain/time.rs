//! [`Timestamp`]: wall-clock milliseconds, the unit every store keeps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (UTC); a JSON number of them on the
/// wire.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// A timestamp from milliseconds since the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch (DynamoDB TTL attributes use these).
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// `self + d`, saturating.
    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// RFC 3339 form, e.g. `2026-11-23T21:07:01.123Z`.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| self.0.to_string())
    }

    /// How long before `now` this was, in words: "last seen just now"
    /// (under a minute, or in the future: clocks differ), "last seen 5 min
    /// ago", "last seen 3 h ago", "last seen 2 days ago". The page's script
    /// says the same (`templates/rollcall.js`, `ago`).
    pub fn last_seen_ago(self, now: Timestamp) -> String {
        let secs = now.0.saturating_sub(self.0) / 1000;
        let (mins, hours, days) = (secs / 60, secs / 3600, secs / 86_400);
        if mins < 1 {
            "last seen just now".to_owned()
        } else if hours < 1 {
            format!("last seen {mins} min ago")
        } else if days < 1 {
            format!("last seen {hours} h ago")
        } else if days == 1 {
            "last seen 1 day ago".to_owned()
        } else {
            format!("last seen {days} days ago")
        }
    }

    /// The exact time for people, in UTC: `2026-11-18 11:06:40 UTC`.
    pub fn to_human_utc(self) -> String {
        let secs = i64::try_from(self.0 / 1000).unwrap_or(i64::MAX);
        match time::OffsetDateTime::from_unix_timestamp(secs) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            Err(_) => self.to_rfc3339(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_rfc3339_utc() {
        assert_eq!(
            Timestamp::from_millis(1_795_000_000_123).to_rfc3339(),
            "2026-11-18T11:06:40.123Z"
        );
        assert_eq!(
            Timestamp::from_millis(1_795_000_000_123).to_human_utc(),
            "2026-11-18 11:06:40 UTC"
        );
    }

    #[test]
    fn last_seen_reads_in_words() {
        let t = Timestamp::from_millis(1_795_000_000_000);
        let at = |secs: u64| t.plus(Duration::from_secs(secs));
        assert_eq!(t.last_seen_ago(t), "last seen just now");
        assert_eq!(t.last_seen_ago(at(59)), "last seen just now");
        assert_eq!(t.last_seen_ago(at(5 * 60 + 3)), "last seen 5 min ago");
        assert_eq!(t.last_seen_ago(at(3 * 3600)), "last seen 3 h ago");
        assert_eq!(t.last_seen_ago(at(86_400 + 5)), "last seen 1 day ago");
        assert_eq!(t.last_seen_ago(at(9 * 86_400)), "last seen 9 days ago");
        // A clock behind: never "ago" in the future.
        assert_eq!(at(60).last_seen_ago(t), "last seen just now");
    }
}
