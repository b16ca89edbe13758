//! The API's routes through the real router (`oneshot`), where no Redis is needed:
//! refusals of bad requests, unknown routes, and the answers when Redis is down.

use crate::Config;
use crate::Relay;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Nothing listens on port 1 of loopback.
const NO_REDIS: &str = "redis://127.0.0.1:1/";

async fn app() -> axum::Router {
    let config = Config::for_redis("127.0.0.1:0".parse().unwrap(), NO_REDIS);
    Relay::new(&config, NO_REDIS, CancellationToken::new())
        .await
        .unwrap()
        .app
}

async fn call(method: Method, uri: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app().await.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

async fn expect(method: Method, uri: &str, body: &str, status: u16, code: &str) {
    let (got, json) = call(method.clone(), uri, body).await;
    assert_eq!(got.as_u16(), status, "{method} {uri} {body}: {json}");
    assert_eq!(json["code"], code, "{method} {uri} {body}: {json}");
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{json}"
    );
}

#[tokio::test]
async fn unknown_api_paths_and_methods_are_json_errors() {
    expect(Method::GET, "/api/v1/nothing/here", "", 404, "not_found").await;
    expect(
        Method::GET,
        "/api/v1/messaging/dlq/retry",
        "",
        405,
        "method_not_allowed",
    )
    .await;
    expect(
        Method::PUT,
        "/api/v1/tasks",
        "{}",
        405,
        "method_not_allowed",
    )
    .await;
    expect(
        Method::DELETE,
        "/api/v1/messaging/dlq",
        "",
        405,
        "method_not_allowed",
    )
    .await;
}

/// serde's derive reads a struct from an array, its items as the fields in order:
/// `{"filter":[]}` was a filter matching every letter. Each is refused before Redis is
/// asked (with Redis away, a body that got through would be a 503).
#[tokio::test]
async fn arrays_where_objects_belong_are_400_invalid_body() {
    let post = Method::POST;
    for (uri, body, at) in [
        (
            "/api/v1/messaging/dlq/delete",
            r#"{"filter":[]}"#,
            "`filter`",
        ),
        (
            "/api/v1/messaging/dlq/delete",
            r#"{"filter":["x"]}"#,
            "`filter`",
        ),
        (
            "/api/v1/messaging/dlq/delete",
            r#"[null,{}]"#,
            "the top level",
        ),
        (
            "/api/v1/messaging/dlq/retry",
            r#"{"filter":[]}"#,
            "`filter`",
        ),
        (
            "/api/v1/messaging/dlq/retry",
            r#"[null,{}]"#,
            "the top level",
        ),
        (
            "/api/v1/messaging/dlq/retry/1704556800000-0",
            r#"["high"]"#,
            "the top level",
        ),
        (
            "/api/v1/tasks",
            r#"["pink","high","coding"]"#,
            "the top level",
        ),
    ] {
        let (status, json) = call(post.clone(), uri, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body}: {json}");
        assert_eq!(json["code"], "invalid_body", "{uri} {body}: {json}");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains(at), "{uri} {body}: {message}");
    }
    // An object with arrays where arrays belong gets past decoding (then Redis is
    // away: 503).
    let (status, json) = call(
        post,
        "/api/v1/messaging/dlq/delete",
        r#"{"ids":["1704556800000-0"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
}

#[tokio::test]
async fn bad_filters_ids_and_bodies_are_400_before_redis_is_asked() {
    let get = Method::GET;
    let post = Method::POST;
    for (method, uri, body, code) in [
        (
            get.clone(),
            "/api/v1/messaging/dlq?agnet=pink",
            "",
            "invalid_query",
        ),
        (
            get.clone(),
            "/api/v1/messaging/dlq?since_ms=soon",
            "",
            "invalid_query",
        ),
        (
            get.clone(),
            "/api/v1/messaging/dlq?priority=urgent",
            "",
            "invalid_filter",
        ),
        (
            get.clone(),
            "/api/v1/messaging/dlq?agent=a%2Fb",
            "",
            "invalid_filter",
        ),
        (
            get.clone(),
            "/api/v1/messaging/dlq?since_ms=9&until_ms=1",
            "",
            "invalid_filter",
        ),
        (
            get.clone(),
            "/api/v1/messaging/dlq?limit=0",
            "",
            "invalid_query",
        ),
        (
            get.clone(),
            "/api/v1/messaging/dlq?cursor=later",
            "",
            "invalid_cursor",
        ),
        (
            get.clone(),
            "/api/v1/messaging/dlq/not-an-id",
            "",
            "invalid_id",
        ),
        (Method::DELETE, "/api/v1/messaging/dlq/x", "", "invalid_id"),
        (
            post.clone(),
            "/api/v1/messaging/dlq/retry/x",
            "",
            "invalid_id",
        ),
        (
            post.clone(),
            "/api/v1/messaging/dlq/retry/1-0",
            "{",
            "invalid_body",
        ),
        (
            post.clone(),
            "/api/v1/messaging/dlq/retry/1-0",
            r#"{"priority":"urgent"}"#,
            "invalid_body",
        ),
        (
            post.clone(),
            "/api/v1/messaging/dlq/retry/1-0",
            r#"{"payload":[1]}"#,
            "invalid_payload",
        ),
        (
            post.clone(),
            "/api/v1/messaging/dlq/retry",
            "",
            "invalid_body",
        ),
        (
            post.clone(),
            "/api/v1/messaging/dlq/retry",
            "{}",
            "invalid_body",
        ),
        (
            post.clone(),
            "/api/v1/messaging/dlq/retry",
            r#"{"ids":["x"]}"#,
            "invalid_id",
        ),
        (
            post.clone(),
            "/api/v1/messaging/dlq/delete",
            r#"{"filter":{"agnet":"p"}}"#,
            "invalid_body",
        ),
        (
            post.clone(),
            "/api/v1/messaging/dlq/delete",
            r#"{"filter":{},"priority":"high"}"#,
            "invalid_body",
        ),
        (
            get.clone(),
            "/api/v1/streams/cortex:tasks:high/entries?last=0",
            "",
            "invalid_query",
        ),
        (
            get.clone(),
            "/api/v1/streams/cortex:tasks:high/entries?start=x",
            "",
            "invalid_id",
        ),
        (post.clone(), "/api/v1/tasks", "", "invalid_body"),
        (
            post.clone(),
            "/api/v1/tasks",
            r#"{"to":"pink"}"#,
            "invalid_body",
        ),
        (
            post.clone(),
            "/api/v1/tasks",
            r#"{"to":"pi nk","priority":"high","type":"x"}"#,
            "invalid_agent",
        ),
        (
            post.clone(),
            "/api/v1/tasks",
            r#"{"to":"pink","priority":"high","type":"a b"}"#,
            "invalid_type",
        ),
        (
            post.clone(),
            "/api/v1/tasks",
            r#"{"to":"pink","priority":"high","type":"x","payload":1}"#,
            "invalid_payload",
        ),
    ] {
        expect(method, uri, body, 400, code).await;
    }
    expect(
        get,
        "/api/v1/streams/secrets/entries",
        "",
        404,
        "unknown_stream",
    )
    .await;
}

#[tokio::test]
async fn without_redis_the_api_answers_503_and_prometheus_still_answers() {
    for uri in [
        "/api/v1/messaging/dlq",
        "/api/v1/messaging/dlq/stats",
        "/api/v1/messaging/dlq/1-0",
        "/api/v1/messaging/metrics",
        "/api/v1/agents",
        "/api/v1/streams/cortex:heartbeats/entries",
    ] {
        expect(Method::GET, uri, "", 503, "redis_unavailable").await;
    }
    expect(
        Method::POST,
        "/api/v1/messaging/dlq/retry/1-0",
        "",
        503,
        "redis_unavailable",
    )
    .await;
    expect(
        Method::POST,
        "/api/v1/tasks",
        r#"{"to":"pink","priority":"high","type":"coding"}"#,
        503,
        "redis_unavailable",
    )
    .await;
    let (status, body) = call(Method::GET, "/metrics", "").await;
    assert_eq!(status, StatusCode::OK);
    let text = body.as_str().unwrap();
    assert!(text.contains("cortex_redis_up 0\n"), "{text}");
    assert!(text.contains("cortex_relay_connections 0\n"), "{text}");
}

/// Property: any body, to any route that takes one, is answered with a JSON error of a
/// documented code (or, got past decoding, the 503 of Redis being away): never a
/// panic, never another 5xx. Bodies are strings of JSON tokens, so many are JSON and
/// some are the right shape.
#[test]
fn any_body_gets_a_documented_answer() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "null",
        "1",
        "-1",
        "true",
        "\"x\"",
        "\"pink\"",
        "\"high\"",
        "\"filter\"",
        "\"ids\"",
        "\"priority\"",
        "\"payload\"",
        "\"to\"",
        "\"type\"",
        "\"coding\"",
        "\"agent\"",
        "\"1704556800000-0\"",
        " ",
        "\u{0}",
        "\"",
    ];
    const ROUTES: &[&str] = &[
        "/api/v1/messaging/dlq/delete",
        "/api/v1/messaging/dlq/retry",
        "/api/v1/messaging/dlq/retry/1704556800000-0",
        "/api/v1/tasks",
    ];
    const CODES: &[&str] = &[
        "invalid_body",
        "invalid_filter",
        "invalid_id",
        "invalid_agent",
        "invalid_type",
        "invalid_payload",
        "invalid_priority",
        "redis_unavailable",
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let router = runtime.block_on(app());
    let body = proptest::collection::vec(proptest::sample::select(TOKENS), 0..24)
        .prop_map(|tokens| tokens.concat());
    let mut runner = TestRunner::new(Config::with_cases(256));
    runner
        .run(&(proptest::sample::select(ROUTES), body), |(uri, body)| {
            let request = Request::post(uri)
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .unwrap();
            let (status, json) = runtime.block_on(async {
                let response = router.clone().oneshot(request).await.unwrap();
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap();
                (status, serde_json::from_slice::<Value>(&bytes).unwrap())
            });
            let code = json["code"].as_str().unwrap_or_default();
            prop_assert!(CODES.contains(&code), "{uri} {body:?}: {status} {json}");
            let want = if code == "redis_unavailable" {
                503
            } else {
                400
            };
            prop_assert_eq!(status.as_u16(), want, "{} {:?}: {}", uri, body, json);
            Ok(())
        })
        .unwrap();
}

/// The task API refuses bad input before Redis is asked (with Redis away, a request
/// that got through would be a 503).
#[tokio::test]
async fn the_task_apis_bad_input_is_400_before_redis_is_asked() {
    let get = Method::GET;
    let long = format!("/api/v1/tasks/{}", "x".repeat(1_025));
    for (uri, code) in [
        (long.as_str(), "invalid_id"),
        ("/api/v1/tasks/%FF", "invalid_path"),
        (
            "/api/v1/tasks/by-entry/cortex:tasks:high/nope",
            "invalid_id",
        ),
        (
            "/api/v1/tasks/by-entry/cortex:tasks:dlq/1-0",
            "not_a_task_stream",
        ),
        (
            "/api/v1/tasks/by-entry/cortex:heartbeats/1-0",
            "not_a_task_stream",
        ),
        ("/api/v1/tasks", "invalid_agent"),
        (
            "/api/v1/tasks?agent=no%20such&state=waiting",
            "invalid_agent",
        ),
        ("/api/v1/tasks?agent=pink&state=done", "invalid_state"),
        ("/api/v1/tasks?agent=pink", "invalid_state"),
        (
            "/api/v1/tasks?agent=pink&state=waiting&count=0",
            "invalid_count",
        ),
        (
            "/api/v1/tasks?agent=pink&state=waiting&count=x",
            "invalid_count",
        ),
        (
            "/api/v1/tasks?agent=pink&state=waiting&after=x",
            "invalid_cursor",
        ),
        ("/api/v1/tasks?agent[]=pink&state=waiting", "invalid_query"),
        (
            "/api/v1/tasks?agent=a&agent=b&state=waiting",
            "invalid_query",
        ),
        ("/api/v1/traces/a%20b", "invalid_trace"),
    ] {
        expect(get.clone(), uri, "", 400, code).await;
    }
    for uri in [
        "/api/v1/tasks/task-001",
        "/api/v1/tasks/by-entry/cortex:tasks:high/1-0",
        "/api/v1/tasks?agent=pink&state=waiting&count=1000&after=1-0@high",
        "/api/v1/traces/c-1",
    ] {
        expect(get.clone(), uri, "", 503, "redis_unavailable").await;
    }
}
