//! Bad entries and Redis connection resets, end to end (README, "Failure behaviour": bad entries in Redis, Redis connection resets):
//! task entries with field names or values that are not UTF-8, or without `to`,
//! written between good ones with redis-rs raw bytes; `CLIENT KILL` of the relay's
//! connections while a task is in flight; a read whose reply was lost. What is counted
//! as a delivery is what was delivered, nothing stalls, and a dead letter keeps what it
//! could not decode and is retried only with what it lacked.

use cortex_agent::{Delivery, RelayConsumer};
use cortex_e2e::fixtures::{self, HIGH};
use cortex_e2e::http;
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use cortex_e2e::ws::WsClient;
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

/// The seven task fields of a well-formed task `id` for pink, as bytes.
fn task_fields(id: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    [
        ("id", id),
        ("from", "harold"),
        ("to", "pink"),
        ("priority", "high"),
        ("type", "coding"),
        ("payload", r#"{"n":1}"#),
        ("created", "1704556800"),
    ]
    .iter()
    .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
    .collect()
}

/// `fields` with `name` set to `value` (added if absent), or removed when `None`.
fn with(
    mut fields: Vec<(Vec<u8>, Vec<u8>)>,
    name: &[u8],
    value: Option<&[u8]>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    fields.retain(|(k, _)| k != name);
    if let Some(value) = value {
        fields.push((name.to_vec(), value.to_vec()));
    }
    fields
}

/// `XADD stream * …` with raw bytes as names and values; the entry id.
async fn xadd_raw(
    conn: &mut MultiplexedConnection,
    stream: &str,
    fields: &[(Vec<u8>, Vec<u8>)],
) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (k, v) in fields {
        cmd.arg(k.as_slice()).arg(v.as_slice());
    }
    cmd.query_async(conn).await.expect("XADD")
}

async fn next(consumer: &mut RelayConsumer) -> Delivery {
    tokio::time::timeout(WAIT, consumer.next())
        .await
        .expect("a delivery within the timeout")
        .expect("consumer open")
}

/// Redis's delivery count of `entry_id` in `agent`'s group on `stream`.
async fn times_delivered(
    conn: &mut MultiplexedConnection,
    stream: &str,
    agent: &str,
    entry_id: &str,
) -> Option<u64> {
    let reply: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(format!("agent:{agent}"))
        .arg(entry_id)
        .arg(entry_id)
        .arg(1)
        .query_async(conn)
        .await
        .unwrap();
    reply.first().map(|p| p.3)
}

/// The DLQ's letters (API shape), oldest first.
async fn letters(relay: &Relay) -> Vec<Value> {
    let (status, page) = http::json(
        relay.addr(),
        "GET",
        "/api/v1/messaging/dlq?limit=1000",
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let mut items = page["items"].as_array().cloned().unwrap_or_default();
    items.reverse();
    items
}

/// Waits until the DLQ holds `n` letters (blocking reads of the stream).
async fn wait_for_letters(conn: &mut MultiplexedConnection, n: usize) {
    tokio::time::timeout(WAIT, async {
        let mut last = "0-0".to_owned();
        let mut seen = 0;
        while seen < n {
            let reply: redis::Value = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(1000)
                .arg("STREAMS")
                .arg(fixtures::DLQ)
                .arg(&last)
                .query_async(conn)
                .await
                .unwrap();
            let ids = dlq_ids(reply);
            seen += ids.len();
            if let Some(id) = ids.last() {
                last.clone_from(id);
            }
        }
    })
    .await
    .expect("the letters within the timeout");
}

/// The entry ids of an XREAD reply on one stream.
fn dlq_ids(reply: redis::Value) -> Vec<String> {
    let redis::Value::Array(streams) = reply else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    for stream in streams {
        let redis::Value::Array(mut pair) = stream else {
            continue;
        };
        let Some(redis::Value::Array(entries)) = pair.pop() else {
            continue;
        };
        for entry in entries {
            if let redis::Value::Array(parts) = entry {
                if let Some(id) = parts
                    .first()
                    .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                {
                    ids.push(id);
                }
            }
        }
    }
    ids
}

/// The relay's own counters (`/api/v1/messaging/metrics` → `relay`).
async fn relay_counters(relay: &Relay) -> Value {
    let (status, metrics) =
        http::json(relay.addr(), "GET", "/api/v1/messaging/metrics", None).await;
    assert_eq!(status, 200, "{metrics}");
    metrics["relay"].clone()
}

/// Subscribes a watcher with `frame`, returning every frame up to `subscribed` (or an
/// `error`, which fails the test).
async fn watch(relay: &Relay, frame: Value) -> Vec<Value> {
    let mut client = WsClient::connect(&relay.ws_url()).await;
    client.send(frame).await;
    let mut frames = Vec::new();
    loop {
        let frame = client.next().await;
        assert_ne!(frame["type"], "error", "{frame}");
        let done = frame["type"] == "subscribed";
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

/// Defect 2: an unknown field whose name is not UTF-8 (and, apart, a known field whose
/// value is not UTF-8) between good entries stalls no reader: the consumer goes on
/// delivering, redelivers what is not acked after the visibility timeout while it
/// stays connected, never loses Redis; replay, history and resume answer; the entry
/// that does not decode is dead-lettered once although two agents' groups read it.
#[tokio::test]
async fn entries_with_bytes_that_are_not_utf8_stall_no_reader() {
    let redis = RedisServer::start();
    let mut relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--visibility-timeout-ms", "1000", "--max-deliveries", "5"],
    );
    let mut conn = redis.connection().await;
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    // Harold's group reads every entry too (and acks those for pink at once).
    let mut harold = RelayConsumer::connect(&relay.ws_url(), "harold", "harold-1")
        .await
        .unwrap();

    let good1 = xadd_raw(&mut conn, HIGH, &task_fields("good-1")).await;
    let odd_name = xadd_raw(
        &mut conn,
        HIGH,
        &with(task_fields("odd-name"), b"\xff\xfe name", Some(b"x")),
    )
    .await;
    let odd_value = xadd_raw(
        &mut conn,
        HIGH,
        &with(
            task_fields("odd-value"),
            b"payload",
            Some(b"{\"a\":\"\xff\"}"),
        ),
    )
    .await;
    let good2 = xadd_raw(&mut conn, HIGH, &task_fields("good-2")).await;

    // Delivered in order, the undecodable one left out.
    let mut first = Vec::new();
    for _ in 0..3 {
        first.push(next(&mut pink).await);
    }
    let ids: Vec<&str> = first.iter().map(|d| d.task.id.as_str()).collect();
    assert_eq!(ids, ["good-1", "odd-name", "good-2"]);
    assert!(first.iter().all(|d| d.delivery_count == 1));
    assert_eq!(first[1].entry_id, odd_name);

    // Not acked: after the visibility timeout all three come again, to the same
    // connected consumer (the reclaim reads the entry whose field name is not UTF-8).
    let mut again = Vec::new();
    for _ in 0..3 {
        again.push(next(&mut pink).await);
    }
    let mut ids: Vec<&str> = again.iter().map(|d| d.entry_id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = [good1.as_str(), odd_name.as_str(), good2.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(again.iter().all(|d| d.delivery_count == 2), "{again:?}");
    for delivery in &again {
        pink.ack(delivery).await.unwrap();
    }
    // And a task published now still arrives.
    let good3 = xadd_raw(&mut conn, HIGH, &task_fields("good-3")).await;
    let d = next(&mut pink).await;
    assert_eq!(d.entry_id, good3);
    pink.ack(&d).await.unwrap();

    // The entry that does not decode: one letter, though two groups read it, with the
    // payload's exact bytes kept.
    wait_for_letters(&mut conn, 1).await;
    let letters = letters(&relay).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["original_entry_id"], odd_value);
    assert_eq!(letter["original_id"], "odd-value");
    assert_eq!(letter["error"], "field `payload`: not UTF-8 text");
    assert_eq!(letter["original_bytes"], json!({"payload": "eyJhIjoi/yJ9"}));

    // Replay answers, showing the odd entries for what they are.
    let (status, page) = http::json(
        relay.addr(),
        "GET",
        &format!("/api/v1/streams/{HIGH}/entries"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    assert_eq!(entries[1]["task"]["id"], "odd-name");
    assert_eq!(entries[2]["error"], "field `payload`: not UTF-8 text");
    let (status, _) = http::json(
        relay.addr(),
        "GET",
        &format!("/api/v1/streams/{HIGH}/entries?last=3"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // History and resume read past it.
    let frames = watch(
        &relay,
        json!({"type": "subscribe", "agent": "pink", "history": 10}),
    )
    .await;
    let shown: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "task")
        .map(|f| &f["data"]["id"])
        .collect();
    assert_eq!(shown, ["good-1", "odd-name", "good-2", "good-3"]);
    let frames = watch(
        &relay,
        json!({"type": "subscribe", "agent": "pink", "resume": {HIGH: good1}}),
    )
    .await;
    let shown: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "task")
        .map(|f| &f["data"]["id"])
        .collect();
    assert_eq!(shown, ["odd-name", "good-2", "good-3"]);

    // The agents API reads heartbeats the same way.
    xadd_raw(
        &mut conn,
        fixtures::HEARTBEATS,
        &[
            (b"agent".to_vec(), b"pink".to_vec()),
            (b"time".to_vec(), b"1704556800".to_vec()),
            (b"status".to_vec(), b"{}".to_vec()),
            (b"\xc3\x28".to_vec(), b"\xff".to_vec()),
        ],
    )
    .await;
    let (status, agents) = http::json(relay.addr(), "GET", "/api/v1/agents", None).await;
    assert_eq!(status, 200, "{agents}");

    // Harold's group is not stalled either: nothing of his is pending.
    let for_harold = xadd_raw(
        &mut conn,
        HIGH,
        &with(task_fields("for-harold"), b"to", Some(b"harold")),
    )
    .await;
    let d = next(&mut harold).await;
    assert_eq!(d.entry_id, for_harold);
    harold.ack(&d).await.unwrap();

    // Redis was never lost: the log up to a line logged now (an entry without an id,
    // dead-lettered) says so, as do the counters.
    let marker = xadd_raw(&mut conn, HIGH, &with(task_fields("x"), b"id", None)).await;
    let (_, log) = relay.process().wait_for_log_line(&marker, WAIT).unwrap();
    let lost: Vec<&String> = log.iter().filter(|l| l.contains("lost redis")).collect();
    assert!(lost.is_empty(), "{lost:?}");
    assert_eq!(relay_counters(&relay).await["redis_reconnects"], 0);
}

/// Defect 3: Redis connections reset while a task is in flight count no delivery:
/// after three `CLIENT KILL TYPE normal` (each seen by the consumer, which goes on
/// delivering), the task's count is still 1, it is not dead-lettered, and acking it
/// works.
#[tokio::test]
async fn redis_connection_resets_are_not_deliveries() {
    let redis = RedisServer::start();
    let mut relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &["--max-deliveries", "3"]);
    let mut conn = redis.connection().await;
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let entry = fixtures::task(&mut conn, HIGH, "in-flight", "pink").await;
    let in_flight = next(&mut pink).await;
    assert_eq!(
        (in_flight.entry_id.as_str(), in_flight.delivery_count),
        (entry.as_str(), 1)
    );

    for round in 0..4 {
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(killed > 0);
        relay
            .process()
            .wait_for_log_line("consumer lost redis", WAIT)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        // Reconnected, and delivering: a task published now arrives.
        let id = format!("after-kill-{round}");
        fixtures::task(&mut conn, HIGH, &id, "pink").await;
        let d = next(&mut pink).await;
        assert_eq!((d.task.id.as_str(), d.delivery_count), (id.as_str(), 1));
        pink.ack(&d).await.unwrap();
    }

    assert_eq!(
        times_delivered(&mut conn, HIGH, "pink", &entry).await,
        Some(1)
    );
    pink.ack(&in_flight).await.unwrap();
    assert_eq!(times_delivered(&mut conn, HIGH, "pink", &entry).await, None);
    assert_eq!(fixtures::xlen(&mut conn, fixtures::DLQ).await, 0);
}

/// Defect 3: a read whose reply was lost (an entry pending for the consumer's name that
/// it never sent) is delivered once, with the count Redis has (1), not one more.
#[tokio::test]
async fn a_read_whose_reply_was_lost_is_delivered_once_with_an_honest_count() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(HIGH)
        .arg("agent:pink")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await
        .unwrap();
    let entry = fixtures::task(&mut conn, HIGH, "lost-reply", "pink").await;
    // The read Redis counted, its reply lost on the way.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("agent:pink")
        .arg("pink-1")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(HIGH)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        times_delivered(&mut conn, HIGH, "pink", &entry).await,
        Some(1)
    );

    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let d = next(&mut pink).await;
    assert_eq!((d.entry_id.as_str(), d.delivery_count), (entry.as_str(), 1));
    assert_eq!(
        times_delivered(&mut conn, HIGH, "pink", &entry).await,
        Some(1)
    );
    pink.ack(&d).await.unwrap();
    // Delivered once: what comes next is the next task.
    let later = fixtures::task(&mut conn, HIGH, "later", "pink").await;
    let d = next(&mut pink).await;
    assert_eq!(d.entry_id, later);
}

/// Defect 5: letters of entries that lacked `to`, or whose payload was not UTF-8, are
/// `not_retryable` as they are (one, bulk, CLI), keep what could not be decoded, and
/// are retried with exactly what the body supplies.
#[tokio::test]
async fn letters_of_entries_that_did_not_decode_are_retried_only_with_what_they_lacked() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let no_to = xadd_raw(&mut conn, HIGH, &with(task_fields("no-to"), b"to", None)).await;
    let bytes = xadd_raw(
        &mut conn,
        HIGH,
        &with(task_fields("bytes"), b"payload", Some(b"{\"a\":\"\xff\"}")),
    )
    .await;
    // Read past them: both dead-lettered, then this one delivered.
    fixtures::task(&mut conn, HIGH, "good", "pink").await;
    let d = next(&mut pink).await;
    assert_eq!(d.task.id, "good");
    pink.ack(&d).await.unwrap();
    wait_for_letters(&mut conn, 2).await;

    let letters = letters(&relay).await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    let (no_to_letter, bytes_letter) = (&letters[0], &letters[1]);
    assert_eq!(no_to_letter["original_entry_id"], no_to);
    assert_eq!(no_to_letter["original_missing"], json!(["to"]));
    assert_eq!(no_to_letter["original_to"], "");
    assert_eq!(bytes_letter["original_entry_id"], bytes);
    assert_eq!(
        bytes_letter["original_bytes"],
        json!({"payload": "eyJhIjoi/yJ9"})
    );
    assert_eq!(bytes_letter["original_payload"], "{\"a\":\"\u{fffd}\"}");
    let no_to_id = no_to_letter["dlq_id"].as_str().unwrap().to_owned();
    let bytes_id = bytes_letter["dlq_id"].as_str().unwrap().to_owned();

    // As they are: refused, one by one and in bulk, and left in the DLQ.
    for id in [&no_to_id, &bytes_id] {
        let (status, body) = http::json(
            relay.addr(),
            "POST",
            &format!("/api/v1/messaging/dlq/retry/{id}"),
            None,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("not_retryable")),
            "{body}"
        );
    }
    let (status, body) = http::json(
        relay.addr(),
        "POST",
        "/api/v1/messaging/dlq/retry",
        Some(&json!({"ids": [no_to_id, bytes_id]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["acted"].as_u64(), body["failed"].as_u64()),
        (Some(0), Some(2)),
        "{body}"
    );
    let codes: Vec<&Value> = body["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["code"])
        .collect();
    assert_eq!(codes, ["not_retryable", "not_retryable"]);
    // A priority alone supplies nothing.
    let (status, _) = http::json(
        relay.addr(),
        "POST",
        &format!("/api/v1/messaging/dlq/retry/{no_to_id}"),
        Some(&json!({"priority": "critical"})),
    )
    .await;
    assert_eq!(status, 422);
    // The CLI on Redis refuses too.
    let cli = std::process::Command::new(cortex_e2e::relay::relay_bin())
        .args(["dlq", "retry", &no_to_id, "--redis-url", &redis.url()])
        .output()
        .unwrap();
    assert!(!cli.status.success());
    assert!(
        String::from_utf8_lossy(&cli.stderr).contains("field `to`: missing"),
        "{cli:?}"
    );
    assert_eq!(fixtures::xlen(&mut conn, fixtures::DLQ).await, 2);

    // With what they lacked: republished exactly as supplied.
    let (status, retried) = http::json(
        relay.addr(),
        "POST",
        &format!("/api/v1/messaging/dlq/retry/{no_to_id}"),
        Some(&json!({"to": "pink"})),
    )
    .await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["edited"], true);
    let d = next(&mut pink).await;
    assert_eq!(d.entry_id, retried["entry_id"]);
    assert_eq!((d.task.id.as_str(), d.task.to.as_str()), ("no-to", "pink"));
    assert_eq!(d.task.payload, json!({"n": 1}).as_object().unwrap().clone());
    pink.ack(&d).await.unwrap();

    let (status, retried) = http::json(
        relay.addr(),
        "POST",
        &format!("/api/v1/messaging/dlq/retry/{bytes_id}"),
        Some(&json!({"payload": {"a": "fixed"}})),
    )
    .await;
    assert_eq!(status, 200, "{retried}");
    let d = next(&mut pink).await;
    assert_eq!(d.task.id, "bytes");
    let entry: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(HIGH)
        .arg(&d.entry_id)
        .arg(&d.entry_id)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        fixtures::field(&entry[0].1, "payload"),
        Some(r#"{"a":"fixed"}"#)
    );
    assert_eq!(fixtures::field(&entry[0].1, "to"), Some("pink"));
    assert_eq!(fixtures::field(&entry[0].1, "edited"), Some("true"));
    pink.ack(&d).await.unwrap();
    assert_eq!(fixtures::xlen(&mut conn, fixtures::DLQ).await, 0);
}
