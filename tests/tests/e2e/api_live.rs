//! Live notifications and agents end to end: `presence` frames as an agent goes
//! online, stale and offline; `/api/v1/agents`; `dlq` frames reaching a watcher on
//! another relay when letters are added, retried and deleted.

use crate::api_common;

use api_common::*;
use cortex_agent::{Publisher, RelayConsumer, TaskRequest};
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use cortex_e2e::ws::WsClient;
use cortex_shared::Priority;
use serde_json::{json, Value};

fn presence_of<'a>(agent: &'a str, presence: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |f: &Value| f["type"] == "presence" && f["agent"] == agent && f["presence"] == presence
}

/// The seed a relay starts with covers the heartbeats up to where its reader starts,
/// and no further: a heartbeat added between the relay resolving its start and its
/// tracker seeding (a CI flake before the reader did both) is announced, not swallowed.
#[tokio::test]
async fn presence_seed_stops_where_the_reader_starts() {
    use cortex_relay::engine::hub::Hub;
    use cortex_relay::engine::presence::{PresenceSettings, PresenceTracker};
    use std::time::Duration;

    let redis = RedisServer::start();
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let busy = json!({"state": "busy"}).as_object().unwrap().clone();
    let start = publisher.heartbeat("old", busy.clone()).await.unwrap();
    let after = publisher.heartbeat("pink", busy).await.unwrap();

    let hub = Hub::new(64);
    let mut feed = hub.feed();
    feed.watch(&cortex_shared::SubscribeTarget::All);
    let tracker = PresenceTracker::new(
        PresenceSettings {
            stale_after: Duration::from_secs(60),
            offline_after: Duration::from_secs(120),
        },
        hub,
    );
    tracker
        .seed_from(&mut redis.connection().await, &start)
        .await
        .unwrap();
    assert!(feed.try_recv().is_none(), "a seed announces nothing");
    let seeded = tracker.snapshot();
    assert!(seeded.contains_key("old"), "{seeded:?}");
    assert!(
        !seeded.contains_key("pink"),
        "seeded past the start: {seeded:?}"
    );

    // The reader then reads pink's heartbeat: online, announced.
    let at: cortex_shared::EntryId = after.parse().unwrap();
    tracker.observe("pink", at.ms);
    let event = feed.try_recv().expect("pink's presence announced");
    let frame: Value = serde_json::from_str(event.frame.as_str()).unwrap();
    assert!(presence_of("pink", "online")(&frame), "{frame}");
}

#[tokio::test]
async fn presence_moves_online_stale_offline_and_watchers_are_told() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &[
            "--presence-stale-ms",
            "600",
            "--presence-offline-ms",
            "1500",
            "--block-ms",
            "200",
        ],
    );
    let addr = relay.addr();
    // A watcher of another agent hears it too: presence is for every watcher.
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.subscribe("harold").await;
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    publisher
        .heartbeat(
            "pink",
            json!({"state": "busy"}).as_object().unwrap().clone(),
        )
        .await
        .unwrap();

    let online = frame_where(&mut ws, "presence online", presence_of("pink", "online")).await;
    let at = online["last_heartbeat_ms"].as_u64().unwrap();
    let agents = get_ok(addr, "/api/v1/agents").await;
    assert_eq!(agents["stale_after_ms"], 600);
    assert_eq!(agents["offline_after_ms"], 1500);
    let pink = &agents["agents"][0];
    assert_eq!(pink["name"], "pink");
    assert_eq!(pink["last_heartbeat_ms"], at);
    assert_eq!(pink["status"], json!({"state": "busy"}));
    assert!(pink["last_heartbeat_time"].as_i64().unwrap() > 1_704_556_800);

    let stale = frame_where(&mut ws, "presence stale", presence_of("pink", "stale")).await;
    assert_eq!(stale["last_heartbeat_ms"], at);
    frame_where(&mut ws, "presence offline", presence_of("pink", "offline")).await;
    let agents = get_ok(addr, "/api/v1/agents").await;
    assert_eq!(agents["agents"][0]["presence"], "offline");

    // Heard from again: online at once.
    publisher
        .heartbeat("pink", Default::default())
        .await
        .unwrap();
    frame_where(
        &mut ws,
        "presence online again",
        presence_of("pink", "online"),
    )
    .await;
    assert_eq!(
        get_ok(addr, "/api/v1/agents").await["agents"][0]["presence"],
        "online"
    );
}

#[tokio::test]
async fn agents_show_pending_consumers_and_tasks_stuck_with_a_dead_consumer() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--block-ms", "100", "--consumer-dead-after-ms", "1500"],
    );
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    let publisher = Publisher::connect(&redis.url()).await.unwrap();

    // blue consumes through the relay (a live consumer) and holds one task.
    let mut blue = RelayConsumer::connect(&relay.ws_url(), "blue", "blue-1")
        .await
        .unwrap();
    publisher
        .publish("harold", TaskRequest::new("blue", Priority::High, "coding"))
        .await
        .unwrap();
    let _held = tokio::time::timeout(WAIT, blue.next())
        .await
        .unwrap()
        .unwrap();
    // pink is online, but its one task is held by a consumer that then went away.
    publisher
        .heartbeat("pink", Default::default())
        .await
        .unwrap();
    publisher
        .publish("harold", TaskRequest::new("pink", Priority::Low, "coding"))
        .await
        .unwrap();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("cortex:tasks:low")
        .arg("agent:pink")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("agent:pink")
        .arg("ghost")
        .arg("STREAMS")
        .arg("cortex:tasks:low")
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();

    let by_name = |agents: &Value, name: &str| -> Value {
        agents["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    // blue's group reads every task stream and acks what is not for blue (pink's task
    // too): wait until that has settled before reading the numbers.
    let settled = async {
        let mut poll = tokio::time::interval(std::time::Duration::from_millis(20));
        loop {
            poll.tick().await;
            let agents = get_ok(addr, "/api/v1/agents").await;
            if by_name(&agents, "blue")["pending"] == 1 && by_name(&agents, "pink")["pending"] == 1
            {
                return agents;
            }
        }
    };
    let agents = tokio::time::timeout(WAIT, settled)
        .await
        .expect("pending counts settle");
    let names: Vec<&str> = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["blue", "pink"]);
    let b = by_name(&agents, "blue");
    assert_eq!(b["pending"], 1);
    assert_eq!(b["consumer_alive"], true);
    assert_eq!(b["consumers"][0]["name"], "blue-1");
    assert_eq!(b["presence"], "offline", "no heartbeat ever");
    assert_eq!(b["last_heartbeat_ms"], Value::Null);
    let p = by_name(&agents, "pink");
    assert_eq!(p["presence"], "online");
    assert_eq!(p["pending"], 1);

    // Once the ghost has been idle past the threshold, pink is stuck.
    let stuck = async {
        let mut poll = tokio::time::interval(std::time::Duration::from_millis(50));
        loop {
            poll.tick().await;
            let agents = get_ok(addr, "/api/v1/agents").await;
            if by_name(&agents, "pink")["stuck"] == true {
                return agents;
            }
        }
    };
    let agents = tokio::time::timeout(WAIT, stuck)
        .await
        .expect("pink stuck within the timeout");
    let p = by_name(&agents, "pink");
    assert_eq!(p["consumer_alive"], false);
    assert_eq!(p["pending_on_dead_consumers"], 1);
    assert_eq!(
        p["consumers"][0],
        json!({"name": "ghost", "pending": 1, "idle_ms": p["consumers"][0]["idle_ms"], "alive": false})
    );
    let b = by_name(&agents, "blue");
    assert_eq!(b["stuck"], false, "blue is not online");
    // blue's consumer, blocked in reads with nothing new, stays alive on every Redis:
    // 7.2 and later count each read attempt in XINFO's idle time; before 7.2 only reads
    // that return entries do, and the relay's alive key says it. There, wait until
    // XINFO alone would call it dead, then check it is not.
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .unwrap();
    let version: Vec<u32> = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .unwrap()
        .trim()
        .split('.')
        .map(|n| n.parse().unwrap())
        .collect();
    if version < vec![7, 2] {
        let xinfo_idle = async {
            let mut poll = tokio::time::interval(std::time::Duration::from_millis(50));
            loop {
                poll.tick().await;
                let mut idle = u64::MAX;
                for stream in [
                    "cortex:tasks:critical",
                    "cortex:tasks:high",
                    "cortex:tasks:normal",
                    "cortex:tasks:low",
                ] {
                    let consumers: Vec<std::collections::HashMap<String, redis::Value>> =
                        redis::cmd("XINFO")
                            .arg("CONSUMERS")
                            .arg(stream)
                            .arg("agent:blue")
                            .query_async(&mut conn)
                            .await
                            .unwrap();
                    for c in consumers {
                        if let Some(redis::Value::Int(ms)) = c.get("idle") {
                            idle = idle.min(*ms as u64);
                        }
                    }
                }
                if idle != u64::MAX && idle > 1500 {
                    return;
                }
            }
        };
        tokio::time::timeout(WAIT, xinfo_idle)
            .await
            .expect("XINFO idle of blue-1 passes the threshold");
    }
    let agents = get_ok(addr, "/api/v1/agents").await;
    let b = by_name(&agents, "blue");
    assert_eq!(b["consumer_alive"], true, "{b}");
    assert_eq!(b["consumers"][0]["alive"], true);
    assert!(b["consumers"][0]["idle_ms"].as_u64().unwrap() < 1500, "{b}");
    drop(blue);
}

#[tokio::test]
async fn dlq_changes_reach_a_watcher_on_another_relay() {
    let redis = RedisServer::start();
    let a = Relay::start(&redis.url());
    let b = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    let mut ws = WsClient::connect(&b.ws_url()).await;
    ws.subscribe("pink").await;
    let dlq = |action: &'static str| move |f: &Value| f["type"] == "dlq" && f["action"] == action;

    // Added (by anyone writing the DLQ): the letter comes along.
    let first = add_letter(
        &mut conn,
        &letter("t-1", "harold", "blue", "high", "timeout", "{}"),
    )
    .await;
    let added = frame_where(&mut ws, "dlq added", dlq("added")).await;
    assert_eq!(added["dlq_ids"], json!([first]));
    assert_eq!(added["letter"]["original_id"], "t-1");
    assert_eq!(added["letter"]["error"], "timeout");

    // Retried and deleted through relay A.
    let (status, body) = api(
        a.addr(),
        "POST",
        &format!("/api/v1/messaging/dlq/retry/{first}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let retried = frame_where(&mut ws, "dlq retried", dlq("retried")).await;
    assert_eq!(retried["dlq_ids"], json!([first]));
    let second = add_letter(
        &mut conn,
        &letter("t-2", "pink", "blue", "high", "timeout", "{}"),
    )
    .await;
    frame_where(&mut ws, "dlq added", dlq("added")).await;
    let (status, _) = api(
        a.addr(),
        "DELETE",
        &format!("/api/v1/messaging/dlq/{second}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let deleted = frame_where(&mut ws, "dlq deleted", dlq("deleted")).await;
    assert_eq!(deleted["dlq_ids"], json!([second]));

    // A bulk delete of 700 letters: every id is announced, in frames of at most 500.
    let letters: Vec<_> = (0..700)
        .map(|n| letter(&format!("b-{n}"), "pink", "x", "low", "e", "{}"))
        .collect();
    let ids = add_letters(&mut conn, &letters).await;
    let (status, result) = api(
        a.addr(),
        "POST",
        "/api/v1/messaging/dlq/delete",
        Some(json!({"filter": {}})),
    )
    .await;
    assert_eq!(
        (status, result["acted"].as_u64()),
        (200, Some(700)),
        "{result}"
    );
    let mut announced = std::collections::BTreeSet::new();
    while announced.len() < ids.len() {
        let frame = frame_where(&mut ws, "dlq deleted (bulk)", dlq("deleted")).await;
        let batch = frame["dlq_ids"].as_array().unwrap();
        assert!(batch.len() <= 500);
        announced.extend(batch.iter().map(|i| i.as_str().unwrap().to_owned()));
    }
    assert_eq!(announced, ids.into_iter().collect());
}
