//! A small HTTP/1.1 client for the relay's JSON API (plain `http://`, which is what a
//! relay serves), sending the bearer token when one is given. Errors the relay
//! answers as `{"code","message"}` become [`CliError::Refused`].

use super::{CliError, CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use axum::body::Body;
use axum::http::{header, Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Largest response body read.
const MAX_BODY: usize = 64 << 20;

/// A relay's API at one base URL (`http://host:port`).
pub(crate) struct RelayClient {
    base: String,
    token: Option<String>,
    client: Client<HttpConnector, Body>,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl RelayClient {
    /// A client of the relay at `base` (no trailing slash), authenticating with `token`.
    pub(crate) fn new(base: &str, token: Option<&str>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        Self {
            base: base.to_owned(),
            token: token.map(str::to_owned),
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// The relay's base URL.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// `method path` with an optional JSON body; the answer's JSON (`null` when the
    /// body is empty).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .map_err(|e| CliError::relay(&self.base, format!("bad request {url}: {e}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| CliError::relay(&self.base, describe(&e)))?;
            let status = response.status();
            let bytes = axum::body::to_bytes(Body::new(response.into_body()), MAX_BODY)
                .await
                .map_err(|e| CliError::relay(&self.base, format!("reading the answer: {e}")))?;
            Ok::<_, CliError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(RESPONSE_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                CliError::relay(&self.base, format!("no answer after {RESPONSE_TIMEOUT:?}"))
            })??;
        let json: Option<Value> = serde_json::from_slice(&bytes).ok();
        if status.is_success() {
            return match json {
                Some(value) => Ok(value),
                None if bytes.is_empty() => Ok(Value::Null),
                None => Err(CliError::relay(
                    &self.base,
                    format!(
                        "{method} {path}: the answer is not JSON (is this a Cortex relay \
                         with that API?)"
                    ),
                )),
            };
        }
        let field = |name: &str| {
            json.as_ref()
                .and_then(|v| v.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match (field("code"), field("message")) {
            (Some(code), message) => Err(CliError::Refused {
                code,
                message: message.unwrap_or_else(|| status.to_string()),
            }),
            _ => Err(CliError::relay(
                &self.base,
                format!("{method} {path}: HTTP {status}"),
            )),
        }
    }
}

/// A client error with its cause (hyper-util's own message is only "client error").
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

pub(crate) use cortex_shared::url::encode;

/// `?k=v&…` of the pairs whose value is present, or the empty string.
pub(crate) fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        assert_eq!(encode("a b/ç"), "a%20b%2F%C3%A7");
        assert_eq!(
            query(&[
                ("to", Some("pink".into())),
                ("type", None),
                ("error", Some("time out".into()))
            ]),
            "?to=pink&error=time%20out"
        );
        assert_eq!(query(&[("to", None)]), "");
    }
}
