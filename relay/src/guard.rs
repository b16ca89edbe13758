//! What a hostile web page could make a visitor's browser send to the relay, refused
//! before any route sees it (README, "Pages on other sites"):
//!
//! - **DNS rebinding.** A page on a name the attacker controls, re-pointed at the
//!   relay's address, is same-origin with the relay in the browser's eyes and may read
//!   every answer. Its requests carry that name in `Host`, so a `Host` that is not an
//!   IP address, a loopback name (`localhost`, `*.localhost`) or a configured public
//!   name (`--public-host`) is 421 `misdirected_request`, on every route.
//! - **Cross-site requests.** A page on another origin may send "simple" requests
//!   (no preflight) and cannot read the answers, but the change is made all the same.
//!   A request that may change something (any method but `GET`, `HEAD`, `OPTIONS`,
//!   `TRACE`) whose `Origin` is not allowed ([`Origins`], as for the WebSocket), or
//!   which has no `Origin` but `Sec-Fetch-Site: cross-site`, is 403
//!   `forbidden_origin`. Requests without either (curl, the CLI, agents) are not
//!   browsers acting for a page, and pass.
//! - **Bodies a page can send without a preflight** (`text/plain`, forms): a request
//!   with a body needs `Content-Type: application/json`, else 415
//!   `unsupported_media_type`.

use crate::auth::Origins;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;

/// Which hosts and origins the relay serves requests for.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    origins: Origins,
    /// Lowercase, without a trailing dot.
    public_hosts: Vec<String>,
}

impl Guard {
    /// Allowing `origins` to make changes, and serving `public_hosts` (host names,
    /// without a port) besides IP addresses and loopback names.
    pub fn new(origins: Origins, public_hosts: &[String]) -> Self {
        Self {
            origins,
            public_hosts: public_hosts.iter().map(|h| normalize(h)).collect(),
        }
    }

    /// Whether a request with this method, URI and headers may go on; the refusal if
    /// not.
    pub fn check(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
        self.check_host(uri, headers)?;
        if !method.is_safe() {
            check_origin(&self.origins, headers)?;
        }
        check_body_type(headers)
    }

    fn check_host(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = match headers.get(header::HOST) {
            Some(value) => value.to_str().ok(),
            // HTTP/1.0 without `Host`, or HTTP/2's `:authority` in the URI. No browser
            // sends a request without either.
            None => match uri.authority() {
                Some(authority) => Some(authority.as_str()),
                None => return Ok(()),
            },
        };
        let name = host.and_then(host_name);
        match name {
            Some(name) if self.serves(&name) => Ok(()),
            _ => {
                let shown = name.or(host.map(str::to_owned)).unwrap_or_default();
                tracing::info!(host = %shown, "refused a request for a host name this relay does not serve");
                Err(ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "misdirected_request",
                    format!(
                        "this relay does not serve the host name {shown:?}; open it by its IP \
                         address or localhost, or start it with --public-host {shown}"
                    ),
                ))
            }
        }
    }

    /// An IP address, a loopback name, or a configured public name.
    fn serves(&self, name: &str) -> bool {
        let unbracketed = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        unbracketed.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.public_hosts.iter().any(|h| h == name)
    }
}

/// The host name of a `Host` value (`name`, `name:port`, `[v6]:port`), normalized;
/// `None` if it is not one.
fn host_name(host: &str) -> Option<String> {
    let authority: axum::http::uri::Authority = host.parse().ok()?;
    // A `Host` carries no user info; one that does is not a host.
    if authority.as_str().contains('@') {
        return None;
    }
    Some(normalize(authority.host()))
}

/// Lowercase, without the trailing dot of a fully qualified name.
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A change from a browser page must come from an allowed origin.
fn check_origin(origins: &Origins, headers: &HeaderMap) -> Result<(), ApiError> {
    let origin = headers.get(header::ORIGIN);
    let refused = match origin {
        Some(_) => !origins.allows(headers),
        None => headers
            .get("sec-fetch-site")
            .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site")),
    };
    if !refused {
        return Ok(());
    }
    let shown = origin
        .and_then(|o| o.to_str().ok())
        .unwrap_or("none, from another site");
    tracing::info!(origin = %shown, "refused a change requested by a page on another origin");
    Err(ApiError::forbidden(
        "forbidden_origin",
        format!(
            "changes are not taken from pages on other origins (Origin: {shown}); the relay's \
             own pages, localhost and --allowed-origin may make them"
        ),
    ))
}

/// A request with a body must say it is JSON.
fn check_body_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    if !has_body {
        return Ok(());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if json {
        return Ok(());
    }
    tracing::debug!("refused a request body that is not declared as JSON");
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "a request body must be JSON, sent with Content-Type: application/json",
    ))
}

/// Middleware: [`Guard::check`] on every request.
pub async fn guard(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match guard.check(request.method(), request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use axum::Router;
    use serde_json::Value;
    use tower::ServiceExt;

    /// A router answering 200 "done" behind the guard: one with the defaults and
    /// `relay.example.org` as public name.
    fn app() -> Router {
        let guard = Guard::new(
            Origins::new(&["https://ops.example.org".to_owned()]),
            &["Relay.Example.org.".to_owned()],
        );
        Router::new()
            .route("/read", get(|| async { "done" }))
            .route(
                "/change",
                post(|| async { "done" }).delete(|| async { "done" }),
            )
            .layer(axum::middleware::from_fn_with_state(
                Arc::new(guard),
                super::guard,
            ))
    }

    /// `method path` with `headers` (and `body`, if any); the status and the error
    /// code (`None`: the route answered).
    async fn call(
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Option<String>) {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !body.is_empty() {
            request = request.header("content-length", body.len());
        }
        let request = request.body(Body::from(body.to_owned())).unwrap();
        let response = app().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        if bytes.as_ref() == b"done" {
            return (status, None);
        }
        let error: Value = serde_json::from_slice(&bytes).expect("a JSON error");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        (status, error["code"].as_str().map(str::to_owned))
    }

    fn refused(code: &str, status: u16) -> (u16, Option<String>) {
        (status, Some(code.to_owned()))
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[tokio::test]
    async fn hosts_other_than_addresses_loopback_names_and_public_names_are_misdirected() {
        for host in [
            "127.0.0.1:8080",
            "10.1.2.3:8080",
            "[::1]:8080",
            "[fe80::1]",
            "localhost:8080",
            "LOCALHOST",
            "localhost.:8080",
            "dash.localhost:8080",
            "relay.example.org",
            "relay.example.org:443",
        ] {
            let ok = call(Method::GET, "/read", &[("host", host)], "").await;
            assert_eq!(ok, (200, None), "{host}");
        }
        for host in [
            "rebind.example:8080",
            "rebind.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "example.org",
            "sub.relay.example.org",
            "user@relay.example.org",
            "not a host",
            "",
        ] {
            for (method, path) in [(Method::GET, "/read"), (Method::POST, "/change")] {
                let got = call(method, path, &[("host", host)], "").await;
                assert_eq!(got, refused("misdirected_request", 421), "{host}");
            }
        }
        // No Host at all (HTTP/1.0, or a test's request): not a browser's.
        assert_eq!(call(Method::GET, "/read", &[], "").await, (200, None));
    }

    #[tokio::test]
    async fn changes_from_other_origins_are_forbidden() {
        let host = ("host", "127.0.0.1:8080");
        for origin in [
            "http://127.0.0.1:8080",
            "http://localhost:5173",
            "http://127.0.0.1:9999",
            "https://ops.example.org",
        ] {
            for method in [Method::POST, Method::DELETE] {
                let headers = [host, ("origin", origin), ("sec-fetch-site", "cross-site")];
                let got = call(method.clone(), "/change", &headers, "").await;
                assert_eq!(got, (200, None), "{method} from {origin}");
            }
        }
        for origin in ["http://evil.example", "https://evil.example:8080", "null"] {
            for method in [Method::POST, Method::DELETE] {
                let headers = [host, ("origin", origin), JSON];
                let got = call(method.clone(), "/change", &headers, "{}").await;
                assert_eq!(
                    got,
                    refused("forbidden_origin", 403),
                    "{method} from {origin}"
                );
            }
            // Reading is not a change (and a page cannot read the answer).
            let got = call(Method::GET, "/read", &[host, ("origin", origin)], "").await;
            assert_eq!(got, (200, None), "GET from {origin}");
        }
        // No Origin, but the browser says the page is on another site.
        let headers = [host, ("sec-fetch-site", "cross-site")];
        let got = call(Method::POST, "/change", &headers, "").await;
        assert_eq!(got, refused("forbidden_origin", 403));
        for site in ["same-origin", "same-site", "none"] {
            let headers = [host, ("sec-fetch-site", site)];
            assert_eq!(
                call(Method::POST, "/change", &headers, "").await,
                (200, None)
            );
        }
        // No Origin and no Sec-Fetch-Site: curl, the CLI, an agent.
        assert_eq!(
            call(Method::POST, "/change", &[host, JSON], "{}").await,
            (200, None)
        );
    }

    #[tokio::test]
    async fn bodies_must_be_declared_json() {
        let host = ("host", "127.0.0.1:8080");
        for content_type in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
        ] {
            let headers = [host, ("content-type", content_type)];
            let got = call(Method::POST, "/change", &headers, "{}").await;
            assert_eq!(got, (200, None), "{content_type}");
        }
        for content_type in [
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
            None,
        ] {
            let mut headers = vec![host];
            headers.extend(content_type.map(|c| ("content-type", c)));
            let got = call(Method::POST, "/change", &headers, r#"{"filter":{}}"#).await;
            assert_eq!(
                got,
                refused("unsupported_media_type", 415),
                "{content_type:?}"
            );
        }
        let chunked = [host, ("transfer-encoding", "chunked")];
        let got = call(Method::POST, "/change", &chunked, "").await;
        assert_eq!(got, refused("unsupported_media_type", 415), "chunked");
        // No body: no type needed (a retry without overrides, a DELETE).
        assert_eq!(
            call(Method::POST, "/change", &[host], "").await,
            (200, None)
        );
        let empty = [
            host,
            ("content-length", "0"),
            ("content-type", "text/plain"),
        ];
        assert_eq!(call(Method::POST, "/change", &empty, "").await, (200, None));
        assert_eq!(
            call(Method::DELETE, "/change", &[host], "").await,
            (200, None)
        );
    }

    #[tokio::test]
    async fn the_host_is_checked_first_then_the_origin_then_the_body() {
        let evil = ("origin", "http://evil.example");
        let plain = ("content-type", "text/plain");
        let rebound = [("host", "rebind.example"), evil, plain];
        let got = call(Method::POST, "/change", &rebound, "{}").await;
        assert_eq!(got, refused("misdirected_request", 421));
        let cross = [("host", "127.0.0.1:8080"), evil, plain];
        let got = call(Method::POST, "/change", &cross, "{}").await;
        assert_eq!(got, refused("forbidden_origin", 403));
    }
}
