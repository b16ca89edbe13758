//! Replay, metrics and publish end to end (real redis-server, the relay binary).

use crate::api_common;

use api_common::*;
use cortex_agent::{Publisher, RelayConsumer, TaskRequest};
use cortex_e2e::redis::{xadd, RedisServer};
use cortex_e2e::relay::Relay;
use cortex_shared::Priority;
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn task_fields(id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("id", id.to_owned()),
        ("from", "harold".into()),
        ("to", "pink".into()),
        ("priority", "high".into()),
        ("type", "coding".into()),
        ("payload", r#"{"k":1}"#.into()),
        ("created", "1704556800".into()),
    ]
}

async fn xadd_at(
    conn: &mut MultiplexedConnection,
    stream: &str,
    id: &str,
    fields: &[(&str, String)],
) {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg(id);
    for (k, v) in fields {
        cmd.arg(*k).arg(v);
    }
    let _: String = cmd.query_async(conn).await.unwrap();
}

fn entry_ids(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn replay_by_time_range_id_range_and_last_n() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    // 30 tasks at 1000 ms steps (explicit ids give known times), one malformed.
    for n in 0..30u64 {
        let mut fields = task_fields(&format!("t-{n}"));
        if n == 12 {
            fields[5].1 = "{broken".into();
        }
        xadd_at(
            &mut conn,
            "cortex:tasks:high",
            &format!("{}-0", 5_000_000 + n * 1000),
            &fields,
        )
        .await;
    }
    let stream = "/api/v1/streams/cortex:tasks:high/entries";

    // A time range, inclusive at both ends, across the malformed entry.
    let page = get_ok(addr, &format!("{stream}?since_ms=5010000&until_ms=5015000")).await;
    assert_eq!(page["stream"], "cortex:tasks:high");
    assert_eq!(
        entry_ids(&page),
        (10..=15)
            .map(|n| format!("{}-0", 5_000_000 + n * 1000))
            .collect::<Vec<_>>()
    );
    assert_eq!(page["next_start"], Value::Null);
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries[0]["task"]["id"], "t-10");
    assert_eq!(entries[0]["task"]["payload"], json!({"k": 1}));
    let broken = &entries[2];
    assert!(broken.get("task").is_none());
    assert_eq!(broken["raw"]["payload"], "{broken");
    assert_eq!(broken["raw"]["id"], "t-12");
    assert!(
        broken["error"].as_str().unwrap().contains("payload"),
        "{broken}"
    );
    // A time range matching nothing.
    let page = get_ok(addr, &format!("{stream}?since_ms=1&until_ms=2")).await;
    assert_eq!(page["entries"], json!([]));

    // An id range, paged with next_start.
    let mut got = Vec::new();
    let mut start = "5003000-0".to_owned();
    loop {
        let page = get_ok(
            addr,
            &format!("{stream}?start={start}&end=5020000-0&count=4"),
        )
        .await;
        got.extend(entry_ids(&page));
        match page["next_start"].as_str() {
            Some(next) => start = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        got,
        (3..=20)
            .map(|n| format!("{}-0", 5_000_000 + n * 1000))
            .collect::<Vec<_>>()
    );

    // The last N, oldest first; the first page by default.
    let page = get_ok(addr, &format!("{stream}?last=3")).await;
    assert_eq!(entry_ids(&page), ["5027000-0", "5028000-0", "5029000-0"]);
    let page = get_ok(addr, stream).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 30);

    // Heartbeats and the DLQ decode as such; an empty cortex stream is empty.
    xadd(
        &mut conn,
        "cortex:heartbeats",
        &[("agent", "pink"), ("time", "1"), ("status", r#"{"s":1}"#)],
    )
    .await;
    let page = get_ok(addr, "/api/v1/streams/cortex:heartbeats/entries?last=1").await;
    assert_eq!(
        page["entries"][0]["heartbeat"],
        json!({"agent": "pink", "time": 1, "status": {"s": 1}})
    );
    add_letter(
        &mut conn,
        &letter("t-1", "pink", "harold", "high", "boom", "{}"),
    )
    .await;
    let page = get_ok(addr, "/api/v1/streams/cortex%3Atasks%3Adlq/entries").await;
    assert_eq!(page["entries"][0]["letter"]["error"], "boom");
    let page = get_ok(addr, "/api/v1/streams/cortex:tasks:low/entries").await;
    assert_eq!(page["entries"], json!([]));

    // Streams that are not the cortex ones, and bad ranges.
    for other in ["secrets", "cortex:events", "cortex:tasks:urgent"] {
        let (status, body) = api(
            addr,
            "GET",
            &format!("/api/v1/streams/{other}/entries"),
            None,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("unknown_stream")),
            "{other}"
        );
    }
    for bad in [
        "start=x",
        "last=0",
        "last=2&count=5",
        "start=1-0&since_ms=1",
        "since_ms=9&until_ms=1",
        "count=0",
        "from=1",
    ] {
        let (status, body) = api(addr, "GET", &format!("{stream}?{bad}"), None).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

/// `XINFO` replies as name → value maps.
async fn xinfo(
    conn: &mut MultiplexedConnection,
    args: &[&str],
) -> Vec<BTreeMap<String, redis::Value>> {
    let mut cmd = redis::cmd("XINFO");
    for a in args {
        cmd.arg(*a);
    }
    let value: redis::Value = cmd.query_async(conn).await.unwrap();
    let pairs = |v: redis::Value| -> BTreeMap<String, redis::Value> {
        match v {
            redis::Value::Array(items) => items
                .chunks(2)
                .map(|kv| {
                    (
                        redis::from_redis_value_ref::<String>(&kv[0]).unwrap(),
                        kv[1].clone(),
                    )
                })
                .collect(),
            other => panic!("unexpected {other:?}"),
        }
    };
    match value {
        redis::Value::Array(items) if args[0] == "STREAM" => {
            vec![pairs(redis::Value::Array(items))]
        }
        redis::Value::Array(items) => items.into_iter().map(pairs).collect(),
        other => panic!("unexpected {other:?}"),
    }
}

fn int(v: &redis::Value) -> Option<u64> {
    match v {
        redis::Value::Int(i) => u64::try_from(*i).ok(),
        redis::Value::Nil => None,
        other => redis::from_redis_value_ref::<String>(other)
            .ok()?
            .parse()
            .ok(),
    }
}

fn text(v: &redis::Value) -> String {
    redis::from_redis_value_ref(v).unwrap()
}

#[tokio::test]
async fn metrics_match_what_xinfo_reports() {
    let redis = RedisServer::start();
    // The lifecycle record off: its stream would be reported too, and it grows while the
    // relay works (lifecycle_record.rs tests it).
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--block-ms", "200", "--lifecycle", "off"],
    );
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    let publisher = Publisher::connect(&redis.url()).await.unwrap();

    // Tasks, two groups with consumers holding pending ones, a heartbeat, a letter,
    // and keys that are not cortex streams.
    for n in 0..6 {
        publisher
            .publish(
                "harold",
                TaskRequest::new("pink", Priority::ALL[n % 4], "coding"),
            )
            .await
            .unwrap();
    }
    publisher
        .heartbeat("pink", Default::default())
        .await
        .unwrap();
    add_letter(&mut conn, &letter("x", "pink", "harold", "high", "e", "{}")).await;
    for (group, consumer, count) in [("agent:pink", "pink-1", 1), ("agent:blue", "blue-1", 2)] {
        for p in Priority::ALL {
            let _: () = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(p.stream())
                .arg(group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await
                .unwrap();
        }
        let _: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(group)
            .arg(consumer)
            .arg("COUNT")
            .arg(count)
            .arg("STREAMS")
            .arg("cortex:tasks:critical")
            .arg("cortex:tasks:high")
            .arg(">")
            .arg(">")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let _: () = redis::cmd("SET")
        .arg("cortex:not-a-stream")
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap();
    xadd(&mut conn, "other:stream", &[("a", "b")]).await;

    // A consumer through the relay: its deliveries and acks feed the latency windows.
    let mut green = RelayConsumer::connect(&relay.ws_url(), "green", "green-1")
        .await
        .unwrap();
    publisher
        .publish(
            "harold",
            TaskRequest::new("green", Priority::High, "coding"),
        )
        .await
        .unwrap();
    let delivery = tokio::time::timeout(WAIT, green.next())
        .await
        .unwrap()
        .unwrap();
    green.ack(&delivery).await.unwrap();
    // green's group reads every entry of every task stream (acking the ones for other
    // agents); compare with XINFO only once it has caught up, or the two snapshots
    // would see it mid-way.
    let caught_up = async {
        loop {
            let mut busy = false;
            for stream in Priority::ALL.map(Priority::stream) {
                for group in xinfo(&mut conn, &["GROUPS", stream]).await {
                    if text(&group["name"]) == "agent:green" {
                        busy |= int(&group["pending"]) != Some(0) || int(&group["lag"]) != Some(0);
                    }
                }
            }
            if !busy {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(WAIT, caught_up)
        .await
        .expect("green's group catches up");

    let metrics = get_ok(addr, "/api/v1/messaging/metrics").await;
    let streams = metrics["streams"].as_array().unwrap();
    let names: Vec<&str> = streams
        .iter()
        .map(|s| s["stream"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cortex:heartbeats",
            "cortex:tasks:critical",
            "cortex:tasks:dlq",
            "cortex:tasks:high",
            "cortex:tasks:low",
            "cortex:tasks:normal"
        ]
    );
    for s in streams {
        let name = s["stream"].as_str().unwrap();
        let info = &xinfo(&mut conn, &["STREAM", name]).await[0];
        assert_eq!(s["length"].as_u64(), int(&info["length"]), "{name}");
        assert_eq!(
            s["last_generated_id"],
            text(&info["last-generated-id"]),
            "{name}"
        );
        assert_eq!(
            s["entries_added"].as_u64(),
            int(&info["entries-added"]),
            "{name}"
        );
        let first = match &info["first-entry"] {
            redis::Value::Array(e) => Some(text(&e[0])),
            _ => None,
        };
        assert_eq!(s["first_id"].as_str().map(str::to_owned), first, "{name}");
        let groups = xinfo(&mut conn, &["GROUPS", name]).await;
        let ours = s["groups"].as_array().unwrap();
        assert_eq!(ours.len(), groups.len(), "{name}");
        for (g, theirs) in ours.iter().zip(&groups) {
            assert_eq!(g["name"], text(&theirs["name"]));
            assert_eq!(
                g["pending"].as_u64(),
                int(&theirs["pending"]),
                "{name} {}",
                g["name"]
            );
            assert_eq!(
                g["lag"].as_u64(),
                int(&theirs["lag"]),
                "{name} {}",
                g["name"]
            );
            assert_eq!(g["entries_read"].as_u64(), int(&theirs["entries-read"]));
            assert_eq!(g["last_delivered_id"], text(&theirs["last-delivered-id"]));
            let consumers =
                xinfo(&mut conn, &["CONSUMERS", name, g["name"].as_str().unwrap()]).await;
            let ours_c = g["consumers"].as_array().unwrap();
            assert_eq!(ours_c.len(), consumers.len());
            for (c, theirs) in ours_c.iter().zip(&consumers) {
                assert_eq!(c["name"], text(&theirs["name"]));
                assert_eq!(c["pending"].as_u64(), int(&theirs["pending"]));
                assert!(c["idle_ms"].as_u64().is_some());
            }
        }
    }
    // The pending counts that were set up, to be sure the comparison saw them.
    let high = streams
        .iter()
        .find(|s| s["stream"] == "cortex:tasks:high")
        .unwrap();
    let blue = high["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "agent:blue")
        .unwrap();
    assert_eq!(blue["pending"], 2);
    assert_eq!(blue["consumers"][0]["name"], "blue-1");

    let latency = &metrics["latency"];
    assert!(
        latency["publish_to_delivery"]["count"].as_u64().unwrap() >= 1,
        "{latency}"
    );
    assert!(
        latency["delivery_to_ack"]["count"].as_u64().unwrap() >= 1,
        "{latency}"
    );
    assert!(latency["publish_to_delivery"]["p99_ms"].as_f64().unwrap() >= 0.0);
    let counters = &metrics["relay"];
    assert!(counters["connections"].as_u64().unwrap() >= 1, "{counters}");
    assert!(counters["deliveries"].as_u64().unwrap() >= 1);
    assert!(counters["acks"].as_u64().unwrap() >= 1, "{counters}");
    assert_eq!(metrics["dlq"]["length"], 1);

    // The same numbers in Prometheus text.
    let (status, text) = cortex_e2e::http::get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.contains("cortex_redis_up 1\n"), "{text}");
    for s in streams {
        let line = format!(
            "cortex_stream_length{{stream=\"{}\"}} {}\n",
            s["stream"].as_str().unwrap(),
            s["length"]
        );
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
    assert!(
        text.contains(
            "cortex_group_pending{stream=\"cortex:tasks:high\",group=\"agent:blue\"} 2\n"
        ),
        "{text}"
    );
    assert!(text.contains("cortex_relay_acks_total "), "{text}");
    assert!(
        text.contains("cortex_relay_publish_to_delivery_seconds{quantile=\"0.99\"} "),
        "{text}"
    );
    drop(green);
}

#[tokio::test]
async fn publish_writes_the_plans_task_fields() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    let (status, body) = api(
        addr,
        "POST",
        "/api/v1/tasks",
        Some(json!({"to": "pink", "priority": "high", "type": "coding",
                    "payload": {"description": "Fix auth bug"}, "from": "harold"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["stream"], "cortex:tasks:high");
    let tasks = entries(&mut conn, "cortex:tasks:high").await;
    assert_eq!(tasks.len(), 1);
    let (entry_id, fields) = &tasks[0];
    assert_eq!(body["entry_id"], entry_id.as_str());
    assert_eq!(body["task_id"], fields["id"].as_str());
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["created", "from", "id", "payload", "priority", "to", "type"]
    );
    assert_eq!(fields["from"], "harold");
    assert_eq!(fields["to"], "pink");
    assert_eq!(fields["type"], "coding");
    assert_eq!(fields["payload"], r#"{"description":"Fix auth bug"}"#);
    assert!(fields["created"].parse::<i64>().unwrap() > 1_704_556_800);

    // To every agent, with defaults.
    let (status, body) = api(
        addr,
        "POST",
        "/api/v1/tasks",
        Some(json!({"to": "*", "priority": "low", "type": "deploy"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let low = entries(&mut conn, "cortex:tasks:low").await;
    assert_eq!(low[0].1["to"], "");
    assert_eq!(low[0].1["from"], "operator");
    assert_eq!(low[0].1["payload"], "{}");

    for (bad, code) in [
        (
            json!({"to": "pink", "priority": "urgent", "type": "coding"}),
            "invalid_body",
        ),
        (
            json!({"to": "pi nk", "priority": "high", "type": "coding"}),
            "invalid_agent",
        ),
        (
            json!({"to": "pink", "priority": "high", "type": "two words"}),
            "invalid_type",
        ),
        (
            json!({"to": "pink", "priority": "high", "type": "coding", "payload": [1]}),
            "invalid_payload",
        ),
        (json!({"to": "pink", "priority": "high"}), "invalid_body"),
        (
            json!({"to": "pink", "priority": "high", "type": "coding", "extra": 1}),
            "invalid_body",
        ),
    ] {
        let (status, body) = api(addr, "POST", "/api/v1/tasks", Some(bad.clone())).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some(code)),
            "{bad}: {body}"
        );
    }
    let (status, _) = cortex_e2e::http::post(addr, "/api/v1/tasks", "{not json").await;
    assert_eq!(status, 400);
    assert_eq!(
        xlen(&mut conn, "cortex:tasks:high").await,
        1,
        "refused tasks are not written"
    );
}

/// One rule for a published task, over HTTP (`POST /api/v1/tasks`) and over the
/// WebSocket (`publish`): the same tasks refused with the same codes, nothing written
/// for them, the same ones taken (`*` for every agent on both); each way keeps its
/// documented default `from`.
#[tokio::test]
async fn publishing_has_one_rule_over_http_and_the_websocket() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    let mut ws = cortex_e2e::ws::WsClient::connect(&relay.ws_url()).await;
    let long = "x".repeat(65);
    for (to, from, task_type, code) in [
        ("pink", None, "two words", "invalid_type"),
        ("pink", None, "a.b", "invalid_type"),
        ("pink", None, "", "invalid_type"),
        ("pink", None, long.as_str(), "invalid_type"),
        ("pi nk", None, "coding", "invalid_agent"),
        ("pink", Some(""), "coding", "invalid_agent"),
        ("pink", Some("a/b"), "coding", "invalid_agent"),
    ] {
        let mut body = json!({"to": to, "priority": "high", "type": task_type});
        let mut frame = json!({"type": "publish", "to": to, "priority": "high",
                               "task_type": task_type});
        if let Some(from) = from {
            body["from"] = json!(from);
            frame["from"] = json!(from);
        }
        let (status, answer) = api(addr, "POST", "/api/v1/tasks", Some(body.clone())).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some(code)),
            "{body}: {answer}"
        );
        ws.send(frame.clone()).await;
        let reply = ws.next_of_type("error").await;
        assert_eq!(reply["code"], code, "{frame}: {reply}");
        assert_eq!(reply["message"], answer["message"], "{frame}");
    }
    assert_eq!(
        xlen(&mut conn, "cortex:tasks:high").await,
        0,
        "refused tasks are written"
    );

    // Every agent, `*` or empty, both ways; HTTP's default sender is `operator`, the
    // WebSocket's `relay`.
    for to in ["*", ""] {
        let (status, answer) = api(
            addr,
            "POST",
            "/api/v1/tasks",
            Some(json!({"to": to, "priority": "low", "type": "deploy"})),
        )
        .await;
        assert_eq!(status, 201, "{answer}");
        ws.send(json!({"type": "publish", "to": to, "priority": "low", "task_type": "deploy"}))
            .await;
        let published = ws.next_of_type("published").await;
        assert_eq!(published["stream"], "cortex:tasks:low");
    }
    let low = entries(&mut conn, "cortex:tasks:low").await;
    let senders: Vec<(&str, &str)> = low
        .iter()
        .map(|(_, f)| (f["to"].as_str(), f["from"].as_str()))
        .collect();
    assert_eq!(
        senders,
        [
            ("", "operator"),
            ("", "relay"),
            ("", "operator"),
            ("", "relay")
        ]
    );
}
