//! [`AppError`] and the one place errors become HTTP responses.
//!
//! Handlers return `Result<Response, AppError>`; [`AppError::into_response`]
//! maps each variant to its status. 5xx details are logged here and never
//! echoed to the client.

use std::collections::BTreeMap;

use http::StatusCode;

use crate::handlers::respond::{self, Format, Response};
use crate::push::PushError;
use crate::security::password_hash::HashError;
use crate::store::StoreError;

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
    /// 413: body over the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 415: not the content type the route takes; the message is shown.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(&'static str),
    /// 503: the store does not answer (health check).
    #[error("service unavailable")]
    Unavailable,
    /// 500: a bug or a backend failure; logged, never shown.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<PushError> for AppError {
    fn from(e: PushError) -> Self {
        Self::Internal(Box::new(e))
    }
}

impl From<HashError> for AppError {
    fn from(e: HashError) -> Self {
        Self::Internal(Box::new(e))
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
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
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
            Self::PayloadTooLarge => "Request body too large.".into(),
            Self::Unavailable => "Service unavailable.".into(),
            Self::Internal(_) => "Internal server error.".into(),
        }
    }

    /// The response for this error, as JSON (API) or a small HTML page.
    pub fn into_response(self, format: Format) -> Response {
        let status = self.status();
        if status.is_server_error() {
            // Full detail for operators; the client gets a generic message.
            tracing::error!(error = %self, source = ?std::error::Error::source(&self), "request failed");
        } else {
            tracing::debug!(error = %self, "request refused");
        }
        let message = self.public_message();
        match (format, self) {
            (Format::Json, Self::Invalid(fields)) => {
                respond::json(status, &serde_json::json!({ "errors": fields }))
            }
            (Format::Json, _) => respond::json(status, &serde_json::json!({ "error": message })),
            (Format::Html, _) => respond::error_page(status, &message),
        }
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
}
