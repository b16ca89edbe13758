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
    let passed = cortex_e2e::eventually(SOON, || {
        let mut conn = conn.clone();
        async move {
            let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg("cortex:tasks:high")
                .query_async(&mut conn)
                .await
                .unwrap();
            groups
                .groups
                .iter()
                .any(|g| {
                    g.name == "agent:pink"
                        && g.pending == 0
                        && g.last_delivered_id
                            .parse::<cortex_shared::EntryId>()
                            .is_ok_and(|id| id >= new_id)
                })
                .then_some(())
        }
    })
    .await;
    assert!(
        passed.is_some(),
        "pink's group never passed the retried entry"
    );
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
