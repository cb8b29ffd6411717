//! End to end: CSRF and Origin on forms, log in and log out, cookies, and
//! the JSON API's errors.

use rollcall_tests::app::spawn_app;
use rollcall_tests::client::{Visitor, csrf_token, listed_users};
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::{Value, json};

use super::stored_names;

#[tokio::test]
async fn forms_need_a_matching_csrf_token_and_a_same_site_origin() {
    let app = spawn_app().await;
    let v = Visitor::new(&app.base);
    let name = unique_name("csrf");
    let fields = [
        ("username", name.as_str()),
        ("password1", PASSWORD),
        ("password2", PASSWORD),
    ];
    // No cookie, no token.
    assert_eq!(v.post_form("/sign_up/", &fields).await.status, 403);
    // Cookie now set by the GET, but a token of another browser.
    let page = v.get("/sign_up/").await;
    let other = Visitor::new(&app.base);
    let foreign_token = csrf_token(&other.get("/sign_up/").await.body);
    let mut with_foreign = vec![("csrfmiddlewaretoken", foreign_token.as_str())];
    with_foreign.extend_from_slice(&fields);
    assert_eq!(v.post_form("/sign_up/", &with_foreign).await.status, 403);
    // The right token but posted from another site.
    let token = csrf_token(&page.body);
    let cookie = v.cookie_header();
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrfmiddlewaretoken", &token)
        .extend_pairs(fields)
        .finish();
    let cross = reqwest::Client::new()
        .post(format!("{}/sign_up/", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .body(body)
        .send()
        .await
        .expect("request");
    assert_eq!(cross.status().as_u16(), 403);
    assert!(stored_names(&app).await.is_empty());
    // And the genuine form works.
    v.sign_up(&name, PASSWORD).await;
}

#[tokio::test]
async fn logging_out_cannot_be_triggered_without_the_token() {
    let app = spawn_app().await;
    let v = Visitor::new(&app.base);
    v.register(&unique_name("stay")).await;
    assert_eq!(v.post_form("/log_out/", &[]).await.status, 403);
    assert_eq!(
        v.post_form("/log_out/", &[("csrfmiddlewaretoken", "x")])
            .await
            .status,
        403
    );
    assert_eq!(v.get("/").await.status, 200, "still logged in");
    assert_eq!(v.get("/log_out/").await.status, 405, "GET never logs out");
}

#[tokio::test]
async fn log_in_failures_never_say_which_half_was_wrong() {
    let app = spawn_app().await;
    let v = Visitor::new(&app.base);
    let name = unique_name("eve");
    v.sign_up(&name, PASSWORD).await;
    for (user, pass) in [
        (name.as_str(), "wrong password"),
        ("nobody_here", PASSWORD),
        ("a b", PASSWORD),
        ("", ""),
    ] {
        let r = v
            .submit("/log_in/", &[("username", user), ("password", pass)])
            .await;
        assert_eq!(r.status, 200);
        assert!(
            r.body
                .contains("Please enter a correct username and password."),
            "{user:?}"
        );
        assert!(v.cookie("sessionid").is_none());
        let r = v
            .post_json(
                "/api/log_in",
                &json!({"username": user, "password": pass}),
                None,
            )
            .await;
        assert_eq!(r.status, 401);
        assert_eq!(
            serde_json::from_str::<Value>(&r.body).expect("json")["error"],
            "Please enter a correct username and password."
        );
    }
}

#[tokio::test]
async fn after_log_in_only_same_site_next_paths_are_followed() {
    let app = spawn_app().await;
    let name = unique_name("nx");
    Visitor::new(&app.base).sign_up(&name, PASSWORD).await;
    for (next, expected) in [
        ("/api/users", "/api/users"),
        ("//evil.example/", "/"),
        ("https://evil.example/", "/"),
    ] {
        let v = Visitor::new(&app.base);
        let page = v.get(&format!("/log_in/?next={}", urlencode(next))).await;
        let token = csrf_token(&page.body);
        let r = v
            .post_form(
                "/log_in/",
                &[
                    ("csrfmiddlewaretoken", &token),
                    ("username", &name),
                    ("password", PASSWORD),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(
            (r.status, r.location.as_deref()),
            (302, Some(expected)),
            "{next}"
        );
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn cookies_are_httponly_and_same_site_lax() {
    let app = spawn_app().await;
    let v = Visitor::new(&app.base);
    let name = unique_name("ck");
    v.sign_up(&name, PASSWORD).await;
    let page = v.get("/log_in/").await;
    let token = csrf_token(&page.body);
    let r = v
        .post_form(
            "/log_in/",
            &[
                ("csrfmiddlewaretoken", &token),
                ("username", &name),
                ("password", PASSWORD),
            ],
        )
        .await;
    let session = r
        .set_cookies
        .iter()
        .find(|c| c.starts_with("sessionid="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Lax"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "not Secure unless configured");
    let home = v.get("/").await;
    assert!(listed_users(&home.body).iter().any(|(n, _)| *n == name));
}

#[tokio::test]
async fn the_json_api_explains_bad_requests() {
    let app = spawn_app().await;
    let v = Visitor::new(&app.base);
    let raw = reqwest::Client::new();
    let post = |path: &str, ct: &str, body: Vec<u8>| {
        raw.post(format!("{}{path}", app.base))
            .header("content-type", ct.to_owned())
            .body(body)
            .send()
    };
    let r = post("/api/sign_up", "text/plain", b"{}".to_vec())
        .await
        .expect("req");
    assert_eq!(r.status().as_u16(), 415);
    let r = post("/api/sign_up", "application/json", b"{not json".to_vec())
        .await
        .expect("req");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.expect("body").contains("Malformed JSON"));
    let r = post(
        "/api/log_in",
        "application/json",
        br#"{"username": 3}"#.to_vec(),
    )
    .await
    .expect("req");
    assert_eq!(r.status().as_u16(), 400);
    let r = post("/api/sign_up", "application/json", vec![b' '; 100_000])
        .await
        .expect("req");
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(v.get("/api/users").await.status, 401);
    assert_eq!(v.get("/nope").await.status, 404);
    assert_eq!(v.get("/api/log_in").await.status, 405);
    assert_eq!(v.get("/healthz").await.status, 200);
}
