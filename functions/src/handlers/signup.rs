//! Sign up: `GET/POST /sign_up/` (form) and `POST /api/sign_up` (JSON).
//!
//! A new user is announced as `{"username": NAME, "is_logged_in": false,
//! "seq": 0}` so pages that are already open append them.

use http::StatusCode;
use serde::Deserialize;

use super::auth::{check_form, csrf_cookie, csrf_secret};
use super::limit;
use super::respond::{self, Request, Response};
use crate::context::AppContext;
use crate::domain::{Password, PresenceEvent, Timestamp, Username};
use crate::error::{AppError, FieldErrors};
use crate::pages::{SignUpErrors, SignUpPage};
use crate::store::{StoreError, UserRecord};

/// Shown when the name is taken (Django's wording).
pub const TAKEN: &str = "A user with that username already exists.";
/// Shown when the two passwords differ (Django's wording).
pub const MISMATCH: &str = "The two password fields didn’t match.";

/// `GET /sign_up/`: the empty form.
pub async fn page(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    render(ctx, req, "", &SignUpErrors::default(), StatusCode::OK)
}

/// `POST /sign_up/`: 302 to `/log_in/` on success, else the form again (200)
/// with each error next to its field.
#[tracing::instrument(skip_all)]
pub async fn submit(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let form = respond::form(req)?;
    check_form(ctx, req, &form)?;
    let username = form.get("username");
    let registered = register(
        ctx,
        req,
        username,
        form.get("password1"),
        Some(form.get("password2")),
    )
    .await;
    match registered {
        Ok(Ok(_)) => Ok(respond::redirect("/log_in/")),
        Ok(Err(errors)) => render(ctx, req, username, &errors, StatusCode::OK),
        // Over a limit, or the hasher is full: the form says when to retry.
        Err(e) => e.on_form(|message| {
            let errors = SignUpErrors {
                all: vec![message.to_owned()],
                ..SignUpErrors::default()
            };
            render(ctx, req, username, &errors, StatusCode::OK)
        }),
    }
}

/// Body of `POST /api/sign_up`.
#[derive(Deserialize)]
struct ApiSignUp {
    username: String,
    password: String,
}

/// `POST /api/sign_up`: 201 `{"username": …}` or 400 `{"errors": {…}}`.
#[tracing::instrument(skip_all)]
pub async fn api(ctx: &AppContext, req: &Request) -> Result<Response, AppError> {
    let body: ApiSignUp = respond::json_body(req)?;
    match register(ctx, req, &body.username, &body.password, None).await? {
        Ok(name) => Ok(respond::json(
            StatusCode::CREATED,
            &serde_json::json!({ "username": name }),
        )),
        Err(e) => {
            let mut fields = FieldErrors::new();
            for (field, errors) in [("username", e.username), ("password", e.password1)] {
                if !errors.is_empty() {
                    fields.insert(field, errors);
                }
            }
            Err(AppError::Invalid(fields))
        }
    }
}

/// Checks the rate limits and the input, hashes, stores and announces a new
/// user. The outer `Result` is for failures of ours and refusals (rate
/// limits, a full hasher); the inner one for input the user must fix.
async fn register(
    ctx: &AppContext,
    req: &Request,
    raw_username: &str,
    password1: &str,
    password2: Option<&str>,
) -> Result<Result<Username, SignUpErrors>, AppError> {
    let rules = ctx.config.rate_limits;
    let addr_key = limit::by_addr("signup", req);
    limit::check(ctx, addr_key.as_deref(), rules.signup_per_addr).await?;
    let mut errors = SignUpErrors::default();
    let username = Username::parse(raw_username)
        .map_err(|e| errors.username.push(e.to_string()))
        .ok();
    if let Some(name) = &username {
        let key = limit::by_user("signup", name);
        limit::check(ctx, Some(&key), rules.signup_per_user).await?;
    }
    let password = Password::parse(password1, username.as_ref())
        .map_err(|es| errors.password1.extend(es.iter().map(ToString::to_string)))
        .ok();
    if let Some(p2) = password2 {
        if p2.is_empty() {
            errors.password2.push("This field is required.".into());
        } else if p2 != password1 {
            errors.password2.push(MISMATCH.into());
        }
    }
    if let Some(name) = &username
        && ctx.store.find_user(name).await?.is_some()
    {
        errors.username.push(TAKEN.into());
    }
    let (Some(username), Some(password), true) = (username, password, errors.is_empty()) else {
        return Ok(Err(errors));
    };
    let record = UserRecord {
        username: username.clone(),
        password_hash: ctx.hasher.hash(&password).await?,
        created_at: Timestamp::now(),
    };
    match ctx.store.create_user(&record).await {
        Ok(()) => {}
        // Someone took the name while we were hashing.
        Err(StoreError::Conflict) => {
            errors.username.push(TAKEN.into());
            return Ok(Err(errors));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(user = %username, "signed up");
    // The store logged the sign-up; without a log follower, say it here.
    if let Err(e) = ctx.announce(&PresenceEvent::joined(username.clone())).await {
        // The user exists; open pages will still see them on their next
        // snapshot, so this is not worth failing the sign-up for.
        tracing::warn!(error = %e, "could not announce a new user");
    }
    Ok(Ok(username))
}

fn render(
    ctx: &AppContext,
    req: &Request,
    username: &str,
    errors: &SignUpErrors,
    status: StatusCode,
) -> Result<Response, AppError> {
    let (secret, new) = csrf_secret(req.headers());
    let token = secret.form_token();
    let body = askama::Template::render(&SignUpPage {
        csrf: &token,
        username,
        form_errors: errors,
    })?;
    let r = respond::html(status, body);
    Ok(if new {
        respond::set_cookie(r, &csrf_cookie(ctx, &secret))
    } else {
        r
    })
}
