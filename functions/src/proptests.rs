//! Property tests of every parser: none panics on any input, and each
//! round-trips where there is a round trip. (Config durations and rate-limit
//! rules are in `config/tests.rs`, next to the private parser.)

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, HOST, ORIGIN};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization as _;

use crate::domain::{
    ClientAddr, ClientMessage, ConnectionId, Password, SessionKey, SessionToken, TrustedProxies,
    Username,
};
use crate::handlers::respond;
use crate::security::cookies;
use crate::security::csrf::CsrfSecret;
use crate::security::origin::{OriginPolicy, OriginVerdict};

/// Names made only of allowed characters, letters of several scripts.
fn valid_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9@.+_\\-éßжλ日本]{1,150}"
}

fn headers(pairs: &[(http::HeaderName, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.append(k.clone(), v);
        }
    }
    h
}

proptest! {
    #[test]
    fn usernames_never_panic_and_parse_to_their_nfkc_form(raw in any::<String>()) {
        let parsed = Username::parse(&raw);
        // NFKC first: a raw name and its NFKC form parse alike.
        let nfkc: String = raw.nfkc().collect();
        prop_assert_eq!(parsed.clone().ok(), Username::parse(&nfkc).ok());
        if let Ok(name) = parsed {
            prop_assert_eq!(name.as_str(), nfkc.as_str());
            prop_assert_eq!(Username::parse(name.as_str()).ok(), Some(name));
        }
    }

    #[test]
    fn valid_usernames_parse_to_themselves(raw in valid_name()) {
        let nfkc: String = raw.nfkc().collect();
        let name = Username::parse(&nfkc).expect("only allowed characters");
        prop_assert_eq!(name.as_str(), nfkc.as_str());
    }

    #[test]
    fn passwords_never_panic_and_accepted_ones_follow_the_rules(
        raw in any::<String>(),
        user in proptest::option::of(valid_name()),
    ) {
        let user = user.and_then(|u| Username::parse(&u).ok());
        if Password::parse(&raw, user.as_ref()).is_ok() {
            prop_assert!(raw.chars().count() >= crate::domain::MIN_PASSWORD_CHARS);
            prop_assert!(!raw.chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn form_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512), field in any::<String>()) {
        let req = http::Request::post("/")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Bytes::from(body))
            .expect("request");
        if let Ok(form) = respond::form(&req) {
            let _ = form.get(&field);
        }
    }

    #[test]
    fn form_fields_round_trip(pairs in proptest::collection::vec((any::<String>(), any::<String>()), 0..8)) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let req = http::Request::post("/")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Bytes::from(body))
            .expect("request");
        let form = respond::form(&req).expect("a small form parses");
        for (k, _) in &pairs {
            let first = pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            prop_assert_eq!(Some(form.get(k)), first);
        }
    }

    #[test]
    fn cookie_headers_never_panic(header in any::<String>(), name in any::<String>()) {
        let _ = cookies::get(&headers(&[(COOKIE, &header)]), &name);
    }

    #[test]
    fn cookies_set_are_read_back(value in "[A-Za-z0-9_\\-]{1,64}", other in "[A-Za-z0-9_\\-]{0,64}") {
        let set = cookies::set(cookies::SESSION_COOKIE, &value, None, true);
        let pair = set.split(';').next().expect("name=value");
        let header = format!("csrftoken={other}; {pair}");
        let h = headers(&[(COOKIE, &header)]);
        prop_assert_eq!(cookies::get(&h, cookies::SESSION_COOKIE), Some(value.as_str()));
    }

    #[test]
    fn session_tokens_and_keys_never_panic(raw in any::<String>()) {
        let _ = SessionToken::parse(&raw);
        if let Some(key) = SessionKey::parse(&raw) {
            prop_assert_eq!(key.as_str(), raw.as_str());
        }
    }

    #[test]
    fn generated_session_tokens_parse_to_the_same_key(_n in 0..4u8) {
        let token = SessionToken::generate();
        let again = SessionToken::parse(token.expose()).expect("our own token parses");
        prop_assert_eq!(again.key(), token.key());
    }

    #[test]
    fn csrf_tokens_never_panic_and_masked_tokens_unmask_to_their_secret(
        cookie in any::<String>(),
        token in any::<String>(),
    ) {
        if let Some(secret) = CsrfSecret::from_cookie(&cookie) {
            let _ = secret.verify(&token);
        }
        let secret = CsrfSecret::generate();
        prop_assert!(!secret.verify(&token) || token.len() == 86);
        let masked = secret.form_token();
        prop_assert!(secret.verify(&masked));
        prop_assert!(!CsrfSecret::generate().verify(&masked));
        let back = CsrfSecret::from_cookie(&secret.cookie_value()).expect("our cookie parses");
        prop_assert!(back.verify(&masked));
    }

    #[test]
    fn client_messages_never_panic(text in any::<String>()) {
        let _ = ClientMessage::parse(&text);
    }

    #[test]
    fn client_messages_parse_with_any_spacing(space in "[ \t\n]{0,3}", ping in any::<bool>()) {
        let kind = if ping { "ping" } else { "snapshot" };
        let text = format!("{space}{{{space}\"type\"{space}:{space}\"{kind}\"{space}}}{space}");
        let expected = if ping { ClientMessage::Ping } else { ClientMessage::Snapshot { since: None } };
        prop_assert_eq!(ClientMessage::parse(&text), Some(expected));
    }

    #[test]
    fn connection_ids_never_panic_and_generated_ones_round_trip(raw in any::<String>()) {
        if let Ok(id) = ConnectionId::parse(&raw) {
            prop_assert_eq!(id.as_str(), raw.as_str());
        }
        let id = ConnectionId::generate();
        prop_assert_eq!(ConnectionId::parse(id.as_str()).ok(), Some(id));
    }

    #[test]
    fn origins_never_panic(list in any::<String>(), origin in any::<String>(), host in any::<String>()) {
        let policy = OriginPolicy::parse(&list).unwrap_or_default();
        let _ = policy.check(&headers(&[(ORIGIN, &origin), (HOST, &host)]));
    }

    #[test]
    fn an_allowed_origin_is_allowed_in_any_case(host in "[a-z0-9]{1,20}(\\.[a-z0-9]{1,10}){0,3}", port in proptest::option::of(1u16..)) {
        let origin = match port {
            Some(p) => format!("https://{host}:{p}"),
            None => format!("https://{host}"),
        };
        let policy = OriginPolicy::parse(&origin).expect("an origin");
        let h = headers(&[(ORIGIN, &origin.to_uppercase()), (HOST, "elsewhere.example")]);
        prop_assert_eq!(policy.check(&h), OriginVerdict::Allowed);
    }

    #[test]
    fn client_addresses_never_panic_and_round_trip(raw in any::<String>(), ip in any::<std::net::IpAddr>()) {
        let _ = ClientAddr::parse(&raw);
        let addr = ClientAddr::new(ip);
        prop_assert_eq!(ClientAddr::parse(&addr.to_string()).ok(), Some(addr));
    }

    #[test]
    fn proxy_lists_and_forwarded_headers_never_panic(
        list in any::<String>(),
        header in any::<String>(),
        peer in any::<std::net::IpAddr>(),
    ) {
        let proxies = TrustedProxies::parse(&list).unwrap_or_default();
        let h = headers(&[(http::HeaderName::from_static("x-forwarded-for"), &header)]);
        let client = proxies.client_of(peer, &h);
        // An untrusted peer is always the client, whatever it wrote.
        if !proxies.contains(peer) {
            prop_assert_eq!(client, ClientAddr::new(peer));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The presence state machine across three simulated processes on the
    /// memory store: any interleaving of connects, closes, renewals, clock
    /// moves, sweeps, crashes and restarts keeps its invariants (see
    /// [`crate::store::conformance::machine`]; `tests/it/conformance.rs`
    /// runs it on a real Redis).
    #[test]
    fn presence_across_processes_keeps_its_invariants(
        codes in proptest::collection::vec(any::<(u8, u8, u8)>(), 1..80),
    ) {
        use crate::store::conformance::machine::{Step, run};
        let steps: Vec<Step> = codes.into_iter().map(Step::from_code).collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(run(&crate::store::memory::MemoryStore::new(), &steps));
    }
}
