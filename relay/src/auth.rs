//! Bearer tokens and roles (README, Configuration: Tokens and roles), and the WebSocket origin check.
//!
//! Without tokens configured the relay is open (every caller is an admin) and listens
//! on loopback only unless told otherwise (see `config`). With tokens, every API
//! request and WebSocket needs one: in the `Authorization: Bearer` header, or for a
//! WebSocket (browsers cannot set headers there) in a first `auth` frame. Never in the
//! URL, where it would end up in logs and browser history.

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watch any agent; read the HTTP API.
    Viewer,
    /// Watch; consume and heartbeat as the agents it lists.
    Agent,
    /// Everything: publish, DLQ actions, consume as anyone.
    Admin,
}

/// One bearer token (`relay.tokens` in the config file, or the token file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// The secret, sent as `Authorization: Bearer <token>`.
    pub token: String,
    /// What it may do.
    pub role: Role,
    /// For `agent`: the agents it may consume and heartbeat as.
    #[serde(default)]
    pub agents: Vec<String>,
}

/// What a caller may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Its role.
    pub role: Role,
    /// For [`Role::Agent`]: the agents it may consume and heartbeat as.
    pub agents: BTreeSet<String>,
}

impl Grant {
    /// Full access: what every caller gets when no token is configured.
    pub fn admin() -> Self {
        Self {
            role: Role::Admin,
            agents: BTreeSet::new(),
        }
    }

    /// May it watch (and read the API)? Every role may.
    pub fn can_watch(&self) -> bool {
        true
    }

    /// May it consume (or heartbeat) as `agent`?
    pub fn can_act_as(&self, agent: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Agent => self.agents.contains(agent),
            Role::Viewer => false,
        }
    }

    /// May it change things: publish, DLQ actions?
    pub fn can_administer(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Why a caller was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was given, and one is required.
    #[error("a bearer token is required")]
    Missing,
    /// The token is not one of the configured ones.
    #[error("the token is not valid")]
    Unknown,
}

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Auth {
    tokens: HashMap<String, Grant>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Auth {
    /// From the configuration's token list.
    pub fn new(specs: &[TokenSpec]) -> Self {
        Self {
            tokens: specs
                .iter()
                .map(|spec| {
                    let grant = Grant {
                        role: spec.role,
                        agents: spec.agents.iter().cloned().collect(),
                    };
                    (spec.token.clone(), grant)
                })
                .collect(),
        }
    }

    /// Whether no token is configured (everyone is an admin).
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The grant for `token` (`None`: none given).
    pub fn check(&self, token: Option<&str>) -> Result<Grant, AuthError> {
        if self.is_open() {
            return Ok(Grant::admin());
        }
        let token = token.ok_or(AuthError::Missing)?;
        // Compared through a hash map: the lookup time does not depend on how much of
        // a wrong token matches a right one's prefix.
        self.tokens.get(token).cloned().ok_or(AuthError::Unknown)
    }
}

/// Middleware: `/api/…` and `/metrics` need a valid token when tokens are configured
/// (401 without one); reading (`GET`, `HEAD`) needs any role, anything else `admin`
/// (403). Probes, the dashboard's files and `/ws` (which checks for itself) are open.
pub async fn require_token(
    axum::extract::State(auth): axum::extract::State<Auth>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    let guarded = path.starts_with("/api/") || path == "/metrics";
    if !guarded || auth.is_open() {
        return next.run(request).await;
    }
    let grant = match auth.check(bearer(request.headers())) {
        Ok(grant) => grant,
        Err(e) => return crate::error::ApiError::unauthorized(e.to_string()).into_response(),
    };
    let reading = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if !reading && !grant.can_administer() {
        return crate::error::ApiError::forbidden(
            "forbidden",
            "this token's role may only read; changes need an admin token",
        )
        .into_response();
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Which browser origins may open a WebSocket: the relay's own (same host), localhost
/// on any port, and an allowlist (`*` for any).
#[derive(Debug, Clone, Default)]
pub struct Origins {
    allowed: Vec<String>,
}

impl Origins {
    /// With `allowed` besides the defaults.
    pub fn new(allowed: &[String]) -> Self {
        Self {
            allowed: allowed
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a handshake with these headers may proceed. No `Origin` header means
    /// not a browser (browsers always send it on WebSocket handshakes): allowed, since
    /// it cannot be a cross-site page acting with a victim's browser.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers
            .get(axum::http::header::ORIGIN)
            .and_then(|o| o.to_str().ok())
        else {
            return true;
        };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.allowed.iter().any(|a| a == "*" || *a == origin) {
            return true;
        }
        let Some(host_port) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        let same_host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|host| host.eq_ignore_ascii_case(host_port));
        same_host || is_localhost(host_port)
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with any port.
fn is_localhost(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn specs() -> Vec<TokenSpec> {
        vec![
            TokenSpec {
                token: "viewer-token-0001".into(),
                role: Role::Viewer,
                agents: vec![],
            },
            TokenSpec {
                token: "agent-token-00001".into(),
                role: Role::Agent,
                agents: vec!["pink".into()],
            },
        ]
    }

    #[test]
    fn roles_allow_what_they_should() {
        let auth = Auth::new(&specs());
        assert_eq!(auth.check(None), Err(AuthError::Missing));
        assert_eq!(auth.check(Some("nope")), Err(AuthError::Unknown));
        let viewer = auth.check(Some("viewer-token-0001")).unwrap();
        assert!(viewer.can_watch() && !viewer.can_act_as("pink") && !viewer.can_administer());
        let agent = auth.check(Some("agent-token-00001")).unwrap();
        assert!(agent.can_act_as("pink") && !agent.can_act_as("harold"));
        assert!(!agent.can_administer());
        let open = Auth::new(&[]);
        assert!(open.is_open() && open.check(None).unwrap().can_administer());
    }

    #[test]
    fn bearer_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn origins() {
        let with = |origin: &str, host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("origin", HeaderValue::from_str(origin).unwrap());
            headers.insert("host", HeaderValue::from_str(host).unwrap());
            headers
        };
        let origins = Origins::new(&["https://ops.example.org/".to_owned()]);
        assert!(origins.allows(&HeaderMap::new()));
        assert!(origins.allows(&with("http://relay.lan:8080", "relay.lan:8080")));
        assert!(origins.allows(&with("http://localhost:3000", "relay.lan:8080")));
        assert!(origins.allows(&with("http://127.0.0.1:5173", "relay.lan:8080")));
        assert!(origins.allows(&with("http://[::1]:5173", "relay.lan:8080")));
        assert!(origins.allows(&with("https://ops.example.org", "relay.lan:8080")));
        assert!(!origins.allows(&with("https://evil.example", "relay.lan:8080")));
        assert!(!origins.allows(&with("http://localhost.evil.example", "relay.lan:8080")));
        assert!(!origins.allows(&with("null", "relay.lan:8080")));
        assert!(Origins::new(&["*".to_owned()]).allows(&with("https://evil.example", "x")));
    }
}
