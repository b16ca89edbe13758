//! The operations API under `/api/v1` (README, "HTTP API"): dead letters ([`dlq`],
//! [`dlq_actions`]), replay ([`replay`]), metrics ([`metrics`]), agents and presence
//! ([`agents`]), publishing ([`publish`]), where tasks are ([`tasks`]). Every route is listed in
//! [`crate::http::router`]; every error is [`ApiError`]'s `{"code","message"}`.
//!
//! What this module shares: the settings handlers need, and extractors whose
//! rejections are [`ApiError`]s (axum's own answer in plain text).

pub mod agents;
pub mod dlq;
pub mod dlq_actions;
pub mod metrics;
pub mod publish;
pub mod replay;
pub mod tasks;

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use crate::state::ApiSettings;

/// A query string deserialized into `T`; a bad one is a 400 `invalid_query`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

/// A path parameter; one that does not decode is a 400 `invalid_path`.
#[derive(Debug, Clone, Default)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// A request body, taken as bytes whatever its content type (bodies are JSON; an
/// optional one may be empty). Too large a body is a 413 `body_too_large`.
#[derive(Debug, Clone, Default)]
pub struct ApiBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(request, state)
            .await
            .map(Self)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(e.status(), "body_too_large", e.body_text())
                } else {
                    ApiError::bad_request("invalid_body", e.body_text())
                }
            })
    }
}

impl ApiBody {
    /// The body as JSON `T`; an empty body is `None`. An array where `T` has an
    /// object, at any depth, is a 400 `invalid_body` like any other bad body (see
    /// [`cortex_shared::strict`]).
    pub fn json<T: DeserializeOwned + Serialize>(&self) -> Result<Option<T>, ApiError> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        cortex_shared::strict::from_slice(&self.0)
            .map(Some)
            .map_err(|e| ApiError::bad_request("invalid_body", format!("invalid JSON body: {e}")))
    }

    /// The body as JSON `T`; an empty body is a 400.
    pub fn required<T: DeserializeOwned + Serialize>(&self) -> Result<T, ApiError> {
        self.json()?
            .ok_or_else(|| ApiError::bad_request("invalid_body", "a JSON body is required"))
    }
}

/// Any path under `/api/v1` that is not a route: 404 `not_found`.
pub async fn route_not_found(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::not_found("not_found", format!("no API route {method} {}", uri.path()))
}

/// A route called with a method it does not take: 405 `method_not_allowed`.
pub async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}", uri.path()),
    )
}

/// Unix milliseconds, now.
pub(crate) fn now_ms() -> u64 {
    crate::metrics::unix_ms()
}

#[cfg(test)]
mod tests;
