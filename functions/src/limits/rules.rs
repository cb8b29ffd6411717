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

/// The limits of log in and sign up (sockets: [`SocketLimits`]).
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

/// The limits of WebSockets: upgrades, open sockets per user, and client
/// messages per socket. The same on the local server and the cloud path
/// (`$connect`, `$default`). Messages are counted in process, by a token
/// bucket per connection (up to `limit` at once, refilled at `limit` per
/// `window`): in each socket's task on the local server, in each
/// `ws_default` instance's [`MessageBuckets`](super::bucket::MessageBuckets)
/// on the cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketLimits {
    /// `ROLLCALL_WS_UPGRADES_PER_SESSION` — socket upgrades per session
    /// (reloads, tabs, reconnects). Default `30/1m`.
    pub upgrades_per_session: Rule,
    /// `ROLLCALL_WS_UPGRADES_PER_ADDR` — socket upgrades per client
    /// address, counted before authenticating (so forged tokens count too).
    /// Default `120/1m`.
    pub upgrades_per_addr: Rule,
    /// `ROLLCALL_WS_TICKETS_PER_SESSION` — socket tickets
    /// (`POST /api/ws_ticket`, one per socket the cloud page opens) per
    /// session. Default `30/1m`, as upgrades.
    pub tickets_per_session: Rule,
    /// `ROLLCALL_WS_TICKETS_PER_ADDR` — socket tickets per client address,
    /// counted before the session is looked up. Default `120/1m`.
    pub tickets_per_addr: Rule,
    /// `ROLLCALL_WS_MAX_PER_USER` — open sockets per user, across every
    /// process; `None` (`off`): no cap. Default 20.
    pub max_per_user: Option<u32>,
    /// `ROLLCALL_WS_MESSAGE_RATE` — client messages per socket (`ping`,
    /// `snapshot`, anything); over it the local server closes the socket
    /// with 4029 and the cloud deletes the connection. Default `60/1m`, or
    /// 60 per 15 client ping periods when that is shorter, so the page's
    /// own pings always fit.
    pub messages: Rule,
}

impl SocketLimits {
    /// Every socket limit off (benchmarks).
    pub const OFF: SocketLimits = SocketLimits {
        upgrades_per_session: Rule::OFF,
        upgrades_per_addr: Rule::OFF,
        tickets_per_session: Rule::OFF,
        tickets_per_addr: Rule::OFF,
        max_per_user: None,
        messages: Rule::OFF,
    };

    /// The defaults for a page that pings every `client_ping`.
    pub fn defaults(client_ping: Duration) -> Self {
        let minute = Duration::from_secs(60);
        Self {
            upgrades_per_session: Rule::per(30, minute),
            upgrades_per_addr: Rule::per(120, minute),
            tickets_per_session: Rule::per(30, minute),
            tickets_per_addr: Rule::per(120, minute),
            max_per_user: Some(20),
            messages: Rule::per(60, minute.min(client_ping * 15)),
        }
    }

    /// Whether `messages` leaves the page room: at least 4 at once and
    /// twice its ping rate (`client_ping`), so pings, snapshot requests and
    /// a late timer never reach it.
    pub fn fits_the_page(&self, client_ping: Duration) -> bool {
        let m = self.messages;
        m.is_off()
            || (m.limit >= 4
                && f64::from(m.limit) * client_ping.as_secs_f64() >= 2.0 * m.window.as_secs_f64())
    }
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

    #[test]
    fn the_default_message_rate_leaves_the_page_room_at_any_ping_period() {
        for ping in [0.2, 0.5, 4.0, 30.0, 120.0] {
            let ping = Duration::from_secs_f64(ping);
            let d = SocketLimits::defaults(ping);
            assert!(d.fits_the_page(ping), "{ping:?}: {:?}", d.messages);
        }
        let page = Duration::from_secs(30);
        assert_eq!(
            SocketLimits::defaults(page).messages,
            Rule::per(60, Duration::from_secs(60))
        );
        let tight = SocketLimits {
            messages: Rule::per(3, Duration::from_secs(60)),
            ..SocketLimits::defaults(page)
        };
        assert!(!tight.fits_the_page(page), "three a minute is too few");
        assert!(SocketLimits::OFF.fits_the_page(page));
    }
}
