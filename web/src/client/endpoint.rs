//! Where the relay is: its WebSocket and its HTTP API, from the one URL a page gives.

use super::error::{code, ClientError};

/// The relay's two addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `ws(s)://host[:port][/prefix]/ws`.
    pub(crate) ws: String,
    /// `http(s)://host[:port][/prefix]`, without a trailing slash; API paths follow.
    pub(crate) http: String,
}

impl Endpoint {
    /// From a parsed URL's parts (`protocol` with its colon, as the browser's `URL`
    /// gives them): `http(s)://host/prefix` is the relay's base, `ws(s)://host/prefix/ws`
    /// its WebSocket; either gives both.
    pub(crate) fn from_parts(protocol: &str, host: &str, path: &str) -> Result<Self, ClientError> {
        let (ws, http) = match protocol.to_ascii_lowercase().as_str() {
            "http:" | "ws:" => ("ws", "http"),
            "https:" | "wss:" => ("wss", "https"),
            other => {
                return Err(ClientError::new(
                    code::INVALID_URL,
                    format!("the relay URL must be http(s):// or ws(s)://, not {other}//"),
                ))
            }
        };
        if host.is_empty() {
            return Err(ClientError::new(
                code::INVALID_URL,
                "the relay URL has no host",
            ));
        }
        let path = path.trim_end_matches('/');
        let prefix = path.strip_suffix("/ws").unwrap_or(path);
        Ok(Self {
            ws: format!("{ws}://{host}{prefix}/ws"),
            http: format!("{http}://{host}{prefix}"),
        })
    }

    /// The address of an API path such as `/api/v1/tasks`.
    pub(crate) fn api(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }
}

/// `text` percent-encoded for one path segment.
pub(crate) use cortex_shared::url::encode as path_segment;

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(protocol: &str, host: &str, path: &str) -> Endpoint {
        Endpoint::from_parts(protocol, host, path).unwrap()
    }

    #[test]
    fn a_base_url_or_the_websocket_url_give_both_addresses() {
        let plain = Endpoint {
            ws: "ws://127.0.0.1:8080/ws".into(),
            http: "http://127.0.0.1:8080".into(),
        };
        assert_eq!(endpoint("http:", "127.0.0.1:8080", "/"), plain);
        assert_eq!(endpoint("ws:", "127.0.0.1:8080", "/ws"), plain);
        assert_eq!(endpoint("HTTP:", "127.0.0.1:8080", ""), plain);
        let tls = endpoint("https:", "cortex.example", "/relay/");
        assert_eq!(tls.ws, "wss://cortex.example/relay/ws");
        assert_eq!(
            tls.api("/api/v1/tasks"),
            "https://cortex.example/relay/api/v1/tasks"
        );
        assert_eq!(endpoint("wss:", "h", "/relay/ws").http, "https://h/relay");
    }

    #[test]
    fn other_schemes_and_missing_hosts_are_refused() {
        for (protocol, host) in [
            ("ftp:", "h"),
            ("file:", ""),
            ("http:", ""),
            ("javascript:", ""),
        ] {
            let error = Endpoint::from_parts(protocol, host, "/").unwrap_err();
            assert_eq!(error.code, code::INVALID_URL, "{protocol}");
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(path_segment("1704556900000-0"), "1704556900000-0");
        assert_eq!(path_segment("../a b/é"), "..%2Fa%20b%2F%C3%A9");
    }
}
