//! [`Rule`] ("N per window") and the [`RateLimits`] the handlers apply.

use std::time::Duration;

/// At most `limit` hits per `window`; `limit == 0` means the rule is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Hits allowed per window (0: no limit).
    pub limit: u32,
    /// The window's length.
    pub window: Duration,
}

impl Rule {
    /// A rule that never limits.
    pub const OFF: Rule = Rule {
        limit: 0,
        window: Duration::from_secs(1),
    };

    /// At most `limit` hits per `window` (a zero window is one millisecond).
    pub fn per(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window: window.max(Duration::from_millis(1)),
        }
    }

    /// Whether this rule never limits.
    pub fn is_off(self) -> bool {
        self.limit == 0
    }

    /// Parses `N/WINDOW` — `30/1m`, `10/15m`, `100/1h`, `5/10s`, `5/2.5`
    /// (a bare number is seconds) — or `off`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") {
            return Ok(Self::OFF);
        }
        let bad = || format!("{s:?} is not N/WINDOW (e.g. 30/1m, 10/15m, 100/1h) or off");
        let (n, w) = s.split_once('/').ok_or_else(bad)?;
        let limit: u32 = n.trim().parse().map_err(|_| bad())?;
        let w = w.trim();
        let (number, unit) = match w.char_indices().last() {
            Some((i, c @ ('s' | 'm' | 'h'))) => (&w[..i], c),
            _ => (w, 's'),
        };
        let number: f64 = number.parse().map_err(|_| bad())?;
        let secs = number
            * match unit {
                'h' => 3600.0,
                'm' => 60.0,
                _ => 1.0,
            };
        if !(0.001..=1e8).contains(&secs) {
            return Err(bad());
        }
        Ok(Self::per(limit, Duration::from_secs_f64(secs)))
    }
}

/// The limits of log in and sign up (socket limits are the socket code's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `ROLLCALL_LOGIN_RATE_PER_ADDR` — log-in attempts per client address.
    /// Default `30/1m`.
    pub login_per_addr: Rule,
    /// `ROLLCALL_LOGIN_FAILURES_PER_USER` — failed log-ins per username;
    /// over it, that name cannot log in until the window ends. Default
    /// `10/15m`.
    pub login_failures_per_user: Rule,
    /// `ROLLCALL_SIGNUP_RATE_PER_ADDR` — sign-up attempts per client
    /// address. Default `20/10m`.
    pub signup_per_addr: Rule,
    /// `ROLLCALL_SIGNUP_RATE_PER_USER` — sign-up attempts per username.
    /// Default `10/10m`.
    pub signup_per_user: Rule,
}

impl Default for RateLimits {
    fn default() -> Self {
        let min = |n: u64| Duration::from_secs(60 * n);
        Self {
            login_per_addr: Rule::per(30, min(1)),
            login_failures_per_user: Rule::per(10, min(15)),
            signup_per_addr: Rule::per(20, min(10)),
            signup_per_user: Rule::per(10, min(10)),
        }
    }
}

impl RateLimits {
    /// Every rule off (tests that are not about limits).
    pub const OFF: RateLimits = RateLimits {
        login_per_addr: Rule::OFF,
        login_failures_per_user: Rule::OFF,
        signup_per_addr: Rule::OFF,
        signup_per_user: Rule::OFF,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_with_units_and_refuse_nonsense() {
        let r = |s| Rule::parse(s).unwrap();
        assert_eq!(r("30/1m"), Rule::per(30, Duration::from_secs(60)));
        assert_eq!(r("10/15m"), Rule::per(10, Duration::from_secs(900)));
        assert_eq!(r("100/1h"), Rule::per(100, Duration::from_secs(3600)));
        assert_eq!(r(" 5 / 10s "), Rule::per(5, Duration::from_secs(10)));
        assert_eq!(r("5/0.5"), Rule::per(5, Duration::from_millis(500)));
        assert!(r("off").is_off() && r("0/1m").is_off());
        for bad in [
            "", "30", "/1m", "x/1m", "30/", "30/1d", "-1/1m", "30/0", "30/nan", "30/-1s",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
