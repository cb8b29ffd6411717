//! End to end: the SPEC's "Rules for input", CSRF and the JSON API's errors.

use rollcall_tests::app::spawn_app;
use rollcall_tests::client::Visitor;
use rollcall_tests::{PASSWORD, unique_name};
use serde_json::{Value, json};

mod forms;

/// The messages shown next to `field` in a rendered form.
fn errors_of(html: &str, field: &str) -> Vec<String> {
    let marker = format!("<ul class=\"errorlist\" id=\"errors-{field}\">");
    let Some(start) = html.find(&marker) else {
        return Vec::new();
    };
    let rest = &html[start + marker.len()..];
    let end = rest.find("</ul>").expect("list ends");
    rest[..end]
        .split("<li>")
        .filter_map(|li| li.strip_suffix("</li>"))
        .map(|s| {
            s.replace("&#x27;", "'")
                .replace("&quot;", "\"")
                .replace("&amp;", "&")
        })
        .collect()
}

async fn stored_names(app: &rollcall_tests::app::TestApp) -> Vec<String> {
    let list = rollcall_tests::all_users(&*app.ctx.store).await;
    list.into_iter()
        .map(|u| u.username.as_str().to_owned())
        .collect()
}

#[tokio::test]
async fn invalid_usernames_are_refused_with_a_message_and_never_stored() {
    let app = spawn_app().await;
    let v = Visitor::new(&app.base);
    let long = "a".repeat(151);
    let cases: [(&str, &str); 5] = [
        ("a b", "Enter a valid username."),
        ("<script>", "Enter a valid username."),
        ("", "This field is required."),
        (
            &long,
            "Ensure this value has at most 150 characters (it has 151).",
        ),
        ("tab\tname", "Enter a valid username."),
    ];
    for (name, message) in cases {
        let r = v
            .submit(
                "/sign_up/",
                &[
                    ("username", name),
                    ("password1", PASSWORD),
                    ("password2", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "{name:?} re-shows the form");
        let errors = errors_of(&r.body, "username");
        assert!(
            errors.iter().any(|e| e.starts_with(message)),
            "{name:?}: {errors:?}"
        );
        // What was typed comes back escaped, never as markup.
        assert!(!r.body.contains("value=\"<script>\""));

        let r = v
            .post_json(
                "/api/sign_up",
                &json!({"username": name, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{name:?}");
        let body: Value = serde_json::from_str(&r.body).expect("json");
        assert!(
            body["errors"]["username"][0]
                .as_str()
                .expect("message")
                .starts_with(message),
            "{body}"
        );
    }
    assert!(stored_names(&app).await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn weak_passwords_are_refused_next_to_their_field() {
    let app = spawn_app().await;
    let v = Visitor::new(&app.base);
    let name = unique_name("pw");
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "short",
            "short",
            "password1",
            "This password is too short. It must contain at least 8 characters.",
        ),
        (
            "12345678901",
            "12345678901",
            "password1",
            "This password is entirely numeric.",
        ),
        (
            &name,
            &name,
            "password1",
            "The password is too similar to the username.",
        ),
        (
            PASSWORD,
            "something else",
            "password2",
            "The two password fields didn’t match.",
        ),
        ("", "", "password1", "This field is required."),
    ];
    for (p1, p2, field, message) in cases {
        let r = v
            .submit(
                "/sign_up/",
                &[("username", &name), ("password1", p1), ("password2", p2)],
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            errors_of(&r.body, field),
            vec![message.to_owned()],
            "{p1:?}/{p2:?}"
        );
        assert!(
            r.body.contains(&format!("value=\"{name}\"")),
            "the name is kept"
        );
    }
    let r = v
        .post_json(
            "/api/sign_up",
            &json!({"username": name, "password": "1234"}),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    let body: Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(
        body["errors"]["password"],
        json!([
            "This password is too short. It must contain at least 8 characters.",
            "This password is entirely numeric."
        ])
    );
    assert!(stored_names(&app).await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn a_taken_name_is_refused_including_look_alike_spellings() {
    let app = spawn_app().await;
    let v = Visitor::new(&app.base);
    v.sign_up("josé", PASSWORD).await;
    for again in ["josé", "ｊｏｓé"] {
        let r = v
            .submit(
                "/sign_up/",
                &[
                    ("username", again),
                    ("password1", PASSWORD),
                    ("password2", PASSWORD),
                ],
            )
            .await;
        assert_eq!(
            errors_of(&r.body, "username"),
            vec!["A user with that username already exists."]
        );
    }
    let r = v
        .post_json(
            "/api/sign_up",
            &json!({"username": "josé", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(stored_names(&app).await, vec!["josé".to_owned()]);
    // The NFKC form logs in the same account.
    v.log_in("ｊｏｓé", PASSWORD).await;
}
