//! Consume mode end to end (README, "Delivery"): per-agent consumer groups, at least once with
//! ack and nack, reclaim after the visibility timeout, the DLQ, priorities, and pending
//! tasks first on reconnect. Agents are the relay library's Rust agent API: tasks are
//! published straight to Redis and consumed through the relay's `/ws`.

use cortex_agent::{Delivery, Publisher, RelayConsumer, TaskRequest};
use cortex_e2e::redis::{xadd, RedisServer};
use cortex_e2e::relay::Relay;
use cortex_shared::{DeadLetter, Priority};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn next(consumer: &mut RelayConsumer) -> Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery within the timeout")
        .expect("consumer open")
}

/// Waits (blocking XREAD) until the DLQ holds `n` letters; returns them in order.
async fn dead_letters(conn: &mut MultiplexedConnection, n: usize) -> Vec<(String, DeadLetter)> {
    let mut letters = Vec::new();
    let mut last = "0-0".to_owned();
    let read = async {
        while letters.len() < n {
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(WAIT.as_millis() as u64)
                .arg("STREAMS")
                .arg("cortex:tasks:dlq")
                .arg(&last)
                .query_async(conn)
                .await
                .unwrap();
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                let fields: Vec<(String, String)> = entry
                    .map
                    .iter()
                    .map(|(k, v)| (k.clone(), redis::from_redis_value_ref(v).unwrap()))
                    .collect();
                let letter =
                    DeadLetter::from_fields(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                        .unwrap();
                last = entry.id.clone();
                letters.push((entry.id, letter));
            }
        }
    };
    tokio::time::timeout(WAIT * 2, read)
        .await
        .expect("dead letters within the timeout");
    letters
}

/// Pending entries of `agent`'s group on `stream`.
async fn pending(conn: &mut MultiplexedConnection, stream: &str, agent: &str) -> u64 {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(format!("agent:{agent}"))
        .query_async(conn)
        .await
        .unwrap();
    match summary {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n as u64,
            _ => 0,
        },
        _ => 0,
    }
}

/// Takes `n` deliveries, acking each; their priorities in the order they came.
async fn take_acking(consumer: &mut RelayConsumer, n: usize) -> Vec<Priority> {
    let mut order = Vec::new();
    for _ in 0..n {
        let delivery = next(consumer).await;
        order.push(delivery.task.priority);
        consumer.ack(&delivery).await.unwrap();
    }
    order
}

fn assert_in_priority_order(order: &[Priority]) {
    let mut sorted = order.to_vec();
    sorted.sort();
    assert_eq!(order, sorted, "delivered in priority order");
}

/// A bare WebSocket consuming `agent` as `consumer`, once the relay said `subscribed`
/// (for tests that send ack and nack frames themselves).
async fn raw_consumer(ws_url: &str, agent: &str, consumer: &str) -> cortex_e2e::ws::WsClient {
    let mut client = cortex_e2e::ws::WsClient::connect(ws_url).await;
    client
        .send(serde_json::json!({
            "type": "subscribe", "agent": agent, "mode": "consume", "consumer": consumer
        }))
        .await;
    client.expect("subscribed").await;
    client
}

fn payload(n: usize) -> cortex_shared::JsonObject {
    serde_json::json!({ "n": n }).as_object().unwrap().clone()
}

#[tokio::test]
async fn each_agent_gets_exactly_its_tasks_and_consumers_of_one_agent_share_them() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let mut pink_a = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-a")
        .await
        .unwrap();
    let mut pink_b = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-b")
        .await
        .unwrap();
    let mut harold = RelayConsumer::connect(&relay.ws_url(), "harold", "harold-1")
        .await
        .unwrap();
    let mut blue = RelayConsumer::connect(&relay.ws_url(), "blue", "blue-1")
        .await
        .unwrap();

    // 1,000 tasks for a mix of agents, over all four priorities, some for everyone.
    let agents = ["pink", "harold", "blue", "", "nobody"];
    let mut expected: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for n in 0..1000 {
        let to = agents[n % agents.len()];
        let priority = Priority::ALL[n % 4];
        let sent = publisher
            .publish(
                "sender",
                TaskRequest::new(to, priority, "coding").with_payload(payload(n)),
            )
            .await
            .unwrap();
        for agent in ["pink", "harold", "blue"] {
            if to == agent || to.is_empty() {
                expected
                    .entry(agent)
                    .or_default()
                    .insert(sent.task_id.clone());
            }
        }
    }

    let mut got: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut per_pink_consumer = [0usize; 2];
    let done = |got: &BTreeMap<&str, Vec<String>>| {
        ["pink", "harold", "blue"]
            .iter()
            .all(|a| got.get(a).map_or(0, Vec::len) >= expected[a].len())
    };
    while !done(&got) {
        let (agent, delivery, consumer) = tokio::select! {
            d = next(&mut pink_a) => ("pink", d, &pink_a),
            d = next(&mut pink_b) => ("pink", d, &pink_b),
            d = next(&mut harold) => ("harold", d, &harold),
            d = next(&mut blue) => ("blue", d, &blue),
        };
        if agent == "pink" {
            per_pink_consumer[usize::from(std::ptr::eq(consumer, &pink_b))] += 1;
        }
        assert!(
            delivery.task.is_for(agent),
            "{agent} got {:?}",
            delivery.task
        );
        consumer.ack(&delivery).await.unwrap();
        got.entry(agent).or_default().push(delivery.task.id);
    }
    for agent in ["pink", "harold", "blue"] {
        let ids: BTreeSet<String> = got[agent].iter().cloned().collect();
        assert_eq!(ids.len(), got[agent].len(), "{agent} got a task twice");
        assert_eq!(ids, expected[agent], "{agent}'s tasks");
    }
    assert!(
        per_pink_consumer.iter().all(|n| *n > 0),
        "both pink consumers took a share: {per_pink_consumer:?}"
    );
    let mut conn = redis.connection().await;
    for priority in Priority::ALL {
        for agent in ["pink", "harold", "blue"] {
            assert_eq!(pending(&mut conn, priority.stream(), agent).await, 0);
        }
    }
    eprintln!(
        "routing: published 1000; delivered pink {} (split {:?}), harold {}, blue {}; duplicates 0",
        got["pink"].len(),
        per_pink_consumer,
        got["harold"].len(),
        got["blue"].len()
    );
}

#[tokio::test]
async fn an_unacked_task_is_delivered_again_then_dead_lettered() {
    // The first consumer's read must reach Redis before the second's, which a heavy
    // test alongside can turn round: none alongside (`cortex_e2e::machine`).
    let _timing = cortex_e2e::machine::timing().await;
    let redis = RedisServer::start();
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--visibility-timeout-ms", "300", "--max-deliveries", "3"],
    );
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let mut first = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let mut second = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-2")
        .await
        .unwrap();
    let sent = publisher
        .publish(
            "harold",
            TaskRequest::new("pink", Priority::High, "coding").with_payload(payload(7)),
        )
        .await
        .unwrap();

    // The first consumer takes it and goes silent (never acks, then disconnects);
    // after the visibility timeout the other consumer of pink gets it, and again.
    let delivery = next(&mut first).await;
    assert_eq!(
        (delivery.task.id.as_str(), delivery.delivery_count),
        (sent.task_id.as_str(), 1)
    );
    drop(first);
    let mut counts = Vec::new();
    while counts.len() < 2 {
        let delivery = next(&mut second).await;
        assert_eq!(delivery.task.id, sent.task_id);
        assert_eq!(delivery.entry_id, sent.entry_id);
        counts.push(delivery.delivery_count);
    }
    assert_eq!(counts, [2, 3]);

    let mut conn = redis.connection().await;
    let letters = dead_letters(&mut conn, 1).await;
    let letter = &letters[0].1;
    assert_eq!(letter.original_id, sent.task_id);
    assert_eq!(letter.original_from, "harold");
    assert_eq!(letter.original_to, "pink");
    assert_eq!(letter.original_priority, "high");
    assert_eq!(letter.original_type, "coding");
    assert_eq!(letter.original_payload, r#"{"n":7}"#);
    assert_eq!(letter.retry_count, 3);
    assert_eq!(letter.error, "not acked after 3 deliveries");
    assert_eq!(letter.original_stream.as_deref(), Some("cortex:tasks:high"));
    assert_eq!(
        letter.original_entry_id.as_deref(),
        Some(sent.entry_id.as_str())
    );
    assert_eq!(pending(&mut conn, "cortex:tasks:high", "pink").await, 0);
}

#[tokio::test]
async fn a_nack_redelivers_until_none_are_left_then_dead_letters_with_its_error() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &["--max-deliveries", "3"]);
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let sent = publisher
        .publish(
            "harold",
            TaskRequest::new("pink", Priority::Normal, "review"),
        )
        .await
        .unwrap();
    for attempt in 1..=3u64 {
        let delivery = next(&mut pink).await;
        assert_eq!(delivery.task.id, sent.task_id);
        assert_eq!(delivery.delivery_count, attempt);
        let dead = pink.nack(&delivery, "compiler exploded").await.unwrap();
        assert_eq!(dead, attempt == 3, "attempt {attempt}");
    }
    let mut conn = redis.connection().await;
    let letters = dead_letters(&mut conn, 1).await;
    assert_eq!(letters[0].1.error, "compiler exploded");
    assert_eq!(letters[0].1.retry_count, 3);
    assert_eq!(pending(&mut conn, "cortex:tasks:normal", "pink").await, 0);
}

#[tokio::test]
async fn a_backlog_is_delivered_critical_first_then_high_normal_low() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &["--prefetch", "1"]);
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    // Published before any consumer exists, lowest first.
    let mut published = Vec::new();
    for round in 0..3 {
        for priority in [
            Priority::Low,
            Priority::Normal,
            Priority::High,
            Priority::Critical,
        ] {
            let request = TaskRequest::new("pink", priority, "coding").with_payload(payload(round));
            publisher.publish("harold", request).await.unwrap();
            published.push(priority);
        }
    }
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let order = take_acking(&mut pink, published.len()).await;
    assert_in_priority_order(&order);
    assert_eq!(order.first(), Some(&Priority::Critical));
}

#[tokio::test]
async fn a_backlog_larger_than_the_prefetch_is_delivered_most_urgent_first() {
    // The default prefetch (32): reads in batches, a quarter of the credit per stream
    // once they keep up; a backlog still goes strictly by priority.
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let mut published = Vec::new();
    for n in 0..50 {
        for priority in [Priority::Low, Priority::Critical] {
            let request = TaskRequest::new("pink", priority, "coding").with_payload(payload(n));
            publisher.publish("harold", request).await.unwrap();
            published.push(priority);
        }
    }
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let order = take_acking(&mut pink, published.len()).await;
    assert_in_priority_order(&order);
}

#[tokio::test]
async fn a_burst_reaching_an_idle_consumer_is_delivered_most_urgent_first() {
    // The consumer waits in its blocking read when 50 low and 50 critical tasks land at
    // once (one MULTI): the read wakes with some of each; the critical ones must still
    // all come first.
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let mut conn = redis.connection().await;
    tokio::time::timeout(WAIT, async {
        loop {
            let clients: String = redis::cmd("CLIENT")
                .arg("LIST")
                .query_async(&mut conn)
                .await
                .unwrap();
            if clients
                .lines()
                .any(|c| c.contains("cmd=xreadgroup") && c.contains("flags=b"))
            {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the consumer blocks in XREADGROUP");
    let mut burst = redis::pipe();
    burst.atomic();
    for priority in [Priority::Low, Priority::Critical] {
        for n in 0..50 {
            let id = format!("{}-{n}", priority.as_str());
            burst
                .cmd("XADD")
                .arg(priority.stream())
                .arg("*")
                .arg(&[
                    ("id", id.as_str()),
                    ("from", "harold"),
                    ("to", "pink"),
                    ("priority", priority.as_str()),
                    ("type", "coding"),
                    ("payload", "{}"),
                    ("created", "1704556800"),
                ])
                .ignore();
        }
    }
    let () = burst.query_async(&mut conn).await.unwrap();
    let order = take_acking(&mut pink, 100).await;
    assert_in_priority_order(&order);
    assert_eq!(pending(&mut conn, "cortex:tasks:low", "pink").await, 0);
}

#[tokio::test]
async fn malformed_entries_go_to_the_dlq_once_with_the_field_named_and_delivery_goes_on() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let mut harold = RelayConsumer::connect(&relay.ws_url(), "harold", "harold-1")
        .await
        .unwrap();
    let mut conn = redis.connection().await;
    let base = [
        ("id", "x"),
        ("from", "harold"),
        ("to", ""),
        ("priority", "high"),
        ("type", "coding"),
        ("payload", "{}"),
        ("created", "1704556800"),
    ];
    let with = |field: &str, value: &'static str| {
        let mut fields = base.to_vec();
        fields.iter_mut().find(|(k, _)| *k == field).unwrap().1 = value;
        fields
    };
    xadd(
        &mut conn,
        "cortex:tasks:high",
        &with("payload", "{not json"),
    )
    .await;
    xadd(&mut conn, "cortex:tasks:high", &with("priority", "urgent")).await;
    let no_id: Vec<_> = base.iter().copied().filter(|(k, _)| *k != "id").collect();
    xadd(&mut conn, "cortex:tasks:high", &no_id).await;
    let mut good = with("id", "good-for-all");
    good.iter_mut().find(|(k, _)| *k == "payload").unwrap().1 = r#"{"ok":true}"#;
    xadd(&mut conn, "cortex:tasks:high", &good).await;

    // Both agents' groups read all four entries; only the good one is delivered.
    for consumer in [&mut pink, &mut harold] {
        let delivery = next(consumer).await;
        assert_eq!(delivery.task.id, "good-for-all");
        consumer.ack(&delivery).await.unwrap();
    }
    let letters = dead_letters(&mut conn, 3).await;
    let errors: Vec<&str> = letters.iter().map(|(_, l)| l.error.as_str()).collect();
    assert!(
        errors[0].starts_with("field `payload`: not valid JSON"),
        "{errors:?}"
    );
    assert_eq!(
        errors[1],
        "field `priority`: unknown priority \"urgent\"; expected critical, high, normal or low"
    );
    assert_eq!(errors[2], "field `id`: missing");
    assert_eq!(letters[0].1.original_payload, "{not json");
    // Two groups saw each bad entry; each went to the DLQ once.
    let total: u64 = redis::cmd("XLEN")
        .arg("cortex:tasks:dlq")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(total, 3);
    for agent in ["pink", "harold"] {
        assert_eq!(pending(&mut conn, "cortex:tasks:high", agent).await, 0);
    }
}

#[tokio::test]
async fn a_consumer_that_reconnects_gets_its_own_pending_tasks_first() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let a = publisher
        .publish("harold", TaskRequest::new("pink", Priority::Low, "coding"))
        .await
        .unwrap();
    let b = publisher
        .publish("harold", TaskRequest::new("pink", Priority::Low, "coding"))
        .await
        .unwrap();
    assert_eq!(next(&mut pink).await.task.id, a.task_id);
    assert_eq!(next(&mut pink).await.task.id, b.task_id);
    drop(pink); // gone without acking

    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    // A critical task is waiting too, but the consumer's own pending ones come first.
    let c = publisher
        .publish(
            "harold",
            TaskRequest::new("pink", Priority::Critical, "coding"),
        )
        .await
        .unwrap();
    let first = next(&mut pink).await;
    let second = next(&mut pink).await;
    let third = next(&mut pink).await;
    assert_eq!(
        [&first.task.id, &second.task.id, &third.task.id],
        [&a.task_id, &b.task_id, &c.task_id]
    );
    assert_eq!(first.delivery_count, 2);
    assert_eq!(third.delivery_count, 1);
    for d in [first, second, third] {
        pink.ack(&d).await.unwrap();
    }
}

#[tokio::test]
async fn consume_refuses_what_it_cannot_do_and_the_connection_keeps_working() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut client = cortex_e2e::ws::WsClient::connect(&relay.ws_url()).await;
    for (frame, code) in [
        (
            serde_json::json!({"type":"subscribe","agent":"*","mode":"consume"}),
            "not_allowed",
        ),
        (
            serde_json::json!({"type":"subscribe","agent":"pink","mode":"consume","consumer":"a b"}),
            "invalid_agent",
        ),
        (
            serde_json::json!({"type":"ack","stream":"cortex:tasks:high","entry_id":"1-0"}),
            "unknown_delivery",
        ),
    ] {
        client.send(frame).await;
        assert_eq!(client.expect("error").await["code"], code);
    }
    client
        .send(
            serde_json::json!({"type":"subscribe","agent":"pink","mode":"consume","consumer":"c1"}),
        )
        .await;
    let reply = client.expect("subscribed").await;
    assert_eq!(reply["mode"], "consume");
    assert_eq!(reply["consumer"], "c1");
    client
        .send(serde_json::json!({"type":"ack","stream":"cortex:tasks:high","entry_id":"1-0"}))
        .await;
    assert_eq!(client.expect("error").await["code"], "unknown_delivery");
    client
        .send(serde_json::json!({"type":"subscribe","agent":"harold","mode":"consume"}))
        .await;
    assert_eq!(client.expect("error").await["code"], "not_allowed");
}

#[tokio::test]
async fn a_burst_of_acks_and_nacks_is_answered_in_order_and_leaves_nothing_pending() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    for n in 0..40 {
        let request = TaskRequest::new("pink", Priority::Normal, "coding").with_payload(payload(n));
        publisher.publish("harold", request).await.unwrap();
    }
    let mut client = raw_consumer(&relay.ws_url(), "pink", "p1").await;
    // The prefetch (32) arrives, then nothing more until acks free credit.
    let mut ids = Vec::new();
    while ids.len() < 32 {
        let task = client.expect("task").await;
        assert_eq!(task["stream"], "cortex:tasks:normal");
        ids.push(task["entry_id"].as_str().unwrap().to_owned());
    }
    let ack =
        |id: &str| serde_json::json!({"type":"ack","stream":"cortex:tasks:normal","entry_id":id});
    // One burst, sent without waiting: acks the relay batches, refusals and a nack
    // among them; every one is answered, in the order sent.
    let mut burst = vec![
        ack(&ids[0]),
        ack("1-1"),
        ack(&ids[1]),
        serde_json::json!({"type":"nack","stream":"cortex:tasks:normal","entry_id":ids[2],"error":"boom"}),
        ack(&ids[0]),
    ];
    burst.extend(ids[3..].iter().map(|id| ack(id)));
    let mut expected = vec![
        ("acked", ids[0].clone()),
        ("error", String::new()),
        ("acked", ids[1].clone()),
        ("nacked", ids[2].clone()),
        ("error", String::new()),
    ];
    expected.extend(ids[3..].iter().map(|id| ("acked", id.clone())));
    for frame in burst {
        client.send(frame).await;
    }
    let mut replies = Vec::new();
    let mut later = Vec::new();
    while replies.len() < expected.len() {
        let frame = client.next().await;
        match frame["type"].as_str().unwrap() {
            "task" => later.push(frame),
            "error" => {
                assert_eq!(frame["code"], "unknown_delivery", "{frame}");
                replies.push(("error", String::new()));
            }
            "nacked" => {
                assert_eq!(frame["dead_lettered"], false);
                replies.push(("nacked", frame["entry_id"].as_str().unwrap().to_owned()));
            }
            "acked" => replies.push(("acked", frame["entry_id"].as_str().unwrap().to_owned())),
            other => panic!("unexpected frame {other}: {frame}"),
        }
    }
    assert_eq!(replies, expected);
    // The rest: the 8 not yet delivered, and the nacked one again. Each acked once.
    let mut acked: BTreeSet<String> = ids.iter().filter(|id| **id != ids[2]).cloned().collect();
    let mut awaiting = 0;
    while acked.len() < 40 || awaiting > 0 {
        let task = match later.pop() {
            Some(task) => task,
            None => client.next().await,
        };
        match task["type"].as_str().unwrap() {
            "task" => {
                let id = task["entry_id"].as_str().unwrap().to_owned();
                if id == ids[2] {
                    assert_eq!(task["delivery_count"], 2);
                }
                assert!(acked.insert(id.clone()), "{id} delivered after its ack");
                client.send(ack(&id)).await;
                awaiting += 1;
            }
            "acked" => awaiting -= 1,
            _ => panic!("unexpected frame {task}"),
        }
    }
    let mut conn = redis.connection().await;
    assert_eq!(pending(&mut conn, "cortex:tasks:normal", "pink").await, 0);
}

#[tokio::test]
async fn acks_for_every_stream_sent_at_once_are_all_confirmed_in_order() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    for n in 0..16 {
        let request =
            TaskRequest::new("pink", Priority::ALL[n % 4], "coding").with_payload(payload(n));
        publisher.publish("harold", request).await.unwrap();
    }
    let mut client = raw_consumer(&relay.ws_url(), "pink", "p1").await;
    let mut tasks = Vec::new();
    while tasks.len() < 16 {
        let task = client.expect("task").await;
        tasks.push((
            task["stream"].as_str().unwrap().to_owned(),
            task["entry_id"].as_str().unwrap().to_owned(),
        ));
    }
    // Newest first, so that the streams alternate in the burst.
    for (stream, entry_id) in tasks.iter().rev() {
        client
            .send(serde_json::json!({"type":"ack","stream":stream,"entry_id":entry_id}))
            .await;
    }
    for (stream, entry_id) in tasks.iter().rev() {
        let acked = client.expect("acked").await;
        assert_eq!(
            (acked["stream"].as_str(), acked["entry_id"].as_str()),
            (Some(stream.as_str()), Some(entry_id.as_str()))
        );
    }
    let mut conn = redis.connection().await;
    for priority in Priority::ALL {
        assert_eq!(pending(&mut conn, priority.stream(), "pink").await, 0);
    }
}

/// `ref` (README, WebSocket protocol): each ack, nack and refusal is answered with the
/// ref of the frame it answers, a frame without one without one; a `publish` and a
/// `heartbeat` get theirs back on `published`.
#[tokio::test]
async fn replies_carry_the_ref_of_the_frame_they_answer() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    for n in 0..4 {
        let request = TaskRequest::new("pink", Priority::Normal, "coding").with_payload(payload(n));
        publisher.publish("harold", request).await.unwrap();
    }
    let mut client = cortex_e2e::ws::WsClient::connect(&relay.ws_url()).await;
    client
        .send(serde_json::json!({
            "type": "subscribe", "agent": "pink", "mode": "consume", "consumer": "p1",
            "ref": "sub-1"
        }))
        .await;
    assert_eq!(client.expect("subscribed").await["ref"], "sub-1");
    let mut ids = Vec::new();
    while ids.len() < 4 {
        let task = client.expect("task").await;
        assert!(
            task.get("ref").is_none(),
            "a delivery answers no frame: {task}"
        );
        ids.push(task["entry_id"].as_str().unwrap().to_owned());
    }
    let settle = |kind: &str, id: &str, reference: Option<serde_json::Value>| {
        let mut frame =
            serde_json::json!({"type": kind, "stream": "cortex:tasks:normal", "entry_id": id});
        if kind == "nack" {
            frame["error"] = "boom".into();
        }
        if let Some(reference) = reference {
            frame["ref"] = reference;
        }
        frame
    };
    // Sent at once: the relay batches the acks, and answers every one with its ref.
    let burst = [
        (
            settle("ack", &ids[0], Some(1.into())),
            "acked",
            Some(1.into()),
        ),
        (
            settle("ack", "1-1", Some("bogus".into())),
            "error",
            Some("bogus".into()),
        ),
        (
            settle("nack", &ids[1], Some(2.into())),
            "nacked",
            Some(2.into()),
        ),
        (settle("ack", &ids[2], None), "acked", None),
        (
            settle("ack", &ids[0], Some(3.into())),
            "error",
            Some(3.into()),
        ),
        (
            settle("ack", &ids[3], Some("a-4".into())),
            "acked",
            Some("a-4".into()),
        ),
    ];
    for (frame, ..) in &burst {
        client.send(frame.clone()).await;
    }
    for (sent, kind, reference) in &burst {
        // The nacked task comes back meanwhile; it is no reply.
        let reply = loop {
            let frame = client.next().await;
            if frame["type"] != "task" {
                break frame;
            }
        };
        assert_eq!(reply["type"], *kind, "{sent} answered by {reply}");
        assert_eq!(
            reply.get("ref"),
            reference.as_ref(),
            "{sent} answered by {reply}"
        );
        if *kind == "error" {
            assert_eq!(reply["code"], "unknown_delivery", "{reply}");
        } else {
            assert_eq!(reply["entry_id"], sent["entry_id"], "{reply}");
        }
    }
    client
        .send(serde_json::json!({
            "type": "publish", "to": "pink", "priority": "high", "task_type": "coding",
            "ref": "pub-1"
        }))
        .await;
    let published = client.next_of_type("published").await;
    assert_eq!(
        (&published["ref"], &published["stream"]),
        (
            &serde_json::json!("pub-1"),
            &serde_json::json!("cortex:tasks:high")
        )
    );
    client
        .send(serde_json::json!({"type": "heartbeat", "agent": "pink", "ref": 9}))
        .await;
    let published = client.next_of_type("published").await;
    assert_eq!(
        (&published["ref"], &published["stream"]),
        (
            &serde_json::json!(9),
            &serde_json::json!("cortex:heartbeats")
        )
    );
}
