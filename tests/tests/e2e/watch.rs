//! Watch mode over `/ws`, end to end: real redis-server, the real relay binary, a
//! WebSocket client. Entries are written with plain XADD in the README's Redis layout, as an
//! agent in any language would.

use cortex_e2e::redis::{xadd, RedisServer};
use cortex_e2e::relay::Relay;
use cortex_e2e::ws::WsClient;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// A task entry in the README's Redis layout, with `id` and `to` filled in.
fn task(id: &'static str, to: &'static str) -> [(&'static str, &'static str); 7] {
    [
        ("id", id),
        ("from", "harold"),
        ("to", to),
        ("priority", "high"),
        ("type", "coding"),
        (
            "payload",
            r#"{"description":"Fix auth bug","deadline":"2026-02-06T12:00:00Z"}"#,
        ),
        ("created", "1704556800"),
    ]
}

#[tokio::test]
async fn a_task_reaches_its_agent_with_every_field_intact() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut pink = WsClient::connect(&relay.ws_url()).await;
    pink.subscribe("pink").await;

    let mut conn = redis.connection().await;
    let entry_id = xadd(&mut conn, "cortex:tasks:high", &task("task-001", "pink")).await;

    assert_eq!(
        pink.next().await,
        json!({
            "type": "task",
            "data": {
                "id": "task-001", "from": "harold", "to": "pink", "priority": "high",
                "type": "coding",
                "payload": {"description": "Fix auth bug", "deadline": "2026-02-06T12:00:00Z"},
                "created": 1704556800
            },
            "stream": "cortex:tasks:high",
            "entry_id": entry_id,
        })
    );
}

#[tokio::test]
async fn tasks_for_other_agents_are_not_sent_and_tasks_for_all_are() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut pink = WsClient::connect(&relay.ws_url()).await;
    pink.subscribe("pink").await;
    let mut everyone = WsClient::connect(&relay.ws_url()).await;
    everyone.subscribe("*").await;

    // Same stream, so the reader sees them in this order: if harold's task were sent
    // to pink, it would arrive before the broadcast one.
    let mut conn = redis.connection().await;
    xadd(
        &mut conn,
        "cortex:tasks:high",
        &task("for-harold", "harold"),
    )
    .await;
    xadd(&mut conn, "cortex:tasks:high", &task("for-all", "")).await;

    let frame = pink.expect("task").await;
    assert_eq!(frame["data"]["id"], "for-all");
    assert_eq!(frame["data"]["to"], "");

    assert_eq!(everyone.expect("task").await["data"]["id"], "for-harold");
    assert_eq!(everyone.expect("task").await["data"]["id"], "for-all");
}

#[tokio::test]
async fn a_heartbeat_reaches_that_agents_subscribers() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut pink = WsClient::connect(&relay.ws_url()).await;
    pink.subscribe("pink").await;

    let mut conn = redis.connection().await;
    xadd(
        &mut conn,
        "cortex:heartbeats",
        &[
            ("agent", "harold"),
            ("time", "1704556799"),
            ("status", "{}"),
        ],
    )
    .await;
    let entry_id = xadd(
        &mut conn,
        "cortex:heartbeats",
        &[
            ("agent", "pink"),
            ("time", "1704556800"),
            ("status", r#"{"state":"busy","load":0.5}"#),
        ],
    )
    .await;

    // Presence frames (about any agent, for every dashboard) may come between;
    // harold's heartbeat must not.
    assert_eq!(
        pink.next_of_type("heartbeat").await,
        json!({"type": "heartbeat", "agent": "pink", "status": {"state": "busy", "load": 0.5},
               "time": 1704556800, "entry_id": entry_id})
    );
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_connection_keeps_working() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut client = WsClient::connect(&relay.ws_url()).await;

    let oversized = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(100 * 1024));
    for (text, code) in [
        ("{not json", "bad_frame"),
        (r#"{"agent":"pink"}"#, "bad_frame"),
        (r#"{"type":"subscribe"}"#, "bad_frame"),
        (r#"{"type":"teleport"}"#, "bad_frame"),
        (
            r#"{"type":"subscribe","agent":"pink; DROP"}"#,
            "invalid_agent",
        ),
        (oversized.as_str(), "frame_too_large"),
    ] {
        client.send_text(text).await;
        let reply = client.expect("error").await;
        assert_eq!(reply["code"], code, "reply to {:.40}", text);
        assert!(reply["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    client
        .send_message(Message::Binary(vec![0, 1, 2].into()))
        .await;
    assert_eq!(client.expect("error").await["code"], "binary_frame");

    // The same connection still subscribes, pings, and receives tasks.
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.next().await, json!({"type": "pong"}));
    client.subscribe("pink").await;
    let mut conn = redis.connection().await;
    xadd(
        &mut conn,
        "cortex:tasks:high",
        &task("after-errors", "pink"),
    )
    .await;
    assert_eq!(client.expect("task").await["data"]["id"], "after-errors");
}

#[tokio::test]
async fn a_malformed_entry_in_redis_does_not_stop_delivery() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut pink = WsClient::connect(&relay.ws_url()).await;
    pink.subscribe("pink").await;

    let mut conn = redis.connection().await;
    let mut bad = task("bad-payload", "pink");
    bad[5] = ("payload", "{not json");
    xadd(&mut conn, "cortex:tasks:high", &bad).await;
    let mut unknown = task("bad-priority", "pink");
    unknown[3] = ("priority", "urgent");
    xadd(&mut conn, "cortex:tasks:high", &unknown).await;
    xadd(
        &mut conn,
        "cortex:tasks:high",
        &[("from", "harold"), ("to", "pink")],
    )
    .await;
    xadd(&mut conn, "cortex:tasks:high", &task("good", "pink")).await;

    assert_eq!(pink.expect("task").await["data"]["id"], "good");
}

#[tokio::test]
async fn many_watchers_share_one_blocking_read() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut watchers = Vec::new();
    for _ in 0..20 {
        let mut client = WsClient::connect(&relay.ws_url()).await;
        client.subscribe("pink").await;
        watchers.push(client);
    }
    let mut conn = redis.connection().await;
    xadd(&mut conn, "cortex:tasks:high", &task("fan-out", "pink")).await;
    for watcher in &mut watchers {
        assert_eq!(watcher.expect("task").await["data"]["id"], "fan-out");
    }

    // Every watcher got the task; Redis saw one XREAD connection, not twenty.
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    let readers = clients.lines().filter(|l| l.contains("cmd=xread")).count();
    assert_eq!(readers, 1, "CLIENT LIST:\n{clients}");
}
