//! The task lifecycle record end to end (README, Task lifecycle): a real relay and
//! Redis; tasks published over HTTP, the WebSocket and the CLI, consumed through the
//! relay (delivered, nacked, reclaimed after the visibility timeout, acked,
//! dead-lettered), their letters retried and deleted over HTTP and the CLI. Asserted in
//! Redis: `cortex:task:<id>` (order, fields, detail, expiry), `cortex:lifecycle` (the same
//! records, capped), `cortex:trace:<id>`; nothing with `--lifecycle off`; watchers'
//! `lifecycle` frames for their agents only, hand-written junk in the stream skipped;
//! the per-agent counters in `/metrics`.

use cortex_agent::{Delivery, RelayConsumer};
use cortex_e2e::redis::{xadd_bytes, RedisServer};
use cortex_e2e::relay::{relay_bin, Relay};
use cortex_e2e::ws::WsClient;
use cortex_shared::lifecycle::{LifecycleEvent, LifecycleRecord};
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn next(consumer: &mut RelayConsumer) -> Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery within the timeout")
        .expect("consumer open")
}

/// `POST /api/v1/tasks`; the task id and entry id.
async fn publish(relay: &Relay, body: Value) -> (String, String) {
    let (status, reply) =
        cortex_e2e::http::json(relay.addr(), "POST", "/api/v1/tasks", Some(&body)).await;
    assert_eq!(status, 201, "{reply}");
    (
        reply["task_id"].as_str().unwrap().to_owned(),
        reply["entry_id"].as_str().unwrap().to_owned(),
    )
}

/// The records in `cortex:task:<id>`, oldest first (each item must be a record).
async fn task_records(conn: &mut MultiplexedConnection, task_id: &str) -> Vec<LifecycleRecord> {
    let items: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("cortex:task:{task_id}"))
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await
        .unwrap();
    items
        .iter()
        .map(|item| serde_json::from_str(item).unwrap_or_else(|e| panic!("{item}: {e}")))
        .collect()
}

/// The records in `cortex:lifecycle` about `task_id`, oldest first: each entry is one
/// field, `records`, a JSON array of one write's records.
async fn stream_records(conn: &mut MultiplexedConnection, task_id: &str) -> Vec<LifecycleRecord> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg("cortex:lifecycle")
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap();
    reply
        .ids
        .into_iter()
        .flat_map(|entry| {
            let names: Vec<&String> = entry.map.keys().collect();
            assert_eq!(names, ["records"], "an entry is one field");
            let json: String = redis::from_redis_value_ref(&entry.map["records"]).unwrap();
            serde_json::from_str::<Vec<LifecycleRecord>>(&json)
                .unwrap_or_else(|e| panic!("{json}: {e}"))
        })
        .filter(|record| record.task_id == task_id)
        .collect()
}

/// Waits until `cortex:task:<id>` holds `n` records; returns them.
async fn wait_records(
    conn: &mut MultiplexedConnection,
    task_id: &str,
    n: usize,
) -> Vec<LifecycleRecord> {
    let mut last = Vec::new();
    let found = cortex_e2e::eventually(WAIT, || {
        let mut conn = conn.clone();
        async move {
            let records = task_records(&mut conn, task_id).await;
            (records.len() >= n).then_some(records)
        }
    })
    .await;
    if let Some(records) = found {
        return records;
    }
    last.extend(task_records(conn, task_id).await);
    panic!("{task_id}: {n} records expected, found {last:#?}");
}

fn events(records: &[LifecycleRecord]) -> Vec<(LifecycleEvent, Option<&str>)> {
    records
        .iter()
        .map(|r| (r.event, r.consumer.as_deref()))
        .collect()
}

async fn ttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("TTL").arg(key).query_async(conn).await.unwrap()
}

async fn memory_usage(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query_async(conn)
        .await
        .unwrap()
}

async fn xlen(conn: &mut MultiplexedConnection, stream: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_tasks_life_through_the_relay_is_recorded_in_order_with_its_details() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &[
            "--visibility-timeout-ms",
            "600",
            "--lifecycle-max-age-secs",
            "120",
        ],
    );
    let mut conn = redis.connection().await;
    let (task_id, entry_id) = publish(
        &relay,
        json!({"to":"pink","priority":"high","type":"coding","payload":{"n":1},
               "correlation_id":"trace-1"}),
    )
    .await;

    let mut first = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let delivery = next(&mut first).await;
    assert_eq!(
        (delivery.task.id.as_str(), delivery.delivery_count),
        (task_id.as_str(), 1)
    );
    assert!(!first.nack(&delivery, "boom").await.unwrap());
    // Nacked: due again at once, to the same consumer (its own: no `reclaimed`).
    let again = next(&mut first).await;
    assert_eq!(again.delivery_count, 2);
    // pink-1 goes quiet and away; pink-2 takes the task over once it is due.
    drop(first);
    let mut second = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-2")
        .await
        .unwrap();
    let third = next(&mut second).await;
    assert_eq!(
        (third.entry_id.as_str(), third.delivery_count),
        (entry_id.as_str(), 3)
    );
    second.ack(&third).await.unwrap();

    let records = wait_records(&mut conn, &task_id, 7).await;
    assert_eq!(
        events(&records),
        [
            (LifecycleEvent::Published, None),
            (LifecycleEvent::Delivered, Some("pink-1")),
            (LifecycleEvent::Nacked, Some("pink-1")),
            (LifecycleEvent::Delivered, Some("pink-1")),
            (LifecycleEvent::Reclaimed, Some("pink-2")),
            (LifecycleEvent::Delivered, Some("pink-2")),
            (LifecycleEvent::Acked, Some("pink-2")),
        ],
        "{records:#?}"
    );
    for record in &records {
        assert_eq!(record.task_id, task_id);
        assert_eq!(record.stream, "cortex:tasks:high");
        assert_eq!(record.entry_id, entry_id);
    }
    assert_eq!(records[0].agent, None);
    assert!(records[1..]
        .iter()
        .all(|r| r.agent.as_deref() == Some("pink")));
    assert_eq!(records[1].detail["delivery"], 1);
    assert_eq!(records[2].detail["error"], "boom");
    assert_eq!(records[3].detail["delivery"], 2);
    assert_eq!(records[4].detail["from"], "pink-1");
    assert_eq!(records[5].detail["delivery"], 3);
    assert!(records[6].detail["ms"].is_u64(), "{:?}", records[6]);
    assert!(records.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));

    // The stream holds the same records, in the same order.
    let entries = stream_records(&mut conn, &task_id).await;
    assert_eq!(entries, records);
    // Kept for the configured age after the last write; the trace lists the task.
    let list_ttl = ttl(&mut conn, &format!("cortex:task:{task_id}")).await;
    assert!((1..=120).contains(&list_ttl), "{list_ttl}");
    let trace: Vec<String> = redis::cmd("SMEMBERS")
        .arg("cortex:trace:trace-1")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(trace, std::slice::from_ref(&task_id));
    let trace_ttl = ttl(&mut conn, "cortex:trace:trace-1").await;
    assert!((1..=120).contains(&trace_ttl), "{trace_ttl}");

    // What it costs in Redis (README, Task lifecycle: memory).
    let list_bytes = memory_usage(&mut conn, &format!("cortex:task:{task_id}")).await;
    let stream_bytes = memory_usage(&mut conn, "cortex:lifecycle").await;
    let entries = xlen(&mut conn, "cortex:lifecycle").await;
    eprintln!(
        "memory: cortex:task:<id> after 7 records {list_bytes} B; cortex:lifecycle \
         {stream_bytes} B for {entries} entries"
    );
    assert!(list_bytes > 0 && stream_bytes > 0);

    // The per-agent counters.
    let (status, metrics) = cortex_e2e::http::get(relay.addr(), "/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "cortex_agent_tasks_total{agent=\"pink\",outcome=\"acked\"} 1\n",
        "cortex_agent_tasks_total{agent=\"pink\",outcome=\"nacked\"} 1\n",
        "cortex_agent_delivery_to_ack_seconds_count{agent=\"pink\"} 1\n",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    // And the outcome counters in Redis, for the agent page: one done (pink-2's ack),
    // one failed (the nack), one timed out (pink-2 took it from pink-1).
    let (status, body) = cortex_e2e::http::get(relay.addr(), "/api/v1/agents/pink/outcomes").await;
    assert_eq!(status, 200, "{body}");
    let outcomes: Value = serde_json::from_str(&body).unwrap();
    let counts = json!({"done":1,"failed":1,"dead":0,"timed_out":1});
    assert_eq!(outcomes["last_5_min"], counts, "{outcomes}");
    assert_eq!(outcomes["last_hour"], counts, "{outcomes}");
    assert_eq!(outcomes["agent"], "pink");
    let (status, body) = cortex_e2e::http::get(relay.addr(), "/api/v1/agents/blue/outcomes").await;
    assert_eq!(status, 200, "{body}");
    let blue: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        blue["last_hour"],
        json!({"done":0,"failed":0,"dead":0,"timed_out":0})
    );
    assert_eq!(blue["minutes"], json!([]));
    let (status, body) =
        cortex_e2e::http::get(relay.addr(), "/api/v1/agents/no%20such/outcomes").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_agent"), "{body}");
}

#[tokio::test]
async fn an_ack_that_does_not_take_writes_no_acked_record() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    let (task_id, entry_id) = publish(
        &relay,
        json!({"to":"pink","priority":"high","type":"coding"}),
    )
    .await;
    let mut consumer = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let delivery = next(&mut consumer).await;
    // Someone else acks the entry first (another consumer's late ack, an agent on
    // Redis): the relay's ack then takes nothing, and must not claim it did.
    let taken: i64 = redis::cmd("XACK")
        .arg("cortex:tasks:high")
        .arg("agent:pink")
        .arg(&entry_id)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(taken, 1);
    consumer.ack(&delivery).await.unwrap();
    // The ack's answer comes after its script ran: what it wrote is there now.
    let records = task_records(&mut conn, &task_id).await;
    assert_eq!(
        events(&records),
        [
            (LifecycleEvent::Published, None),
            (LifecycleEvent::Delivered, Some("pink-1")),
        ],
        "{records:#?}"
    );
    // The next task's ack takes, and is recorded.
    let (next_id, _) = publish(
        &relay,
        json!({"to":"pink","priority":"high","type":"coding"}),
    )
    .await;
    let delivery = next(&mut consumer).await;
    assert_eq!(delivery.task.id, next_id);
    consumer.ack(&delivery).await.unwrap();
    let records = task_records(&mut conn, &next_id).await;
    assert_eq!(records.last().map(|r| r.event), Some(LifecycleEvent::Acked));
}

/// Runs `cortex-relay ARGS`; its stdout (it must succeed).
fn cli(args: &[&str]) -> String {
    let output = std::process::Command::new(relay_bin())
        .args(args)
        .output()
        .expect("run cortex-relay");
    assert!(
        output.status.success(),
        "cortex-relay {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn dead_letters_their_retries_and_deletions_are_recorded_whichever_way_in() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &["--max-deliveries", "1"]);
    let mut conn = redis.connection().await;
    let (retried_id, retried_entry) = publish(
        &relay,
        json!({"to":"pink","priority":"normal","type":"coding"}),
    )
    .await;
    // Published with the CLI, on Redis.
    let out = cli(&[
        "publish",
        "--to",
        "pink",
        "--priority",
        "low",
        "--type",
        "coding",
        "--json",
        "--redis-url",
        &redis.url(),
    ]);
    let published: Value = serde_json::from_str(out.trim()).unwrap();
    let deleted_id = published["task_id"].as_str().unwrap().to_owned();

    let mut consumer = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    for _ in 0..2 {
        let delivery = next(&mut consumer).await;
        assert!(consumer.nack(&delivery, "no luck").await.unwrap(), "dead");
    }
    let dead = wait_records(&mut conn, &retried_id, 3).await;
    assert_eq!(
        events(&dead),
        [
            (LifecycleEvent::Published, None),
            (LifecycleEvent::Delivered, Some("pink-1")),
            (LifecycleEvent::DeadLettered, Some("pink-1")),
        ]
    );
    assert_eq!(dead[2].detail["error"], "no luck");
    let retried_dlq = dead[2].detail["dlq_id"].as_str().unwrap().to_owned();
    let other = wait_records(&mut conn, &deleted_id, 3).await;
    assert_eq!(other[0].event, LifecycleEvent::Published);
    assert_eq!(other[2].event, LifecycleEvent::DeadLettered);
    let deleted_dlq = other[2].detail["dlq_id"].as_str().unwrap().to_owned();
    assert_ne!(retried_dlq, deleted_dlq);
    // The letters are those ids.
    let letters = cortex_e2e::fixtures::xrange(&mut conn, "cortex:tasks:dlq").await;
    let ids: Vec<&str> = letters.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, [retried_dlq.as_str(), deleted_dlq.as_str()]);

    // Retried over HTTP: a record of the entry it died as, naming the new one.
    let (status, reply) = cortex_e2e::http::json(
        relay.addr(),
        "POST",
        &format!("/api/v1/messaging/dlq/retry/{retried_dlq}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let records = wait_records(&mut conn, &retried_id, 4).await;
    let retried = &records[3];
    assert_eq!(retried.event, LifecycleEvent::Retried);
    assert_eq!(
        (retried.stream.as_str(), retried.entry_id.as_str()),
        ("cortex:tasks:normal", retried_entry.as_str())
    );
    assert_eq!(retried.detail["dlq_id"], retried_dlq.as_str());
    assert_eq!(retried.detail["stream"], reply["stream"]);
    assert_eq!(retried.detail["entry_id"], reply["entry_id"]);
    // The new entry is delivered again and its record joins the task's.
    let delivery = next(&mut consumer).await;
    assert_eq!(Value::from(delivery.entry_id.as_str()), reply["entry_id"]);
    consumer.ack(&delivery).await.unwrap();
    let records = wait_records(&mut conn, &retried_id, 6).await;
    assert_eq!(
        (records[4].event, records[5].event),
        (LifecycleEvent::Delivered, LifecycleEvent::Acked)
    );
    assert_eq!(Value::from(records[5].entry_id.as_str()), reply["entry_id"]);

    // Deleted with the CLI, on Redis.
    cli(&["dlq", "delete", &deleted_dlq, "--redis-url", &redis.url()]);
    let records = wait_records(&mut conn, &deleted_id, 4).await;
    assert_eq!(records[3].event, LifecycleEvent::Deleted);
    assert_eq!(records[3].detail["dlq_id"], deleted_dlq.as_str());
    assert_eq!(records[3].stream, "cortex:tasks:low");
    assert_eq!(records[3].entry_id, other[0].entry_id);

    let (_, metrics) = cortex_e2e::http::get(relay.addr(), "/metrics").await;
    assert!(
        metrics.contains("cortex_agent_tasks_total{agent=\"pink\",outcome=\"dead_lettered\"} 2\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn with_the_record_off_nothing_is_written() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--max-deliveries", "1", "--lifecycle", "off"],
    );
    let mut conn = redis.connection().await;
    publish(
        &relay,
        json!({"to":"pink","priority":"high","type":"coding","correlation_id":"t-off"}),
    )
    .await;
    publish(
        &relay,
        json!({"to":"pink","priority":"high","type":"coding"}),
    )
    .await;
    cli(&[
        "--lifecycle",
        "off",
        "publish",
        "--to",
        "pink",
        "--type",
        "coding",
        "--redis-url",
        &redis.url(),
    ]);
    let mut consumer = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let first = next(&mut consumer).await;
    consumer.ack(&first).await.unwrap();
    let second = next(&mut consumer).await;
    assert!(consumer.nack(&second, "dead").await.unwrap());
    let third = next(&mut consumer).await;
    consumer.ack(&third).await.unwrap();
    let letters = cortex_e2e::fixtures::xrange(&mut conn, "cortex:tasks:dlq").await;
    let (status, _) = cortex_e2e::http::json(
        relay.addr(),
        "POST",
        &format!("/api/v1/messaging/dlq/retry/{}", letters[0].0),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let retried = next(&mut consumer).await;
    consumer.ack(&retried).await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("cortex:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let recorded: Vec<&String> = keys
        .iter()
        .filter(|k| {
            k.starts_with("cortex:task:")
                || k.starts_with("cortex:trace:")
                || *k == "cortex:lifecycle"
        })
        .collect();
    assert!(recorded.is_empty(), "{recorded:?}");
}

#[tokio::test]
async fn the_stream_is_capped_by_count_and_cut_by_age() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &[
            "--lifecycle-max-len",
            "100",
            "--lifecycle-max-age-secs",
            "5",
        ],
    );
    let mut conn = redis.connection().await;
    // 400 published records, over the WebSocket (as admin on loopback).
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    for n in 0..400 {
        ws.send(
            json!({"type":"publish","to":"pink","priority":"low","task_type":"coding",
            "payload":{"n":n}}),
        )
        .await;
    }
    let mut published = 0;
    while published < 400 {
        let frame = ws.next().await;
        assert_eq!(frame["type"], "published", "{frame}");
        published += 1;
    }
    let len = xlen(&mut conn, "cortex:lifecycle").await;
    // MAXLEN ~ 100: Redis removes whole nodes (100 entries each by default).
    assert!((100..=250).contains(&len), "{len}");
    let (task_id, _) = publish(
        &relay,
        json!({"to":"pink","priority":"low","type":"coding"}),
    )
    .await;
    let task_ttl = ttl(&mut conn, &format!("cortex:task:{task_id}")).await;
    assert!((1..=5).contains(&task_ttl), "{task_ttl}");
    // The trimmer's cut by age (each round; called here with a clock 10 s on).
    let client = redis::Client::open(redis.url()).unwrap();
    let mut manager = client.get_connection_manager().await.unwrap();
    let settings = cortex_relay::store::lifecycle::LifecycleSettings {
        enabled: true,
        max_len: 100,
        max_age: Duration::from_secs(5),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    cortex_relay::engine::trim::trim_lifecycle(&mut manager, &settings, now)
        .await
        .unwrap();
    let kept = xlen(&mut conn, "cortex:lifecycle").await;
    assert!(kept > 0, "nothing is older than 5 s yet");
    cortex_relay::engine::trim::trim_lifecycle(&mut manager, &settings, now + 10_000)
        .await
        .unwrap();
    let left = xlen(&mut conn, "cortex:lifecycle").await;
    assert!(left < kept && left <= 100, "{kept} → {left}");
}

/// The `lifecycle` frames `ws` gets until one of `event` for `task_id`; every other
/// frame is skipped.
async fn lifecycle_until(ws: &mut WsClient, task_id: &str, event: &str) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = ws.next().await;
        if frame["type"] != "lifecycle" {
            continue;
        }
        let done = frame["task_id"] == task_id && frame["event"] == event;
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

#[tokio::test]
async fn watchers_hear_of_their_agents_tasks_only_and_junk_in_the_stream_is_skipped() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    let mut pink = WsClient::connect(&relay.ws_url()).await;
    pink.subscribe("pink").await;
    let mut blue = WsClient::connect(&relay.ws_url()).await;
    blue.subscribe("blue").await;
    let mut all = WsClient::connect(&relay.ws_url()).await;
    all.subscribe("*").await;

    // Written by hand: not UTF-8, a field missing, junk in detail, an unknown event.
    let good = |agent: &str, task: &str| -> Vec<(Vec<u8>, Vec<u8>)> {
        [
            ("event", "delivered"),
            ("task_id", task),
            ("stream", "cortex:tasks:high"),
            ("entry_id", "1-0"),
            ("at_ms", "1"),
            ("agent", agent),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
    };
    let mut junk = Vec::new();
    let mut bytes = good("pink", "junk-1");
    bytes[1].1 = b"\xff\xfejunk".to_vec();
    junk.push(bytes);
    let mut missing = good("pink", "junk-2");
    missing.remove(4);
    junk.push(missing);
    let mut detail = good("pink", "junk-3");
    detail.push((b"detail".to_vec(), b"{not json".to_vec()));
    junk.push(detail);
    let mut unknown = good("pink", "junk-4");
    unknown[0].1 = b"exploded".to_vec();
    junk.push(unknown);
    let mut agent = good("pink", "junk-5");
    agent[5].1 = b"pi\xffnk".to_vec();
    junk.push(agent);
    // The one field entries have now, `records`, holding no record.
    for records in [
        &b"{not json"[..],
        b"\xff\xfe",
        br#"[{"event":"acked","task_id":"junk-6"}]"#,
        br#"{"event":"acked","task_id":"junk-7","agent":"pink"}"#,
    ] {
        junk.push(vec![(b"records".to_vec(), records.to_vec())]);
    }
    for fields in &junk {
        xadd_bytes(&mut conn, "cortex:lifecycle", fields).await;
    }

    let (pink_task, entry_id) = publish(
        &relay,
        json!({"to":"pink","priority":"high","type":"coding"}),
    )
    .await;
    let mut consumer = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let delivery = next(&mut consumer).await;
    consumer.ack(&delivery).await.unwrap();

    let frames = lifecycle_until(&mut pink, &pink_task, "acked").await;
    let seen: Vec<(&str, &str)> = frames
        .iter()
        .map(|f| (f["task_id"].as_str().unwrap(), f["event"].as_str().unwrap()))
        .collect();
    // No `published` (it has no agent: `*` watchers only), none of the junk.
    assert_eq!(
        seen,
        [
            (pink_task.as_str(), "delivered"),
            (pink_task.as_str(), "acked")
        ]
    );
    assert_eq!(
        frames[1],
        json!({"type":"lifecycle","task_id":pink_task,"stream":"cortex:tasks:high",
            "entry_id":entry_id,"agent":"pink","state":"done","event":"acked",
            "consumer":"pink-1","at_ms":frames[1]["at_ms"],"detail":frames[1]["detail"]})
    );
    assert_eq!(frames[0]["state"], "in_progress");
    let star = lifecycle_until(&mut all, &pink_task, "acked").await;
    let star: Vec<&str> = star
        .iter()
        .filter(|f| f["task_id"] == pink_task.as_str())
        .map(|f| f["event"].as_str().unwrap())
        .collect();
    assert_eq!(star, ["published", "delivered", "acked"]);

    // Blue hears of blue's task, and heard nothing of pink's before it.
    let (blue_task, _) = publish(
        &relay,
        json!({"to":"blue","priority":"high","type":"coding"}),
    )
    .await;
    let mut blue_consumer = RelayConsumer::connect(&relay.ws_url(), "blue", "blue-1")
        .await
        .unwrap();
    let delivery = next(&mut blue_consumer).await;
    blue_consumer.ack(&delivery).await.unwrap();
    let frames = lifecycle_until(&mut blue, &blue_task, "acked").await;
    assert!(
        frames.iter().all(|f| f["task_id"] == blue_task.as_str()),
        "{frames:?}"
    );
    // And pink nothing of blue's: the next pink frame is about pink's next task.
    let (later, _) = publish(
        &relay,
        json!({"to":"pink","priority":"high","type":"coding"}),
    )
    .await;
    let delivery = next(&mut consumer).await;
    consumer.ack(&delivery).await.unwrap();
    let frames = lifecycle_until(&mut pink, &later, "acked").await;
    assert!(
        frames.iter().all(|f| f["task_id"] == later.as_str()),
        "{frames:?}"
    );
}
