//! Watch resume (README, "Delivery"), end to end: a watcher that loses its connection resumes
//! from the last entry it saw on each stream, is shown nothing twice, and is told when
//! Redis trimmed entries it missed. Real redis-server, the real relay binary, a
//! WebSocket client, and the dashboard in headless Chromium.

use cortex_e2e::browser::{count, open_and_watch, wait_for, LOAD};
use cortex_e2e::fixtures::{heartbeat, task, CRITICAL, HEARTBEATS, HIGH, LOW, NORMAL};
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::{assert_dashboard_built, Relay};
use cortex_e2e::stack;
use cortex_e2e::ws::WsClient;
use fantoccini::{Client, Locator};
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The stream a `task` or `heartbeat` frame came from.
fn stream_of(frame: &Value) -> &str {
    match frame["type"].as_str() {
        Some("heartbeat") => HEARTBEATS,
        _ => frame["stream"]
            .as_str()
            .expect("a task frame names its stream"),
    }
}

/// A compact name for a `task` (its task id) or `heartbeat` frame (`hb:<entry id>`).
fn name(frame: &Value) -> String {
    match frame["type"].as_str() {
        Some("task") => frame["data"]["id"].as_str().unwrap().to_owned(),
        Some("heartbeat") => format!("hb:{}", frame["entry_id"].as_str().unwrap()),
        _ => panic!("not an entry frame: {frame}"),
    }
}

/// The next frame this test is about, skipping the ones other features send on the
/// same connection (e.g. `presence`).
async fn next(client: &mut WsClient) -> Value {
    loop {
        let frame = client.next().await;
        let ours = ["task", "heartbeat", "gap", "subscribed", "error", "pong"];
        if ours.iter().any(|t| frame["type"] == *t) {
            return frame;
        }
    }
}

/// The next frame this test is about, which must be of `frame_type`.
async fn expect(client: &mut WsClient, frame_type: &str) -> Value {
    let frame = next(client).await;
    assert_eq!(frame["type"], frame_type, "unexpected frame {frame}");
    frame
}

/// Sends `subscribe` and returns every frame up to and including `subscribed`.
async fn subscribe(client: &mut WsClient, frame: Value) -> Vec<Value> {
    client.send(frame).await;
    let mut frames = Vec::new();
    loop {
        let frame = next(client).await;
        let done = frame["type"] == "subscribed";
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

/// Entry frames by stream, in the order received (ignoring `subscribed`).
#[derive(Debug, Default)]
struct Seen {
    by_stream: BTreeMap<String, Vec<String>>,
    /// The newest entry id per stream, as a client would keep it for `resume`.
    last_ids: BTreeMap<String, String>,
}

impl Seen {
    fn add(&mut self, frame: &Value) {
        match frame["type"].as_str() {
            Some("task" | "heartbeat") => {
                let stream = stream_of(frame).to_owned();
                self.by_stream
                    .entry(stream.clone())
                    .or_default()
                    .push(name(frame));
                self.last_ids
                    .insert(stream, frame["entry_id"].as_str().unwrap().to_owned());
            }
            Some("subscribed") => {}
            _ => panic!("unexpected frame {frame}"),
        }
    }

    fn names(&self, stream: &str) -> Vec<&str> {
        self.by_stream
            .get(stream)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    fn count(&self) -> usize {
        self.by_stream.values().map(Vec::len).sum()
    }
}

/// Receives frames until `count` entry frames have arrived in all.
async fn receive(client: &mut WsClient, seen: &mut Seen, count: usize) {
    while seen.count() < count {
        seen.add(&next(client).await);
    }
}

/// `XTRIM stream MAXLEN 0`: every entry of `stream` is gone.
async fn trim_all(conn: &mut MultiplexedConnection, stream: &str) {
    let _: i64 = redis::cmd("XTRIM")
        .arg(stream)
        .arg("MAXLEN")
        .arg(0)
        .query_async(conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_watcher_that_reconnects_gets_every_missed_entry_once_in_order_then_live_ones() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;

    // First connection: live entries on three streams.
    let mut first = WsClient::connect(&relay.ws_url()).await;
    subscribe(&mut first, json!({"type": "subscribe", "agent": "pink"})).await;
    task(&mut conn, HIGH, "a1", "pink").await;
    task(&mut conn, NORMAL, "a2", "").await;
    task(&mut conn, HIGH, "a3", "harold").await;
    heartbeat(&mut conn, "pink", "1704556800").await;
    let mut before = Seen::default();
    receive(&mut first, &mut before, 3).await;
    assert_eq!(before.names(HIGH), ["a1"]);
    assert_eq!(before.names(NORMAL), ["a2"]);
    assert_eq!(before.names(HEARTBEATS).len(), 1);
    drop(first);

    // Missed while disconnected; `low` is a stream this watcher has seen nothing on.
    task(&mut conn, HIGH, "b1", "pink").await;
    task(&mut conn, HIGH, "b2", "harold").await;
    task(&mut conn, NORMAL, "b3", "").await;
    task(&mut conn, HIGH, "b4", "pink").await;
    task(&mut conn, LOW, "b5", "pink").await;
    let hb2 = heartbeat(&mut conn, "pink", "1704556800").await;
    heartbeat(&mut conn, "harold", "1704556800").await;

    // Second connection resumes; more entries race with its resume read.
    let mut second = WsClient::connect(&relay.ws_url()).await;
    second
        .send(
            json!({"type": "subscribe", "agent": "pink", "resume": before.last_ids,
                     "history": 10}),
        )
        .await;
    task(&mut conn, HIGH, "c1", "pink").await;
    task(&mut conn, NORMAL, "c2", "").await;
    task(&mut conn, NORMAL, "c3", "harold").await;

    let mut after = Seen::default();
    let mut subscribed = false;
    let mut first_frame = None;
    while after.count() < 7 || !subscribed {
        let frame = next(&mut second).await;
        subscribed |= frame["type"] == "subscribed";
        if first_frame.is_none() && frame["type"] == "task" {
            first_frame = Some(frame.clone());
        }
        after.add(&frame);
    }
    // A sentinel: anything sent twice would come before it (one stream, in order).
    let sentinel = task(&mut conn, HIGH, "sentinel", "pink").await;
    let frame = expect(&mut second, "task").await;
    assert_eq!(frame["entry_id"], sentinel.as_str(), "{frame}");
    after.add(&frame);

    assert_eq!(after.names(HIGH), ["b1", "b4", "c1", "sentinel"]);
    assert_eq!(after.names(NORMAL), ["b3", "c2"]);
    assert_eq!(after.names(LOW), ["b5"], "history for a stream never seen");
    assert_eq!(after.names(HEARTBEATS), [format!("hb:{hb2}")]);
    assert!(after.names(CRITICAL).is_empty());
    // Resumed frames are the live reader's, field for field.
    let b1 = first_frame.unwrap();
    let expected = json!({
        "type": "task",
        "data": {"id": b1["data"]["id"], "from": "harold", "to": "pink",
                 "priority": b1["data"]["priority"], "type": "coding",
                 "payload": {"description": "Fix auth bug"}, "created": 1704556800},
        "stream": b1["stream"], "entry_id": b1["entry_id"],
    });
    assert_eq!(b1, expected);
}

#[tokio::test]
async fn history_sends_the_newest_entries_the_agent_sees_oldest_first_then_live_ones() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    for (id, to) in [
        ("p1", "pink"),
        ("x1", "harold"),
        ("p2", "pink"),
        ("all1", ""),
        ("p3", "pink"),
        ("x2", "harold"),
        ("p4", "pink"),
        ("all2", ""),
        ("x3", "harold"),
    ] {
        task(&mut conn, HIGH, id, to).await;
    }

    let mut client = WsClient::connect(&relay.ws_url()).await;
    let frames = subscribe(
        &mut client,
        json!({"type": "subscribe", "agent": "pink", "history": 3}),
    )
    .await;
    let names: Vec<String> = frames[..frames.len() - 1].iter().map(name).collect();
    assert_eq!(names, ["p3", "p4", "all2"]);
    assert_eq!(
        frames.last().unwrap(),
        &json!({"type": "subscribed", "agent": "pink", "status": "ok"})
    );

    task(&mut conn, HIGH, "p5", "pink").await;
    assert_eq!(name(&expect(&mut client, "task").await), "p5");
}

#[tokio::test]
async fn entries_trimmed_before_a_resume_make_a_gap_frame() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    let seen = task(&mut conn, HIGH, "e1", "pink").await;
    task(&mut conn, HIGH, "e2", "pink").await;
    task(&mut conn, HIGH, "e3", "pink").await;
    trim_all(&mut conn, HIGH).await;
    let e4 = task(&mut conn, HIGH, "e4", "pink").await;
    let e5 = task(&mut conn, HIGH, "e5", "pink").await;

    let mut client = WsClient::connect(&relay.ws_url()).await;
    let frames = subscribe(
        &mut client,
        json!({"type": "subscribe", "agent": "pink", "resume": {HIGH: seen}}),
    )
    .await;
    assert_eq!(
        frames[0],
        json!({"type": "gap", "stream": HIGH, "after": seen, "resumed_from": e4})
    );
    let names: Vec<String> = frames[1..frames.len() - 1].iter().map(name).collect();
    assert_eq!(names, ["e4", "e5"]);
    task(&mut conn, HIGH, "e6", "pink").await;
    assert_eq!(name(&expect(&mut client, "task").await), "e6");

    // An entry deleted after the client's position (XDEL) is a gap too.
    let _: i64 = redis::cmd("XDEL")
        .arg(HIGH)
        .arg(&e5)
        .query_async(&mut conn)
        .await
        .unwrap();
    let e7 = task(&mut conn, HIGH, "e7", "pink").await;
    let mut client = WsClient::connect(&relay.ws_url()).await;
    let frames = subscribe(
        &mut client,
        json!({"type": "subscribe", "agent": "pink", "resume": {HIGH: e4}}),
    )
    .await;
    let e6 = &frames[1]["entry_id"];
    assert_eq!(
        frames[0],
        json!({"type": "gap", "stream": HIGH, "after": e4, "resumed_from": e6})
    );
    let names: Vec<String> = frames[1..frames.len() - 1].iter().map(name).collect();
    assert_eq!(names, ["e6", "e7"]);

    // Resuming at the newest entry of a trimmed stream: nothing missed, no gap.
    let mut client = WsClient::connect(&relay.ws_url()).await;
    let frames = subscribe(
        &mut client,
        json!({"type": "subscribe", "agent": "pink", "resume": {HIGH: e7}}),
    )
    .await;
    assert_eq!(
        frames,
        [json!({"type": "subscribed", "agent": "pink", "status": "ok"})]
    );
}

#[tokio::test]
async fn a_malformed_resume_gets_an_error_and_the_connection_keeps_working() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    let mut client = WsClient::connect(&relay.ws_url()).await;

    // Not a map at all: the frame is refused.
    client
        .send(json!({"type": "subscribe", "agent": "pink", "resume": 5}))
        .await;
    assert_eq!(expect(&mut client, "error").await["code"], "bad_frame");

    // Unknown stream and unparsable id: errors, and the subscription still happens.
    let frames = subscribe(
        &mut client,
        json!({"type": "subscribe", "agent": "pink",
               "resume": {"cortex:tasks:urgent": "1-0", "cortex:tasks:dlq": "1-0",
                          HIGH: "banana"}}),
    )
    .await;
    assert_eq!(frames.len(), 3, "{frames:?}");
    for error in &frames[..2] {
        assert_eq!(error["type"], "error");
        assert_eq!(error["code"], "bad_frame");
    }
    let messages = format!("{} {}", frames[0]["message"], frames[1]["message"]);
    for needle in ["cortex:tasks:urgent", "cortex:tasks:dlq", "banana"] {
        assert!(messages.contains(needle), "{needle} in {messages}");
    }
    assert_eq!(frames[2]["type"], "subscribed");

    client.send(json!({"type": "ping"})).await;
    assert_eq!(next(&mut client).await, json!({"type": "pong"}));
    task(&mut conn, HIGH, "still-works", "pink").await;
    assert_eq!(name(&expect(&mut client, "task").await), "still-works");
}

/// Opens the dashboard at `relay` and watches `agent`.
async fn open_dashboard(page: &Client, relay: &Relay, agent: &str) {
    assert_dashboard_built();
    open_and_watch(page, &relay.http_url(), agent).await;
}

/// Kills the relay and waits until the dashboard notices.
async fn kill_relay(page: &Client, relay: &mut Relay) {
    relay.process().kill();
    let reconnecting = r#"#conn-state[data-state="reconnecting"]"#;
    let what = "the dashboard notices the relay is gone";
    wait_for(page, reconnecting, LOAD, what).await;
}

#[tokio::test]
async fn the_dashboard_shows_tasks_published_while_the_relay_was_down_exactly_once() {
    let (redis, mut relay, browser) = stack::start(Relay::start).await;
    let mut conn = redis.connection().await;
    task(&mut conn, HIGH, "before-open", "pink").await;
    let page = &browser.client;
    open_dashboard(page, &relay, "pink").await;
    wait_for(
        page,
        r#"li.task[data-task-id="before-open"]"#,
        LOAD,
        "history shows a task published before the dashboard opened",
    )
    .await;
    task(&mut conn, HIGH, "live-1", "pink").await;
    wait_for(page, r#"li.task[data-task-id="live-1"]"#, LOAD, "live task").await;

    kill_relay(page, &mut relay).await;
    // Published while the relay is down: one on a stream the dashboard has seen, one
    // on a stream it has not.
    task(&mut conn, HIGH, "while-down-1", "pink").await;
    task(&mut conn, NORMAL, "while-down-2", "").await;
    task(&mut conn, HIGH, "not-for-pink", "harold").await;
    relay.restart();

    for id in ["while-down-1", "while-down-2"] {
        wait_for(
            page,
            &format!(r#"#task-feed li.task[data-task-id="{id}"]"#),
            LOAD,
            "a task published while the relay was down appears without a reload",
        )
        .await;
    }
    // Then a live one: anything shown twice would have arrived before it.
    task(&mut conn, HIGH, "after-restart", "pink").await;
    wait_for(
        page,
        r#"li.task[data-task-id="after-restart"]"#,
        LOAD,
        "live tasks flow again",
    )
    .await;
    for id in [
        "before-open",
        "live-1",
        "while-down-1",
        "while-down-2",
        "after-restart",
    ] {
        let css = format!(r#"#task-feed li.task[data-task-id="{id}"]"#);
        assert_eq!(count(page, &css).await, 1, "{id} is shown exactly once");
    }
    assert_eq!(count(page, "#task-feed li.task").await, 5);
    assert_eq!(count(page, "#task-feed li.gap").await, 0, "no false gap");
    browser.screenshot("resume-after-restart").await;
    browser.close().await;
}

#[tokio::test]
async fn the_dashboard_shows_a_gap_when_missed_entries_were_trimmed() {
    let (redis, mut relay, browser) = stack::start(Relay::start).await;
    let mut conn = redis.connection().await;
    let page = &browser.client;
    open_dashboard(page, &relay, "pink").await;
    task(&mut conn, HIGH, "seen", "pink").await;
    wait_for(page, r#"li.task[data-task-id="seen"]"#, LOAD, "live task").await;

    kill_relay(page, &mut relay).await;
    task(&mut conn, HIGH, "trimmed", "pink").await;
    trim_all(&mut conn, HIGH).await;
    let survivor = task(&mut conn, HIGH, "survivor", "pink").await;
    relay.restart();

    wait_for(
        page,
        r#"li.task[data-task-id="survivor"]"#,
        LOAD,
        "the entry after the gap",
    )
    .await;
    let gap = page
        .find(Locator::Css(&format!(
            r#"#task-feed li.gap[data-stream="{HIGH}"]"#
        )))
        .await
        .expect("the gap is shown");
    assert_eq!(
        gap.attr("data-resumed-from").await.unwrap().as_deref(),
        Some(survivor.as_str())
    );
    assert!(gap.text().await.unwrap().contains("trimmed"));
    assert_eq!(count(page, r#"li.task[data-task-id="trimmed"]"#).await, 0);
    assert_eq!(count(page, "#task-feed li.gap").await, 1);
    browser.screenshot("resume-gap").await;
    browser.close().await;
}
