//! [`AppError`] and the one place errors become HTTP responses.
//!
//! Handlers return `Result<Response, AppError>`; [`AppError::into_response`]
//! maps each variant to its status. 5xx details are logged here and never
//! echoed to the client.

use std::collections::BTreeMap;
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderValue, StatusCode};

use crate::handlers::respond::{self, Format, Response};
use crate::limits::LimitError;
use crate::push::PushError;
use crate::security::password_hash::HashError;
use crate::store::StoreError;

/// What a 503 for an unavailable store asks the client to wait.
const STORE_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Messages per form field (`"username"`, `"password"`, … or `"__all__"`).
pub type FieldErrors = BTreeMap<&'static str, Vec<String>>;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed (bad JSON, wrong types); the message is shown.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 400: input broke the rules; messages per field are shown.
    #[error("invalid input")]
    Invalid(FieldErrors),
    /// 401: no valid session or credentials; the message is shown.
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// 403: CSRF or Origin check failed; the message is shown.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 404: no such route.
    #[error("not found")]
    NotFound,
    /// 405: the route exists with other methods.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 408: the request was not answered within the server's time limit
    /// (a body that never finishes, a queue that did not move).
    #[error("request timeout")]
    RequestTimeout,
    /// 413: body over the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: not the content type the route takes; the message is shown.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(&'static str),
    /// 429 with `Retry-After`: a rate limit was hit; "Too many attempts;
    /// try again in N seconds." is shown (on the form, for forms).
    #[error("rate limited for {}s", retry_after.as_secs())]
    RateLimited {
        /// How long until the limit lets this client through again.
        retry_after: Duration,
    },
    /// 429 without `Retry-After`: the user has as many sockets open as
    /// allowed (`ROLLCALL_WS_MAX_PER_USER`); "Too many open connections;
    /// close another tab first." is shown.
    #[error("too many open connections")]
    TooManyConnections,
    /// 503 with `Retry-After`: the password hasher's queue is full; "The
    /// server is busy; try again in N seconds." is shown.
    #[error("busy; retry after {}s", retry_after.as_secs())]
    Busy {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// 503: the store does not answer (health check).
    #[error("service unavailable")]
    Unavailable,
    /// 503 with `Retry-After`: the store cannot answer now (unreachable,
    /// timed out, throttling); logged, "The service is unavailable; try
    /// again in 1 second." is shown.
    #[error("store unavailable: {0}")]
    StoreUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 500: a bug or a backend failure; logged, never shown.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            e @ StoreError::Unavailable(_) => Self::StoreUnavailable(Box::new(e)),
            e => Self::Internal(Box::new(e)),
        }
    }
}

impl From<PushError> for AppError {
    fn from(e: PushError) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy { retry_after } => Self::Busy { retry_after },
            e @ HashError::Failed(_) => Self::Internal(Box::new(e)),
        }
    }
}

impl From<LimitError> for AppError {
    fn from(e: LimitError) -> Self {
        if e.is_unavailable() {
            Self::StoreUnavailable(Box::new(e))
        } else {
            Self::Internal(Box::new(e))
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl AppError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited { .. } | Self::TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable | Self::Busy { .. } | Self::StoreUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client may be told.
    fn public_message(&self) -> String {
        match self {
            Self::BadRequest(m) => m.clone(),
            Self::Unauthorized(m) | Self::Forbidden(m) | Self::UnsupportedMediaType(m) => {
                (*m).to_owned()
            }
            Self::Invalid(_) => "Invalid input.".into(),
            Self::NotFound => "Not found.".into(),
            Self::MethodNotAllowed => "Method not allowed.".into(),
            Self::RequestTimeout => "The request took too long.".into(),
            Self::PayloadTooLarge => "Request body too large.".into(),
            Self::RateLimited { retry_after } => {
                format!("Too many attempts; try again in {}.", seconds(*retry_after))
            }
            Self::TooManyConnections => {
                "Too many open connections; close another tab first.".into()
            }
            Self::Busy { retry_after } => format!(
                "The server is busy; try again in {}.",
                seconds(*retry_after)
            ),
            Self::Unavailable => "Service unavailable.".into(),
            Self::StoreUnavailable(_) => format!(
                "The service is unavailable; try again in {}.",
                seconds(STORE_RETRY_AFTER)
            ),
            Self::Internal(_) => "Internal server error.".into(),
        }
    }

    /// How long the client should wait before retrying (429 and busy 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::Busy { retry_after } => Some(*retry_after),
            Self::StoreUnavailable(_) => Some(STORE_RETRY_AFTER),
            _ => None,
        }
    }

    /// For errors a form shows in place (429, busy 503): the form that
    /// `render` draws with this error's message, given this error's status
    /// and `Retry-After`. Any other error is handed back unchanged.
    pub fn on_form(
        self,
        render: impl FnOnce(&str) -> Result<Response, AppError>,
    ) -> Result<Response, AppError> {
        if self.retry_after().is_none() {
            return Err(self);
        }
        self.log();
        let mut r = render(&self.public_message())?;
        *r.status_mut() = self.status();
        Ok(self.with_retry_after(r))
    }

    fn with_retry_after(&self, mut r: Response) -> Response {
        if let Some(after) = self.retry_after() {
            r.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(whole_seconds(after)));
        }
        r
    }

    fn log(&self) {
        if matches!(
            self,
            Self::Busy { .. } | Self::RateLimited { .. } | Self::TooManyConnections
        ) {
            tracing::warn!(error = %self, "request refused for load");
        } else if self.status().is_server_error() {
            // Full detail for operators; the client gets a generic message.
            tracing::error!(error = %self, source = ?std::error::Error::source(self), "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
    }

    /// The response for this error, as JSON (API) or a small HTML page.
    pub fn into_response(self, format: Format) -> Response {
        let status = self.status();
        self.log();
        let message = self.public_message();
        let r = match (format, &self) {
            (Format::Json, Self::Invalid(fields)) => {
                respond::json(status, &serde_json::json!({ "errors": fields }))
            }
            (Format::Json, _) => respond::json(status, &serde_json::json!({ "error": message })),
            (Format::Html, _) => respond::error_page(status, &message),
        };
        self.with_retry_after(r)
    }
}

/// Seconds for `Retry-After` and messages: rounded up, at least 1.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs()
        .saturating_add(u64::from(d.subsec_nanos() > 0))
        .max(1)
}

/// "1 second", "42 seconds".
fn seconds(d: Duration) -> String {
    match whole_seconds(d) {
        1 => "1 second".into(),
        n => format!("{n} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_are_never_echoed() {
        let e = AppError::from(StoreError::backend(std::io::Error::other(
            "password=hunter2 at db",
        )));
        let r = e.into_response(Format::Json);
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!r.body().contains("hunter2"));
        assert!(r.body().contains("Internal server error."));
    }

    #[test]
    fn field_errors_are_listed_per_field_in_json() {
        let mut f = FieldErrors::new();
        f.insert("username", vec!["This field is required.".into()]);
        let r = AppError::Invalid(f).into_response(Format::Json);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            r.body(),
            r#"{"errors":{"username":["This field is required."]}}"#
        );
    }

    #[test]
    fn html_errors_escape_their_message() {
        let r = AppError::BadRequest("<b>".into()).into_response(Format::Html);
        assert!(r.body().contains("&lt;b&gt;"));
    }

    #[test]
    fn an_unavailable_store_is_a_503_that_says_when_to_retry_and_hides_why() {
        let e = AppError::from(StoreError::unavailable(std::io::Error::other(
            "connection refused to 10.0.0.7:6379",
        )));
        let r = e.into_response(Format::Json);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        assert!(!r.body().contains("10.0.0.7"), "{}", r.body());
        let r = AppError::from(StoreError::backend(std::io::Error::other("bug")))
            .into_response(Format::Json);
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // A limiter on the same backend says the same.
        let down = LimitError::from(StoreError::unavailable(std::io::Error::other("refused")));
        let r = AppError::from(down).into_response(Format::Json);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        let r = AppError::from(LimitError::backend(std::io::Error::other("bug")))
            .into_response(Format::Json);
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn limits_and_a_busy_hasher_say_when_to_retry() {
        let r = AppError::RateLimited {
            retry_after: Duration::from_millis(41_200),
        }
        .into_response(Format::Json);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[RETRY_AFTER], "42");
        assert_eq!(
            r.body(),
            r#"{"error":"Too many attempts; try again in 42 seconds."}"#
        );
        let r = AppError::Busy {
            retry_after: Duration::from_secs(1),
        }
        .into_response(Format::Html);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        assert!(
            r.body()
                .contains("The server is busy; try again in 1 second.")
        );
    }

    #[test]
    fn forms_show_retryable_errors_in_place_and_hand_back_the_rest() {
        let limited = AppError::RateLimited {
            retry_after: Duration::from_secs(9),
        };
        let r = limited
            .on_form(|m| Ok(respond::html(StatusCode::OK, format!("<form>{m}</form>"))))
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[RETRY_AFTER], "9");
        assert_eq!(
            r.body(),
            "<form>Too many attempts; try again in 9 seconds.</form>"
        );
        let other = AppError::NotFound.on_form(|_| unreachable!());
        assert!(matches!(other, Err(AppError::NotFound)));
    }
}
