//! The relay as a service facing clients (README, Configuration: "Tokens and roles"): tokens and roles over HTTP and
//! WebSocket, the origin check, the HTTP guard (foreign `Host`, changes from other
//! origins, bodies not declared JSON), and limits. Each bad client gets its error or
//! close; everyone else is undisturbed.

use cortex_e2e::fixtures::{letter, tokens_config, xlen, ADMIN, AGENT, CRITICAL, DLQ, VIEWER};
use cortex_e2e::http;
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use cortex_e2e::ws::WsClient;
use serde_json::json;

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn http_roles_are_enforced() {
    let redis = RedisServer::start();
    let relay = Relay::start_with_config(&redis.url(), &tokens_config(), &[]);
    // Probes stay open.
    assert_eq!(http::get(relay.addr(), "/healthz").await.0, 200);
    // The API needs a token, and changes need an admin.
    let metrics = "/api/v1/messaging/metrics";
    assert_eq!(
        http::request_as(relay.addr(), "GET", metrics, None, None)
            .await
            .0,
        401
    );
    let wrong = bearer("not-a-token-at-all");
    let (status, body) = http::request_as(relay.addr(), "GET", metrics, Some(&wrong), None).await;
    assert_eq!(status, 401);
    assert!(body.contains("\"code\":\"unauthorized\""), "{body}");
    let task = json!({"to":"pink","priority":"high","type":"coding","payload":{}}).to_string();
    for token in [VIEWER, AGENT] {
        let (status, body) = http::request_as(
            relay.addr(),
            "POST",
            "/api/v1/tasks",
            Some(&bearer(token)),
            Some(&task),
        )
        .await;
        assert_eq!(status, 403, "{token}: {body}");
        assert!(body.contains("\"code\":\"forbidden\""), "{body}");
    }
    let (status, _) = http::request_as(
        relay.addr(),
        "POST",
        "/api/v1/tasks",
        Some(&bearer(ADMIN)),
        Some(&task),
    )
    .await;
    assert!(
        status != 401 && status != 403,
        "admin may publish: {status}"
    );
}

#[tokio::test]
async fn websocket_roles_are_enforced() {
    let redis = RedisServer::start();
    let relay = Relay::start_with_config(&redis.url(), &tokens_config(), &[]);
    let url = relay.ws_url();

    // A wrong token in the handshake is refused before the upgrade.
    let wrong = bearer("not-a-token-at-all");
    let refused = WsClient::connect_with(&url, &[("authorization", wrong.as_str())]).await;
    assert_eq!(refused.err(), Some(401));

    // Without a header, the first frame must be a valid `auth`.
    let mut client = WsClient::connect(&url).await;
    client
        .send(json!({"type":"subscribe","agent":"pink"}))
        .await;
    assert_eq!(client.closed().await, Some(4401));
    let mut client = WsClient::connect(&url).await;
    client
        .send(json!({"type":"auth","token":"nope-nope-nope-nope"}))
        .await;
    assert_eq!(client.closed().await, Some(4401));

    // A viewer watches but may not consume or publish.
    let mut viewer = WsClient::connect(&url).await;
    viewer.send(json!({"type":"auth","token":VIEWER})).await;
    assert_eq!(
        viewer.next().await,
        json!({"type":"authenticated","role":"viewer"})
    );
    viewer.subscribe("pink").await;
    viewer
        .send(json!({"type":"subscribe","agent":"pink","mode":"consume"}))
        .await;
    assert_eq!(viewer.expect("error").await["code"], "forbidden");
    viewer
        .send(json!({"type":"publish","to":"pink","priority":"low","task_type":"coding"}))
        .await;
    assert_eq!(viewer.expect("error").await["code"], "forbidden");

    // An agent token consumes and heartbeats as its own agents only.
    let auth = bearer(AGENT);
    let mut agent = WsClient::connect_with(&url, &[("authorization", auth.as_str())])
        .await
        .unwrap();
    agent
        .send(json!({"type":"subscribe","agent":"harold","mode":"consume"}))
        .await;
    assert_eq!(agent.expect("error").await["code"], "forbidden");
    agent
        .send(json!({"type":"heartbeat","agent":"harold","status":{}}))
        .await;
    assert_eq!(agent.expect("error").await["code"], "forbidden");
    agent
        .send(json!({"type":"heartbeat","agent":"pink","status":{"state":"idle"}}))
        .await;
    let published = agent.expect("published").await;
    assert_eq!(published["stream"], "cortex:heartbeats");
    agent
        .send(json!({"type":"subscribe","agent":"pink","mode":"consume","consumer":"p1"}))
        .await;
    assert_eq!(agent.expect("subscribed").await["mode"], "consume");

    // The viewer watching pink saw the heartbeat; an admin publishes a task that the
    // agent consumes.
    // (Presence frames about pink may come first.)
    assert_eq!(viewer.next_of_type("heartbeat").await["agent"], "pink");
    let mut admin = WsClient::connect(&url).await;
    admin.send(json!({"type":"auth","token":ADMIN})).await;
    assert_eq!(admin.expect("authenticated").await["role"], "admin");
    admin
        .send(
            json!({"type":"publish","to":"pink","from":"harold","priority":"high",
                     "task_type":"coding","payload":{"n":1}}),
        )
        .await;
    let sent = admin.expect("published").await;
    let task = agent.expect("task").await;
    assert_eq!(task["data"]["id"], sent["task_id"]);
    assert_eq!(task["delivery_count"], 1);
}

#[tokio::test]
async fn a_cross_origin_handshake_is_refused() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let url = relay.ws_url();
    let evil = WsClient::connect_with(&url, &[("origin", "https://evil.example")]).await;
    assert_eq!(evil.err(), Some(403));
    let same = format!("http://{}", relay.addr());
    assert!(WsClient::connect_with(&url, &[("origin", same.as_str())])
        .await
        .is_ok());
    let local = "http://localhost:5173";
    assert!(WsClient::connect_with(&url, &[("origin", local)])
        .await
        .is_ok());
    let allowed = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--allowed-origin", "https://ops.example.org"],
    );
    let allowed_url = allowed.ws_url();
    let ok = WsClient::connect_with(&allowed_url, &[("origin", "https://ops.example.org")]);
    assert!(ok.await.is_ok());
}

/// The code of a JSON error body (`""` when it is not one).
fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap_or_default()["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn cross_site_requests_change_nothing() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    let dlq_id = letter(&mut conn, "task-1", "boom").await;
    letter(&mut conn, "task-2", "boom").await;
    let delete_all = json!({"filter":{}}).to_string();
    let task = json!({"to":"pink","priority":"critical","type":"coding","payload":{}}).to_string();
    let evil = ("Origin", "http://evil.example");
    let same = format!("http://{}", relay.addr());
    let same = ("Origin", same.as_str());
    let plain = ("Content-Type", "text/plain;charset=UTF-8");
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let json_type = ("Content-Type", "application/json");
    let cross = ("Sec-Fetch-Site", "cross-site");
    for (method, path, headers, body, want) in [
        // What a page on another site can send without a preflight.
        (
            "POST",
            "/api/v1/messaging/dlq/delete",
            vec![evil, plain],
            Some(&delete_all),
            (403, "forbidden_origin"),
        ),
        (
            "POST",
            "/api/v1/messaging/dlq/delete",
            vec![evil, form, cross],
            Some(&delete_all),
            (403, "forbidden_origin"),
        ),
        (
            "POST",
            "/api/v1/tasks",
            vec![evil, plain, cross],
            Some(&task),
            (403, "forbidden_origin"),
        ),
        (
            "POST",
            "/api/v1/messaging/dlq/retry",
            vec![evil, plain],
            Some(&delete_all),
            (403, "forbidden_origin"),
        ),
        // And what it cannot (a preflight would fail), refused all the same.
        (
            "POST",
            "/api/v1/tasks",
            vec![evil, json_type],
            Some(&task),
            (403, "forbidden_origin"),
        ),
        (
            "DELETE",
            &format!("/api/v1/messaging/dlq/{dlq_id}"),
            vec![evil],
            None,
            (403, "forbidden_origin"),
        ),
        (
            "POST",
            "/api/v1/messaging/dlq/delete",
            vec![cross, json_type],
            Some(&delete_all),
            (403, "forbidden_origin"),
        ),
        // The relay's own origin must send JSON as JSON.
        (
            "POST",
            "/api/v1/messaging/dlq/delete",
            vec![same, plain],
            Some(&delete_all),
            (415, "unsupported_media_type"),
        ),
        (
            "POST",
            "/api/v1/tasks",
            vec![same, form],
            Some(&task),
            (415, "unsupported_media_type"),
        ),
        (
            "POST",
            "/api/v1/tasks",
            vec![],
            Some(&task),
            (415, "unsupported_media_type"),
        ),
    ] {
        let (status, body) = http::request_with(
            relay.addr(),
            method,
            path,
            &headers,
            body.map(String::as_str),
        )
        .await;
        assert_eq!(
            (status, code(&body).as_str()),
            want,
            "{method} {path} {headers:?}: {body}"
        );
    }
    assert_eq!(
        xlen(&mut conn, DLQ).await,
        2,
        "no letter deleted or retried"
    );
    assert_eq!(xlen(&mut conn, CRITICAL).await, 0, "nothing published");

    // The relay's own pages, and clients that are not browsers, are served.
    let (status, body) = http::request_with(
        relay.addr(),
        "POST",
        "/api/v1/tasks",
        &[same, json_type, ("Sec-Fetch-Site", "same-origin")],
        Some(&task),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(xlen(&mut conn, CRITICAL).await, 1);
    let (status, body) = http::request_with(
        relay.addr(),
        "POST",
        "/api/v1/messaging/dlq/delete",
        &[json_type],
        Some(&delete_all),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(xlen(&mut conn, DLQ).await, 0);
}

#[tokio::test]
async fn a_foreign_host_is_misdirected_on_every_route() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let port = relay.addr().rsplit(':').next().unwrap().to_owned();
    let rebound = format!("rebind.example:{port}");
    for path in [
        "/",
        "/index.html",
        "/agents/pink",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/agents",
        "/api/v1/messaging/dlq",
        "/api/v1/nothing",
    ] {
        let (status, body) =
            http::request_with(relay.addr(), "GET", path, &[("Host", &rebound)], None).await;
        assert_eq!(
            (status, code(&body).as_str()),
            (421, "misdirected_request"),
            "{path}: {body}"
        );
    }
    let (status, body) = http::request_with(
        relay.addr(),
        "POST",
        "/api/v1/messaging/dlq/delete",
        &[("Host", &rebound), ("Content-Type", "application/json")],
        Some("{\"filter\":{}}"),
    )
    .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (421, "misdirected_request"),
        "{body}"
    );
    let ws = WsClient::connect_with(&relay.ws_url(), &[("host", rebound.as_str())]).await;
    assert_eq!(ws.err(), Some(421));

    // Its own address, loopback names and IP addresses are served.
    for host in [
        relay.addr().to_owned(),
        format!("localhost:{port}"),
        format!("dash.localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) =
            http::request_with(relay.addr(), "GET", "/healthz", &[("Host", &host)], None).await;
        assert_eq!(status, 200, "{host}: {body}");
    }
    assert!(
        WsClient::connect_with(&relay.ws_url(), &[("host", &format!("localhost:{port}"))])
            .await
            .is_ok()
    );

    // A name the operator lists is served.
    let public = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--public-host", "relay.example.org"],
    );
    let (status, body) = http::request_with(
        public.addr(),
        "GET",
        "/api/v1/agents",
        &[("Host", "relay.example.org")],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = http::request_with(
        public.addr(),
        "GET",
        "/healthz",
        &[("Host", "rebind.example")],
        None,
    )
    .await;
    assert_eq!(status, 421);
}
