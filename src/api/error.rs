//! The API's errors (DESIGN §8): each answers
//! `{ "error": { "code": "…", "message": "…" } }` with its status. Internal
//! causes are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::ivr::{Diagnostic, Severity};
use crate::store::StoreError;
use crate::thread::ThreadError;

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or wrong `Authorization: Bearer TOKEN`.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("no such resource")]
    NotFound,
    /// A flow reload found errors; the running version is kept.
    #[error("the flow folder has errors; version {running} is still running")]
    InvalidFlows {
        running: u64,
        diagnostics: Vec<Diagnostic>,
    },
    /// A request field is missing or malformed; `field` names it.
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A well-formed value the resource cannot take; `field` names it.
    #[error("{field}: {reason}")]
    Unprocessable { field: String, reason: String },
    /// A value that must be unique is already taken; `field` names it.
    #[error("{field} {value:?} is already taken")]
    Conflict { field: String, value: String },
    /// An idempotency key came back with a different request.
    #[error("idempotency key {0:?} was already used with a different request")]
    IdempotencyConflict(String),
    #[error("the body must be {0}")]
    UnsupportedMediaType(&'static str),
    /// A webhook's signature is missing or wrong.
    #[error("missing or invalid webhook signature")]
    BadSignature,
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("thread store: {0}")]
    Thread(#[source] ThreadError),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ApiError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::InvalidFlows { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::IdempotencyConflict(_) => StatusCode::CONFLICT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadSignature => StatusCode::FORBIDDEN,
            ApiError::Store(_) | ApiError::Thread(_) | ApiError::Task(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound => "not_found",
            ApiError::InvalidFlows { .. } => "invalid_flows",
            ApiError::Invalid { .. } => "invalid_request",
            ApiError::Unprocessable { .. } => "unprocessable",
            ApiError::Conflict { .. } => "conflict",
            ApiError::IdempotencyConflict(_) => "idempotency_conflict",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::BadSignature => "bad_signature",
            ApiError::Store(_) | ApiError::Thread(_) | ApiError::Task(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let mut error = json!({ "code": self.code() });
        match &self {
            ApiError::Store(_) | ApiError::Thread(_) | ApiError::Task(_) => {
                tracing::error!(cause = %self, "API request failed");
                error["message"] = json!("internal error");
            }
            ApiError::InvalidFlows { diagnostics, .. } => {
                error["message"] = json!(self.to_string());
                error["details"] = diagnostics.iter().map(diagnostic_json).collect();
            }
            ApiError::Invalid { field, .. }
            | ApiError::Unprocessable { field, .. }
            | ApiError::Conflict { field, .. } => {
                error["message"] = json!(self.to_string());
                error["field"] = json!(field);
            }
            ApiError::Unauthorized
            | ApiError::NotFound
            | ApiError::IdempotencyConflict(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::BadSignature => {
                error["message"] = json!(self.to_string());
            }
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"switchboard\""),
            );
        }
        response
    }
}

impl From<ThreadError> for ApiError {
    fn from(err: ThreadError) -> ApiError {
        match err {
            ThreadError::NotFound { .. } => ApiError::NotFound,
            ThreadError::Invalid { field, reason } => ApiError::Invalid {
                field: field.to_owned(),
                reason,
            },
            ThreadError::IdempotencyConflict { key } => ApiError::IdempotencyConflict(key),
            other => ApiError::Thread(other),
        }
    }
}

/// A flow diagnostic as the API shows it.
pub fn diagnostic_json(d: &Diagnostic) -> Value {
    json!({
        "file": d.file.display().to_string(),
        "line": d.line,
        "col": d.col,
        "severity": match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        "message": d.message,
    })
}
