//! The one error type of the JavaScript client: the relay's `{code, message}` (from an
//! HTTP error body or an `error` frame), or one of the client's own codes, surfaced to
//! JavaScript as an `Error` with `code` (and, for HTTP, `status`) properties.

use cortex_shared::rest::ErrorBody;
use std::fmt;

/// Codes the client makes itself; every other code comes from the relay unchanged.
pub(crate) mod code {
    /// The relay URL given to the constructor is not an `http(s)://` or `ws(s)://` URL.
    pub(crate) const INVALID_URL: &str = "invalid_url";
    /// An argument has the wrong type or shape (the message says which).
    pub(crate) const INVALID_ARGUMENT: &str = "invalid_argument";
    /// An agent or consumer name is not `[A-Za-z0-9_.-]{1,64}` (the relay's own code).
    pub(crate) const INVALID_AGENT: &str = "invalid_agent";
    /// The call is not allowed on this client (the relay's own code), e.g. consuming
    /// a second agent on one connection.
    pub(crate) const NOT_ALLOWED: &str = "not_allowed";
    /// No valid token: HTTP 401, or the WebSocket closed with 4401 (the relay's code).
    pub(crate) const UNAUTHORIZED: &str = "unauthorized";
    /// The HTTP request did not reach the relay (nothing listening, DNS, CORS...).
    pub(crate) const NETWORK: &str = "network";
    /// The relay answered with something that is not the expected JSON.
    pub(crate) const BAD_RESPONSE: &str = "bad_response";
    /// The WebSocket closed before the relay answered; a consumed task stays pending
    /// and is delivered again.
    pub(crate) const DISCONNECTED: &str = "disconnected";
    /// No answer in time.
    pub(crate) const TIMEOUT: &str = "timeout";
    /// `close()` was called.
    pub(crate) const CLOSED: &str = "closed";
}

/// An error with a stable `code` and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientError {
    /// A stable, machine-readable code: the relay's, or one of [`code`].
    pub(crate) code: String,
    /// What went wrong.
    pub(crate) message: String,
    /// The HTTP status, for errors of the HTTP API.
    pub(crate) status: Option<u16>,
}

impl ClientError {
    /// An error without an HTTP status.
    pub(crate) fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            status: None,
        }
    }

    /// A wrong argument.
    pub(crate) fn argument(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_ARGUMENT, message)
    }

    /// The relay's error body, with the status it came with.
    pub(crate) fn from_body(body: ErrorBody, status: u16) -> Self {
        Self {
            code: body.code,
            message: body.message,
            status: Some(status),
        }
    }

    /// The client was closed.
    pub(crate) fn closed() -> Self {
        Self::new(code::CLOSED, "the client was closed")
    }

    /// As a JavaScript `Error` (`name` `CortexError`, with `code` and `status`).
    pub(crate) fn to_js(&self) -> wasm_bindgen::JsValue {
        use wasm_bindgen::JsValue;
        let error = js_sys::Error::new(&self.message);
        error.set_name("CortexError");
        let set = |key: &str, value: JsValue| {
            // Setting a property on a fresh Error object cannot fail.
            let _ = js_sys::Reflect::set(&error, &JsValue::from_str(key), &value);
        };
        set("code", JsValue::from_str(&self.code));
        if let Some(status) = self.status {
            set("status", JsValue::from(status));
        }
        error.into()
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ClientError {}
