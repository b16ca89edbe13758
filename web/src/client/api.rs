//! The relay's HTTP API (`/api/v1/...`) from the browser: one JSON call, with the token
//! as `Authorization: Bearer`, and the relay's `{code, message}` errors kept as they are.

use super::endpoint::Endpoint;
use super::error::{code, ClientError};
use cortex_shared::rest::ErrorBody;
use gloo_net::http::{Request, RequestBuilder};
use serde_json::Value;

/// An HTTP method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// Reading.
    Get,
    /// Publishing, retrying.
    Post,
    /// Deleting.
    Delete,
}

/// One API call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// Its method.
    pub(crate) method: Method,
    /// Its path, e.g. `/api/v1/tasks`, segments already encoded.
    pub(crate) path: String,
    /// Query parameters.
    pub(crate) query: Vec<(String, String)>,
    /// A JSON body.
    pub(crate) body: Option<Value>,
}

impl Call {
    /// A call without query or body.
    pub(crate) fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }
}

/// The fields of `query` (a struct of options) as query parameters; absent ones left out.
pub(crate) fn query_pairs(query: &impl serde::Serialize) -> Vec<(String, String)> {
    let Ok(Value::Object(fields)) = serde_json::to_value(query) else {
        return Vec::new();
    };
    fields
        .into_iter()
        .filter_map(|(key, value)| match value {
            Value::Null => None,
            Value::String(text) => Some((key, text)),
            other => Some((key, other.to_string())),
        })
        .collect()
}

/// Makes `call` and returns the relay's JSON answer, or its error.
pub(crate) async fn send(
    endpoint: &Endpoint,
    token: Option<&str>,
    call: Call,
) -> Result<Value, ClientError> {
    let url = endpoint.api(&call.path);
    let builder: RequestBuilder = match call.method {
        Method::Get => Request::get(&url),
        Method::Post => Request::post(&url),
        Method::Delete => Request::delete(&url),
    };
    let mut builder = builder
        .header("Accept", "application/json")
        .query(call.query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if let Some(token) = token {
        builder = builder.header("Authorization", &format!("Bearer {token}"));
    }
    let unreachable = |e: gloo_net::Error| {
        ClientError::new(
            code::NETWORK,
            format!("could not reach the relay at {url}: {e}"),
        )
    };
    let response = match &call.body {
        Some(body) => builder.json(body).map_err(unreachable)?.send().await,
        None => builder.send().await,
    }
    .map_err(unreachable)?;
    let status = response.status();
    let text = response.text().await.map_err(unreachable)?;
    answer(status, &text)
}

/// The JSON of a successful answer, or the relay's error.
pub(crate) fn answer(status: u16, text: &str) -> Result<Value, ClientError> {
    if (200..300).contains(&status) {
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        return serde_json::from_str(text).map_err(|e| ClientError {
            code: code::BAD_RESPONSE.into(),
            message: format!("the relay answered {status} with something that is not JSON: {e}"),
            status: Some(status),
        });
    }
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => Err(ClientError::from_body(body, status)),
        Err(_) => {
            let start: String = text.chars().take(200).collect();
            Err(ClientError {
                code: if status == 401 {
                    code::UNAUTHORIZED.into()
                } else {
                    code::BAD_RESPONSE.into()
                },
                message: format!("HTTP {status}: {start}"),
                status: Some(status),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_become_query_parameters() {
        let query: cortex_shared::rest::DlqListQuery =
            serde_json::from_value(json!({"agent":"pink","type":"coding","limit":10})).unwrap();
        assert_eq!(
            query_pairs(&query),
            [
                ("agent".to_owned(), "pink".to_owned()),
                ("limit".to_owned(), "10".to_owned()),
                ("type".to_owned(), "coding".to_owned())
            ]
        );
    }

    #[test]
    fn answers_keep_the_relays_codes() {
        assert_eq!(
            answer(201, r#"{"task_id":"t"}"#).unwrap(),
            json!({"task_id":"t"})
        );
        assert_eq!(answer(204, "").unwrap(), Value::Null);
        let error = answer(
            401,
            r#"{"code":"unauthorized","message":"a bearer token is required"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (error.code.as_str(), error.status),
            ("unauthorized", Some(401))
        );
        assert_eq!(error.message, "a bearer token is required");
        let error = answer(502, "<html>bad gateway</html>").unwrap_err();
        assert_eq!(
            (error.code.as_str(), error.status),
            ("bad_response", Some(502))
        );
        assert_eq!(answer(200, "<html>").unwrap_err().code, "bad_response");
    }
}
