//! Dead letters name the agent and consumer that gave up and every attempt, and a
//! letter of a task for every agent is retried to the agent that failed it alone
//! (README, "Dead letters"): real redis-server, the relay binary, agents consuming
//! through it with the agent API.

use cortex_agent::{Publisher, RelayConsumer, TaskRequest};
use cortex_e2e::fixtures::{field, xrange, DLQ};
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use cortex_shared::Priority;
use serde_json::Value;
use std::time::Duration;

/// Anything that should happen soon.
const SOON: Duration = Duration::from_secs(10);

/// Waits until `f` holds, polling Redis state every 20 ms, or panics after [`SOON`].
async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + SOON;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_broadcast_task_failed_by_one_agent_is_retried_to_that_agent_only() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &["--max-deliveries", "1"]);
    let mut conn = redis.connection().await;
    let mut blue = RelayConsumer::connect(&relay.ws_url(), "blue", "blue-1")
        .await
        .unwrap();
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let sent = publisher
        .publish("harold", TaskRequest::new("*", Priority::High, "coding"))
        .await
        .unwrap();

    // blue gives up (its last delivery), pink does it.
    let task = tokio::time::timeout(SOON, blue.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.task.id, sent.task_id);
    assert!(
        blue.nack(&task, "blue cannot").await.unwrap(),
        "dead-lettered"
    );
    let done = tokio::time::timeout(SOON, pink.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.task.id, sent.task_id);
    pink.ack(&done).await.unwrap();

    // The letter says who gave up and how.
    let letters = xrange(&mut conn, DLQ).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let (dlq_id, fields) = &letters[0];
    assert_eq!(field(fields, "original_to"), Some(""));
    assert_eq!(field(fields, "failed_agent"), Some("blue"));
    assert_eq!(field(fields, "failed_consumer"), Some("blue-1"));
    let attempts: Value = serde_json::from_str(field(fields, "attempts").unwrap()).unwrap();
    assert_eq!(attempts[0]["consumer"], "blue-1");
    assert_eq!(attempts[0]["error"], "blue cannot");
    // The API shows the same.
    let (status, shown) = cortex_e2e::http::json(
        relay.addr(),
        "GET",
        &format!("/api/v1/messaging/dlq/{dlq_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["failed_agent"], "blue", "{shown}");
    assert_eq!(shown["attempts"][0]["error"], "blue cannot", "{shown}");

    // Retried: to blue alone, the original `to` kept beside it.
    let (status, retried) = cortex_e2e::http::json(
        relay.addr(),
        "POST",
        &format!("/api/v1/messaging/dlq/retry/{dlq_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{retried}");
    let again = tokio::time::timeout(SOON, blue.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.task.id, sent.task_id);
    assert_eq!(again.task.to, "blue");
    assert_eq!(again.entry_id, retried["entry_id"].as_str().unwrap());
    let entry = xrange(&mut conn, "cortex:tasks:high").await;
    let new = entry.iter().find(|(id, _)| *id == again.entry_id).unwrap();
    assert_eq!(field(&new.1, "original_to"), Some(""));
    blue.ack(&again).await.unwrap();

    // pink's group passes the retried entry without delivering it: the next task pink
    // gets is one published after it.
    let new_id: cortex_shared::EntryId = again.entry_id.parse().unwrap();
    until("pink's group to pass the retried entry", || {
        let mut conn = conn.clone();
        async move {
            let groups: Vec<Vec<redis::Value>> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg("cortex:tasks:high")
                .query_async(&mut conn)
                .await
                .unwrap();
            groups.iter().any(|g| {
                let text = |v: &redis::Value| match v {
                    redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                    redis::Value::SimpleString(s) => s.clone(),
                    redis::Value::Int(i) => i.to_string(),
                    _ => String::new(),
                };
                let map: std::collections::HashMap<String, String> =
                    g.chunks(2).map(|kv| (text(&kv[0]), text(&kv[1]))).collect();
                map.get("name").map(String::as_str) == Some("agent:pink")
                    && map.get("pending").map(String::as_str) == Some("0")
                    && map
                        .get("last-delivered-id")
                        .and_then(|id| id.parse::<cortex_shared::EntryId>().ok())
                        .is_some_and(|id| id >= new_id)
            })
        }
    })
    .await;
    let marker = publisher
        .publish("harold", TaskRequest::new("pink", Priority::High, "marker"))
        .await
        .unwrap();
    let next = tokio::time::timeout(SOON, pink.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.task.id, marker.task_id, "pink got {:?}", next.task);
    pink.ack(&next).await.unwrap();
}
