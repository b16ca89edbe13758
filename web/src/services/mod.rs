//! The relay's HTTP API, one file per area; every call is relative to the page's
//! origin (the relay serves the dashboard) and carries the stored token, if any
//! (`auth.rs`).

pub mod agents;
pub mod auth;
pub mod dlq;
pub mod health;
pub mod lifecycle;
pub mod metrics;
pub mod streams;
pub mod tasks;

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

/// A failed call: the API's `{"code","message"}`, or a network failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The API's stable code (`network` when there was no answer).
    pub code: String,
    /// What went wrong.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ApiError {
    fn network(error: impl fmt::Display) -> Self {
        ApiError {
            code: "network".into(),
            message: error.to_string(),
        }
    }
}

async fn read<T: DeserializeOwned>(response: Response) -> Result<T, ApiError> {
    if response.ok() {
        return response.json::<T>().await.map_err(ApiError::network);
    }
    let status = response.status();
    let error = match response.json::<cortex_shared::rest::ErrorBody>().await {
        Ok(body) => ApiError {
            code: body.code,
            message: body.message,
        },
        Err(_) => ApiError {
            code: format!("http_{status}"),
            message: response.status_text(),
        },
    };
    if status == 401 {
        auth::unauthorized(format!("The relay answered 401 ({error})."));
    }
    Err(error)
}

/// The request with the stored token, if any.
fn authorized(request: RequestBuilder) -> RequestBuilder {
    match auth::bearer() {
        Some(bearer) => request.header("Authorization", &bearer),
        None => request,
    }
}

/// `GET path`, decoded.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    let response = authorized(Request::get(path))
        .send()
        .await
        .map_err(ApiError::network)?;
    read(response).await
}

/// `POST path` with a JSON body, decoded.
pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    let response = authorized(Request::post(path))
        .json(body)
        .map_err(ApiError::network)?
        .send()
        .await
        .map_err(ApiError::network)?;
    read(response).await
}

/// `DELETE path`, decoded.
pub async fn delete<T: DeserializeOwned>(path: &str) -> Result<T, ApiError> {
    let response = authorized(Request::delete(path))
        .send()
        .await
        .map_err(ApiError::network)?;
    read(response).await
}
