//! `Config::from_lookup`: defaults, every variable, and clear errors.

use super::*;

fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    Config::from_lookup(move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
}

#[test]
fn the_variables_list_is_exactly_what_is_read() {
    let read = std::sync::Mutex::new(Vec::new());
    Config::from_lookup(|k| {
        read.lock().unwrap().push(k.to_owned());
        None
    })
    .unwrap();
    let mut read = read.into_inner().unwrap();
    read.sort();
    read.dedup();
    let mut listed: Vec<String> = VARIABLES.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(read, listed);
}

#[test]
fn defaults_are_documented_values() {
    let c = with(&[]).unwrap();
    assert_eq!(c.bind, "127.0.0.1:8000");
    assert_eq!(c.store, StoreChoice::Auto);
    assert_eq!(c.session_ttl, Duration::from_secs(1_209_600));
    assert!(!c.cookie_secure);
    assert_eq!(c.ws_url, None);
}

#[test]
fn stores_parse_and_nonsense_is_a_clear_error() {
    assert_eq!(
        with(&[("ROLLCALL_STORE", "memory")]).unwrap().store,
        StoreChoice::Memory
    );
    assert_eq!(
        with(&[("ROLLCALL_STORE", "redis://127.0.0.1:6380/0")])
            .unwrap()
            .store,
        StoreChoice::Redis("redis://127.0.0.1:6380/0".into())
    );
    let e = with(&[("ROLLCALL_STORE", "postgres://x")]).unwrap_err();
    assert_eq!(e.var, "ROLLCALL_STORE");
    assert!(with(&[("ROLLCALL_WS_PING_SECS", "soon")]).is_err());
    assert!(with(&[("ROLLCALL_COOKIE_SECURE", "maybe")]).is_err());
    assert!(with(&[("ROLLCALL_ALLOWED_ORIGINS", "example.com")]).is_err());
}

#[test]
fn fractional_seconds_are_accepted_for_fast_tests() {
    let c = with(&[
        ("ROLLCALL_WS_PING_SECS", "0.25"),
        ("ROLLCALL_CLIENT_PING_SECS", "0.5"),
        ("ROLLCALL_LEASE_SECS", "1.5"),
    ])
    .unwrap();
    assert_eq!(c.ws_ping_interval, Duration::from_millis(250));
}

#[test]
fn a_lease_shorter_than_three_client_pings_is_refused_naming_both_variables() {
    let e = with(&[
        ("ROLLCALL_CLIENT_PING_SECS", "30"),
        ("ROLLCALL_LEASE_SECS", "75"),
    ])
    .unwrap_err();
    assert_eq!(e.var, "ROLLCALL_LEASE_SECS");
    assert!(e.message.contains("ROLLCALL_CLIENT_PING_SECS"), "{e}");
    assert!(
        e.message.contains("75s") && e.message.contains("30s"),
        "{e}"
    );
    // The server ping no longer matters; exactly three client pings is fine.
    with(&[
        ("ROLLCALL_WS_PING_SECS", "100"),
        ("ROLLCALL_CLIENT_PING_SECS", "30"),
        ("ROLLCALL_LEASE_SECS", "90"),
    ])
    .unwrap();
}

#[test]
fn rate_limits_and_http_limits_parse_with_documented_defaults() {
    let c = with(&[]).unwrap();
    assert_eq!(c.rate_limits, RateLimits::default());
    assert_eq!(
        c.rate_limits.login_per_addr,
        Rule::per(30, Duration::from_secs(60))
    );
    assert_eq!(c.hash_queue, 16);
    assert_eq!(c.http_timeout, Duration::from_secs(30));
    assert_eq!(c.http_max_concurrency, 256);
    let c = with(&[
        ("ROLLCALL_LOGIN_FAILURES_PER_USER", "off"),
        ("ROLLCALL_SIGNUP_RATE_PER_ADDR", "5/1h"),
        ("ROLLCALL_HASH_CONCURRENCY", "2"),
    ])
    .unwrap();
    assert!(c.rate_limits.login_failures_per_user.is_off());
    assert_eq!(
        c.rate_limits.signup_per_addr,
        Rule::per(5, Duration::from_secs(3600))
    );
    assert_eq!(c.hash_queue, 8);
    let e = with(&[("ROLLCALL_LOGIN_RATE_PER_ADDR", "lots")]).unwrap_err();
    assert_eq!(e.var, "ROLLCALL_LOGIN_RATE_PER_ADDR");
}

#[test]
fn socket_limits_parse_with_documented_defaults_and_must_leave_the_page_room() {
    let c = with(&[]).unwrap();
    let minute = Duration::from_secs(60);
    assert_eq!(c.socket_limits.upgrades_per_session, Rule::per(30, minute));
    assert_eq!(c.socket_limits.upgrades_per_addr, Rule::per(120, minute));
    assert_eq!(c.socket_limits.tickets_per_session, Rule::per(30, minute));
    assert_eq!(c.socket_limits.tickets_per_addr, Rule::per(120, minute));
    assert_eq!(c.socket_limits.max_per_user, Some(20));
    assert_eq!(c.socket_limits.messages, Rule::per(60, minute));
    let c = with(&[
        ("ROLLCALL_WS_UPGRADES_PER_SESSION", "off"),
        ("ROLLCALL_WS_TICKETS_PER_ADDR", "5/10s"),
        ("ROLLCALL_WS_MAX_PER_USER", "off"),
        ("ROLLCALL_WS_MESSAGE_RATE", "10/10s"),
    ])
    .unwrap();
    assert!(c.socket_limits.upgrades_per_session.is_off());
    assert_eq!(
        c.socket_limits.tickets_per_addr,
        Rule::per(5, Duration::from_secs(10))
    );
    assert_eq!(c.socket_limits.max_per_user, None);
    assert_eq!(
        with(&[("ROLLCALL_WS_MAX_PER_USER", "3")])
            .unwrap()
            .socket_limits
            .max_per_user,
        Some(3)
    );
    for bad in ["0", "-1", "many"] {
        let e = with(&[("ROLLCALL_WS_MAX_PER_USER", bad)]).unwrap_err();
        assert_eq!(e.var, "ROLLCALL_WS_MAX_PER_USER");
    }
    // Two messages a minute: the page pings every 30 s, so no room.
    let e = with(&[("ROLLCALL_WS_MESSAGE_RATE", "2/1m")]).unwrap_err();
    assert_eq!(e.var, "ROLLCALL_WS_MESSAGE_RATE");
    assert!(e.message.contains("30s"), "{e}");
    // A faster page gets a faster default.
    let fast = with(&[
        ("ROLLCALL_CLIENT_PING_SECS", "0.5"),
        ("ROLLCALL_LEASE_SECS", "1.5"),
    ])
    .unwrap();
    assert_eq!(
        fast.socket_limits.messages,
        Rule::per(60, Duration::from_millis(7500))
    );
}

proptest::proptest! {
    #[test]
    fn durations_never_panic_and_whole_seconds_round_trip(raw in proptest::prelude::any::<String>(), n in 0u32..1_000_000) {
        let _ = parse_duration(&raw);
        proptest::prop_assert_eq!(parse_duration(&n.to_string()), Some(Duration::from_secs(n.into())));
    }

    #[test]
    fn rules_never_panic_and_round_trip(raw in proptest::prelude::any::<String>(), n in 1u32..100_000, secs in 1u64..100_000) {
        let _ = Rule::parse(&raw);
        proptest::prop_assert_eq!(Rule::parse(&format!("{n}/{secs}")), Ok(Rule::per(n, Duration::from_secs(secs))));
        proptest::prop_assert_eq!(Rule::parse(&format!("{n}/{secs}m")), Ok(Rule::per(n, Duration::from_secs(secs * 60))));
    }

    #[test]
    fn any_environment_gives_a_config_or_an_error_naming_a_known_variable(
        pairs in proptest::collection::vec((0usize..VARIABLES.len(), proptest::prelude::any::<String>()), 0..6)
    ) {
        let pairs: Vec<(&str, String)> = pairs.into_iter().map(|(i, v)| (VARIABLES[i].0, v)).collect();
        let r = Config::from_lookup(|k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()));
        if let Err(e) = r {
            proptest::prop_assert!(VARIABLES.iter().any(|(n, _)| *n == e.var), "{e}");
        }
    }
}
