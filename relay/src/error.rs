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

impl ApiError {
    /// 401: no valid token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
        }
    }

    /// 403: the caller may not do this.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code,
            message: message.into(),
        }
    }

    /// 503 for a reason other than Redis.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code,
            message: message.into(),
        }
    }
}

/// Constructors of the operations API (`crate::api`).
impl ApiError {
    /// An error with this status, stable code and message (sent as it is).
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: a bad filter, query, id or body.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: no such letter, stream or route.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409: the letter was already retried or deleted by another request.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 422: understood, but cannot be done (e.g. a letter whose task does not decode).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500: the relay failed; the detail is logged here and not sent.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error answering an API request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the relay failed; details are in its log",
        )
    }

    /// A Redis failure: 503 `redis_unavailable` when Redis cannot be reached (or is
    /// loading, or has no master), else 500 `internal`. The detail is logged.
    pub fn redis(error: &redis::RedisError) -> Self {
        use redis::{ErrorKind, ServerErrorKind};
        let unreachable = error.is_io_error()
            || error.is_timeout()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_unrecoverable_error()
            || matches!(
                error.kind(),
                ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                )
            );
        if unreachable {
            Self::redis_unavailable(error)
        } else {
            Self::internal(error)
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message sent.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(error: redis::RedisError) -> Self {
        Self::redis(&error)
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
