//! Errors at the relay's boundaries: start-up failures, and HTTP errors as one JSON
//! shape with a stable code (internal detail is logged, never sent).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Why the relay could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The Redis URL does not parse.
    #[error("invalid Redis URL {url:?}: {source}")]
    RedisUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        source: redis::RedisError,
    },
    /// The managed redis-server could not be started.
    #[error("could not start the managed redis-server: {0}")]
    ManagedRedis(String),
    /// An I/O failure (binding, serving).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An HTTP error response: `{"code":"…","message":"…"}` with a matching status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

#[derive(Serialize)]
struct ApiErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    /// Redis did not answer; the detail is logged here and not sent.
    pub fn redis_unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "redis unavailable");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "redis_unavailable",
            message: "Redis is not reachable".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ApiErrorBody {
            code: self.code,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}
