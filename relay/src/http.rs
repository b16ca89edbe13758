//! The HTTP surface: one [`router`] listing every route, and the layers over them all.

use crate::api;
use crate::error::ApiError;
use crate::state::AppState;
use crate::ws;
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// Every route of the relay. The dashboard in `dashboard_dir` is served at `/`
/// (unknown paths fall back to its `index.html`, so deep links work; not under
/// `/api`, where they are JSON 404s). Every request passes [`crate::guard`] first; the
/// API needs a token when tokens are configured (see [`crate::auth::require_token`]).
pub fn router(state: AppState, dashboard_dir: &Path) -> Router {
    let auth = state.services.auth.clone();
    let guard = state.guard.clone();
    // The operations API (README, "HTTP API"); unknown paths under it are JSON 404s,
    // not the dashboard.
    let api_v1 = Router::new()
        .route("/messaging/metrics", get(api::metrics::messaging))
        .route("/messaging/dlq", get(api::dlq::list))
        .route("/messaging/dlq/stats", get(api::dlq::stats))
        .route(
            "/messaging/dlq/{dlq_id}",
            get(api::dlq::one).delete(api::dlq_actions::delete),
        )
        .route("/messaging/dlq/retry", post(api::dlq_actions::bulk_retry))
        .route(
            "/messaging/dlq/retry/{dlq_id}",
            post(api::dlq_actions::retry),
        )
        .route("/messaging/dlq/delete", post(api::dlq_actions::bulk_delete))
        .route("/streams/{stream}/entries", get(api::replay::entries))
        .route("/agents", get(api::agents::list))
        .route("/agents/{name}/outcomes", get(api::agents::outcomes))
        .route("/tasks", post(api::publish::publish).get(api::tasks::list))
        .route("/tasks/{task_id}", get(api::tasks::one))
        .route(
            "/tasks/by-entry/{stream}/{entry_id}",
            get(api::tasks::by_entry),
        )
        .route("/traces/{correlation_id}", get(api::tasks::trace))
        .fallback(api::route_not_found)
        .method_not_allowed_fallback(api::method_not_allowed);
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(api::metrics::prometheus))
        .route("/ws", get(ws::handler))
        .nest("/api/v1", api_v1)
        // Whatever else is under /api (`/api/v1/`, `/api/v2/…`): JSON 404s too.
        .route("/api", any(api::route_not_found))
        .route("/api/", any(api::route_not_found))
        .route("/api/{*rest}", any(api::route_not_found))
        .with_state(state);
    let app = crate::dashboard::attach(api, dashboard_dir);
    // Last, so that they cover every route above; the guard outermost, so that a
    // hostile page's request is refused before anything else looks at it.
    app.layer(axum::middleware::from_fn_with_state(
        auth,
        crate::auth::require_token,
    ))
    .layer(axum::middleware::from_fn_with_state(
        guard,
        crate::guard::guard,
    ))
}

/// `GET /healthz`: the process is up: `{"status":"ok","version":"0.1.0"}`.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

/// `GET /readyz`: Redis answers a PING within a second.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ping = async {
        let mut conn = state.services.redis.clone();
        crate::store::ping(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(1), ping).await {
        Ok(Ok(_)) => Ok(Json(json!({"status": "ready", "redis": "ok"}))),
        Ok(Err(e)) => Err(ApiError::redis_unavailable(e)),
        Err(_) => Err(ApiError::redis_unavailable("PING timed out after 1 s")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consume::DeliverySettings;
    use crate::engine::hub::Hub;
    use crate::state::{Services, SessionLimits};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    fn state(redis_url: &str) -> AppState {
        let client = redis::Client::open(redis_url).unwrap();
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(Duration::from_millis(200)));
        AppState {
            hub: Hub::new(8),
            services: std::sync::Arc::new(Services {
                limits: SessionLimits {
                    send_queue: 8,
                    max_message_bytes: 1024,
                    max_subscriptions: 4,
                    max_frames_per_second: 100,
                    ping_interval: Duration::from_secs(30),
                    max_connections: 10,
                },
                redis: client.get_connection_manager_lazy(config).unwrap(),
                client,
                delivery: DeliverySettings::default(),
                lifecycle: crate::store::lifecycle::LifecycleSettings::default(),
                metrics: std::sync::Arc::default(),
                auth: crate::auth::Auth::default(),
                origins: crate::auth::Origins::default(),
            }),
            shutdown: CancellationToken::new(),
            api: crate::state::ApiSettings::default(),
            guard: std::sync::Arc::default(),
        }
    }

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn healthz_is_ok() {
        let router = router(state("redis://127.0.0.1:1"), Path::new("/nonexistent"));
        let (status, body) = get(router, "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["status"], "ok");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    }

    #[tokio::test]
    async fn readyz_without_redis_is_503_with_a_stable_code_and_no_detail() {
        // Port 1 on loopback: nothing listens there.
        let router = router(state("redis://127.0.0.1:1"), Path::new("/nonexistent"));
        let (status, body) = get(router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "redis_unavailable");
        assert_eq!(body["message"], "Redis is not reachable");
    }

    /// A directory holding a dashboard build (`index.html` says "dash"), removed on
    /// drop.
    struct Dashboard(std::path::PathBuf);

    impl Dashboard {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("cortex-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("index.html"), "<h1>dash</h1>").unwrap();
            std::fs::write(dir.join("app.js"), "js").unwrap();
            Self(dir)
        }
    }

    impl Drop for Dashboard {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// `request` through the router: the status and the JSON error code (`None`: not
    /// a JSON error).
    async fn code_of(router: Router, request: Request<Body>) -> (StatusCode, Option<String>) {
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let code = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned));
        (status, code)
    }

    #[tokio::test]
    async fn every_path_under_api_that_is_no_route_is_a_json_404_not_the_dashboard() {
        let dir = Dashboard::new("api-404");
        for path in [
            "/api",
            "/api/",
            "/api/v1",
            "/api/v1/",
            "/api/v2/x",
            "/api/v2/",
            "/api/x/y/z",
            "/api/v1/nothing",
            "/api/v1/messaging/dlq/a/b/c",
            "/api/v1/?q=1",
        ] {
            for method in [axum::http::Method::GET, axum::http::Method::POST] {
                let router = router(state("redis://127.0.0.1:1"), &dir.0);
                let request = Request::builder()
                    .method(method.clone())
                    .uri(path)
                    .body(Body::empty())
                    .unwrap();
                let got = code_of(router, request).await;
                let want = (StatusCode::NOT_FOUND, Some("not_found".to_owned()));
                assert_eq!(got, want, "{method} {path}");
            }
        }
        // Paths that only begin like /api are the dashboard's.
        for path in ["/apis", "/api-docs/x", "/agents/api"] {
            let (status, body) = get(router(state("redis://127.0.0.1:1"), &dir.0), path).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, "<h1>dash</h1>"),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn the_guard_covers_every_route() {
        let dir = Dashboard::new("guard");
        // A foreign Host: refused everywhere, dashboard files and /ws included.
        for path in [
            "/",
            "/app.js",
            "/agents/pink",
            "/healthz",
            "/readyz",
            "/metrics",
            "/ws",
            "/api/v1/agents",
            "/api/v1/messaging/dlq",
            "/api/nothing",
        ] {
            let request = Request::get(path)
                .header("host", "rebind.example:8080")
                .body(Body::empty())
                .unwrap();
            let got = code_of(router(state("redis://127.0.0.1:1"), &dir.0), request).await;
            let want = (
                StatusCode::MISDIRECTED_REQUEST,
                Some("misdirected_request".to_owned()),
            );
            assert_eq!(got, want, "{path}");
        }
        // Changes from a page on another origin, and bodies that are not JSON: refused
        // before the handler (which would answer 503: no Redis here).
        for (origin, content_type, want) in [
            (
                "http://evil.example",
                "application/json",
                (403, "forbidden_origin"),
            ),
            (
                "http://evil.example",
                "text/plain",
                (403, "forbidden_origin"),
            ),
            (
                "http://127.0.0.1:8080",
                "text/plain",
                (415, "unsupported_media_type"),
            ),
            (
                "http://127.0.0.1:8080",
                "application/x-www-form-urlencoded",
                (415, "unsupported_media_type"),
            ),
            (
                "http://127.0.0.1:8080",
                "application/json",
                (503, "redis_unavailable"),
            ),
        ] {
            for path in ["/api/v1/messaging/dlq/delete", "/api/v1/tasks"] {
                let body = r#"{"filter":{}}"#;
                let request = Request::post(path)
                    .header("host", "127.0.0.1:8080")
                    .header("origin", origin)
                    .header("content-type", content_type)
                    .header("content-length", body.len())
                    .body(Body::from(body))
                    .unwrap();
                let (status, code) =
                    code_of(router(state("redis://127.0.0.1:1"), &dir.0), request).await;
                let got = (status.as_u16(), code.as_deref().unwrap_or_default());
                if path == "/api/v1/tasks" && want.0 == 503 {
                    // Not a task: refused by the handler, after the guard let it by.
                    assert_eq!(got, (400, "invalid_body"), "{path} {origin} {content_type}");
                } else {
                    assert_eq!(got, want, "{path} {origin} {content_type}");
                }
            }
        }
    }

    #[tokio::test]
    async fn dashboard_is_served_with_index_fallback() {
        let dir = std::env::temp_dir().join(format!("cortex-dash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), "<h1>dash</h1>").unwrap();
        std::fs::write(dir.join("app.js"), "js").unwrap();
        let (status, body) = get(router(state("redis://127.0.0.1:1"), &dir), "/").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "<h1>dash</h1>"));
        let (_, body) = get(router(state("redis://127.0.0.1:1"), &dir), "/app.js").await;
        assert_eq!(body, "js");
        let (status, body) = get(router(state("redis://127.0.0.1:1"), &dir), "/agents/pink").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "<h1>dash</h1>"));
        // A name longer than the file system looks up (ServeDir's 500 before).
        let long = format!("/{}", "a".repeat(8000));
        let (status, body) = get(router(state("redis://127.0.0.1:1"), &dir), &long).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "<h1>dash</h1>"));
        let long = format!("/x/{}/y", "b".repeat(300));
        let (status, _) = get(router(state("redis://127.0.0.1:1"), &dir), &long).await;
        assert_eq!(status, StatusCode::OK);
        std::fs::remove_dir_all(&dir).unwrap();

        // Without the directory: the copy in the binary, or a notice when there is none.
        let (status, body) = get(router(state("redis://127.0.0.1:1"), &dir), "/").await;
        if crate::dashboard::embedded_available() {
            assert_eq!(status, StatusCode::OK);
            assert!(body.contains("cortex-web"), "{body}");
        } else {
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert!(body.contains("cargo xtask run"));
        }
    }
}
