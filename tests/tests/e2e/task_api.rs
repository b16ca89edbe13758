//! The task API end to end (real redis-server, the relay binary): where a task is for
//! each agent, derived from the consumer groups whoever reads them (an agent doing
//! XREADGROUP/XACK itself), and from lifecycle records written here as the relay
//! writes them (`RPUSH cortex:task:<id>`, `SADD cortex:trace:<id>`); lists by state,
//! traces, and bad input.

use cortex_e2e::fixtures::{self, CRITICAL, HIGH, LOW, NORMAL};
use cortex_e2e::redis::{xadd_at, RedisServer};
use cortex_e2e::relay::Relay;
use cortex_shared::lifecycle::{LifecycleEvent, LifecycleRecord};
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};

/// `GET path`: the status and the JSON body.
async fn get(addr: &str, path: &str) -> (u16, Value) {
    cortex_e2e::http::json(addr, "GET", path, None).await
}

/// `GET path`, which must answer 200.
async fn get_ok(addr: &str, path: &str) -> Value {
    let (status, body) = get(addr, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// `GET path`, which must answer `status` with `code`.
async fn get_err(addr: &str, path: &str, status: u16, code: &str) {
    let (got, body) = get(addr, path).await;
    assert_eq!(
        (got, body["code"].as_str()),
        (status, Some(code)),
        "GET {path}: {body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// XADDs task `id` for `to` (`""`: every agent) at entry `at` of `stream`, with extra
/// fields; returns the entry id.
async fn add(
    conn: &mut MultiplexedConnection,
    stream: &str,
    at: &str,
    id: &str,
    to: &str,
    extra: &[(&str, &str)],
) -> String {
    let priority = stream.rsplit(':').next().unwrap();
    let mut fields = vec![
        ("id", id),
        ("from", "harold"),
        ("to", to),
        ("priority", priority),
        ("type", "coding"),
        ("payload", fixtures::FIX_AUTH_BUG),
        ("created", "1704556800"),
    ];
    fields.extend_from_slice(extra);
    xadd_at(conn, stream, at, &fields).await
}

async fn create_group(conn: &mut MultiplexedConnection, stream: &str, group: &str) {
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await
        .unwrap();
}

/// XREADGROUP as an agent reading Redis itself: up to `count` new entries of `stream`
/// for `consumer` of `group`; their ids.
async fn read_group(
    conn: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
    consumer: &str,
    count: usize,
) -> Vec<String> {
    let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(conn)
        .await
        .unwrap();
    reply
        .keys
        .into_iter()
        .flat_map(|k| k.ids)
        .map(|e| e.id)
        .collect()
}

async fn ack(conn: &mut MultiplexedConnection, stream: &str, group: &str, id: &str) {
    let acked: u64 = redis::cmd("XACK")
        .arg(stream)
        .arg(group)
        .arg(id)
        .query_async(conn)
        .await
        .unwrap();
    assert_eq!(acked, 1);
}

/// Makes `id` look idle for an hour (`XCLAIM … IDLE`), as a consumer that died with it.
async fn make_idle(conn: &mut MultiplexedConnection, stream: &str, group: &str, id: &str) {
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(stream)
        .arg(group)
        .arg("pink-go")
        .arg(0)
        .arg(id)
        .arg("IDLE")
        .arg(3_600_000)
        .arg("JUSTID")
        .query_async(conn)
        .await
        .unwrap();
}

/// A lifecycle record as the relay writes it, now.
fn record(
    event: LifecycleEvent,
    task_id: &str,
    stream: &str,
    entry_id: &str,
    agent: Option<&str>,
    detail: Value,
) -> LifecycleRecord {
    LifecycleRecord {
        // Written after the entry it is about, as the relay writes it.
        at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
        event,
        task_id: task_id.into(),
        stream: stream.into(),
        entry_id: entry_id.into(),
        agent: agent.map(str::to_owned),
        consumer: agent.map(|a| format!("{a}-1")),
        detail: detail.as_object().cloned().unwrap_or_default(),
    }
}

/// RPUSHes `records` to the task's list, as the relay does.
async fn push(conn: &mut MultiplexedConnection, records: &[LifecycleRecord]) {
    for r in records {
        let text = serde_json::to_string(r).unwrap();
        let _: u64 = redis::cmd("RPUSH")
            .arg(format!("cortex:task:{}", r.task_id))
            .arg(text)
            .query_async(conn)
            .await
            .unwrap();
    }
}

/// The state entry of `agent` in a task reply.
fn state_of<'a>(reply: &'a Value, agent: &str) -> &'a Value {
    reply["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == agent)
        .unwrap_or_else(|| panic!("no {agent} in {reply}"))
}

fn events(reply: &Value) -> Vec<String> {
    reply["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_agent_reading_redis_itself_is_waiting_then_in_progress_then_done() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;

    // Before pink has a group: waiting.
    let entry = add(&mut conn, HIGH, "*", "go-1", "pink", &[]).await;
    let by_entry = format!("/api/v1/tasks/by-entry/{HIGH}/{entry}");
    let reply = get_ok(addr, &by_entry).await;
    assert_eq!(reply["task"]["id"], "go-1");
    assert_eq!(reply["task"]["stream"], HIGH);
    assert_eq!(reply["task"]["entry_id"], entry.as_str());
    assert_eq!(
        reply["task"]["payload"],
        json!({"description": "Fix auth bug"})
    );
    assert_eq!(reply["agents"].as_array().unwrap().len(), 1, "{reply}");
    let pink = state_of(&reply, "pink");
    assert_eq!(pink["state"], "waiting");
    assert_eq!(
        (pink["deliveries"].as_u64(), &pink["consumer"]),
        (Some(0), &Value::Null)
    );
    // No records: the timeline is its publication, from the entry id's time.
    assert_eq!(events(&reply), ["published"]);
    assert_eq!(reply["timeline"][0]["detail"]["from_entry_id"], true);
    let entry_ms: u64 = entry.split('-').next().unwrap().parse().unwrap();
    assert_eq!(reply["timeline"][0]["at_ms"].as_u64(), Some(entry_ms));

    // Its group exists, nothing read yet: still waiting.
    create_group(&mut conn, HIGH, "agent:pink").await;
    let reply = get_ok(addr, &by_entry).await;
    assert_eq!(state_of(&reply, "pink")["state"], "waiting");

    // Read by a consumer that is not the relay's: in progress on it.
    let read = read_group(&mut conn, HIGH, "agent:pink", "pink-go", 10).await;
    assert_eq!(read, [entry.as_str()]);
    let reply = get_ok(addr, &by_entry).await;
    let pink = state_of(&reply, "pink");
    assert_eq!(pink["state"], "in_progress", "{reply}");
    assert_eq!(pink["consumer"], "pink-go");
    assert_eq!(pink["deliveries"], 1);
    let since = pink["since_ms"].as_u64().unwrap();
    assert!(since >= entry_ms, "{since} {entry_ms}");

    // Found by its id too, without records (the scan of the newest entries).
    let by_id = get_ok(addr, "/api/v1/tasks/go-1").await;
    assert_eq!(by_id["task"]["entry_id"], entry.as_str());
    assert_eq!(state_of(&by_id, "pink")["state"], "in_progress");

    // Acked: done.
    ack(&mut conn, HIGH, "agent:pink", &entry).await;
    let reply = get_ok(addr, &by_entry).await;
    let pink = state_of(&reply, "pink");
    assert_eq!(pink["state"], "done", "{reply}");
    assert_eq!(pink["consumer"], Value::Null);
}

#[tokio::test]
async fn a_task_for_every_agent_lists_every_agent_known_and_other_groups_by_name() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    create_group(&mut conn, HIGH, "agent:pink").await;
    create_group(&mut conn, LOW, "agent:blue").await;
    create_group(&mut conn, HIGH, "workers").await;
    // green is known by its heartbeats only.
    fixtures::heartbeat(&mut conn, "green", "1704556800").await;
    let entry = add(&mut conn, HIGH, "*", "all-1", "", &[]).await;
    read_group(&mut conn, HIGH, "agent:pink", "pink-1", 1).await;

    let reply = get_ok(addr, &format!("/api/v1/tasks/by-entry/{HIGH}/{entry}")).await;
    let got: Vec<(String, Value, String)> = reply["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["agent"].as_str().unwrap().to_owned(),
                a.get("group").cloned().unwrap_or(Value::Null),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("blue".into(), Value::Null, "waiting".into()),
            ("green".into(), Value::Null, "waiting".into()),
            ("pink".into(), Value::Null, "in_progress".into()),
            ("workers".into(), json!("workers"), "waiting".into()),
        ],
        "{reply}"
    );
}

#[tokio::test]
async fn nacked_or_idle_past_the_visibility_timeout_is_retrying() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    create_group(&mut conn, NORMAL, "agent:pink").await;
    let nacked = add(&mut conn, NORMAL, "*", "n-1", "pink", &[]).await;
    let idle = add(&mut conn, NORMAL, "*", "n-2", "pink", &[]).await;
    read_group(&mut conn, NORMAL, "agent:pink", "pink-1", 2).await;
    push(
        &mut conn,
        &[
            record(
                LifecycleEvent::Published,
                "n-1",
                NORMAL,
                &nacked,
                None,
                json!({}),
            ),
            record(
                LifecycleEvent::Delivered,
                "n-1",
                NORMAL,
                &nacked,
                Some("pink"),
                json!({"delivery": 1}),
            ),
            record(
                LifecycleEvent::Nacked,
                "n-1",
                NORMAL,
                &nacked,
                Some("pink"),
                json!({"error": "timeout"}),
            ),
        ],
    )
    .await;
    let reply = get_ok(addr, "/api/v1/tasks/n-1").await;
    assert_eq!(reply["task"]["entry_id"], nacked.as_str());
    let pink = state_of(&reply, "pink");
    assert_eq!(pink["state"], "retrying", "{reply}");
    assert_eq!(pink["last_error"], "timeout");
    assert_eq!(pink["consumer"], "pink-1");
    // The records are the timeline (a `published` record: none made up).
    assert_eq!(events(&reply), ["published", "delivered", "nacked"]);
    assert_eq!(reply["timeline"][2]["detail"], json!({"error": "timeout"}));
    assert_eq!(reply["timeline"][1]["consumer"], "pink-1");

    // Idle past the visibility timeout (30 s by default): retrying, no error known.
    let by_entry = format!("/api/v1/tasks/by-entry/{NORMAL}/{idle}");
    assert_eq!(
        state_of(&get_ok(addr, &by_entry).await, "pink")["state"],
        "in_progress"
    );
    make_idle(&mut conn, NORMAL, "agent:pink", &idle).await;
    let pink = state_of(&get_ok(addr, &by_entry).await, "pink").clone();
    assert_eq!(pink["state"], "retrying", "{pink}");
    assert_eq!(pink["consumer"], "pink-go");
    assert_eq!(pink["last_error"], Value::Null);
}

#[tokio::test]
async fn dead_with_its_letter_then_retried_as_a_new_entry() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    create_group(&mut conn, HIGH, "agent:pink").await;
    let entry = add(&mut conn, HIGH, "*", "d-1", "pink", &[]).await;
    read_group(&mut conn, HIGH, "agent:pink", "pink-1", 1).await;
    let dlq_id = fixtures::letter(&mut conn, "d-1", "gave up after 3").await;
    ack(&mut conn, HIGH, "agent:pink", &entry).await;
    push(
        &mut conn,
        &[
            record(
                LifecycleEvent::Delivered,
                "d-1",
                HIGH,
                &entry,
                Some("pink"),
                json!({"delivery": 3}),
            ),
            record(
                LifecycleEvent::DeadLettered,
                "d-1",
                HIGH,
                &entry,
                Some("pink"),
                json!({"dlq_id": dlq_id, "error": "boom"}),
            ),
        ],
    )
    .await;
    let reply = get_ok(addr, "/api/v1/tasks/d-1").await;
    let pink = state_of(&reply, "pink");
    assert_eq!(pink["state"], "dead", "{reply}");
    assert_eq!(pink["dlq_id"], dlq_id.as_str());
    // The letter's own error (and count) when the letter is there.
    assert_eq!(pink["last_error"], "gave up after 3");
    assert_eq!(pink["deliveries"], 3);
    assert_eq!(events(&reply), ["published", "delivered", "dead_lettered"]);

    // Retried: republished (same task id) to another stream.
    let new = add(
        &mut conn,
        LOW,
        "*",
        "d-1",
        "pink",
        &[("retried_from", &dlq_id)],
    )
    .await;
    push(
        &mut conn,
        &[record(
            LifecycleEvent::Retried,
            "d-1",
            HIGH,
            &entry,
            Some("pink"),
            json!({"dlq_id": dlq_id, "stream": LOW, "entry_id": new}),
        )],
    )
    .await;
    // By id: the newest entry is the task, waiting (pink has no group on low yet); the
    // timeline shows both entries' lives (the new entry's publication, from its id,
    // before the record of the retry written after it).
    let reply = get_ok(addr, "/api/v1/tasks/d-1").await;
    assert_eq!(reply["task"]["stream"], LOW);
    assert_eq!(reply["task"]["entry_id"], new.as_str());
    assert_eq!(state_of(&reply, "pink")["state"], "waiting");
    assert_eq!(
        events(&reply),
        [
            "published",
            "delivered",
            "dead_lettered",
            "published",
            "retried"
        ]
    );
    // By its old entry: retried, naming the new one.
    let old = get_ok(addr, &format!("/api/v1/tasks/by-entry/{HIGH}/{entry}")).await;
    let pink = state_of(&old, "pink");
    assert_eq!(pink["state"], "retried", "{old}");
    assert_eq!(pink["dlq_id"], dlq_id.as_str());
    assert_eq!(pink["retried_as"], json!({"stream": LOW, "entry_id": new}));
}

/// Every page of `GET /api/v1/tasks?query`, followed by its `next`: the task ids.
async fn all_pages(addr: &str, query: &str) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut after = String::new();
    loop {
        let page = get_ok(addr, &format!("/api/v1/tasks?{query}{after}")).await;
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["state"]["agent"], "pink");
            ids.push(item["task"]["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = format!("&after={}", cortex_shared::url::encode(next)),
            None => return (ids, pages),
        }
        assert!(pages < 100, "{page}");
    }
}

#[tokio::test]
async fn lists_by_state_are_oldest_first_across_streams_and_paged() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    create_group(&mut conn, HIGH, "agent:pink").await;
    create_group(&mut conn, NORMAL, "agent:pink").await;
    // Explicit ids interleave the streams; one id is on two streams (ties go by
    // priority). Not pink's: blue's task. Every agent's: w-all.
    add(&mut conn, HIGH, "1000-0", "w-1", "pink", &[]).await;
    add(&mut conn, NORMAL, "1500-0", "w-2", "pink", &[]).await;
    add(&mut conn, HIGH, "2000-0", "w-3", "", &[]).await;
    add(&mut conn, CRITICAL, "2000-0", "w-0", "pink", &[]).await;
    add(&mut conn, LOW, "2500-0", "w-4", "pink", &[]).await;
    add(&mut conn, NORMAL, "3000-0", "blue-1", "blue", &[]).await;
    add(&mut conn, NORMAL, "3500-0", "w-5", "pink", &[]).await;
    let want = ["w-1", "w-2", "w-0", "w-3", "w-4", "w-5"];
    let (ids, pages) = all_pages(addr, "agent=pink&state=waiting&count=2").await;
    assert_eq!(ids, want);
    assert!(pages >= 3, "{pages}");
    let (ids, _) = all_pages(addr, "agent=pink&state=waiting").await;
    assert_eq!(ids, want);
    let page = get_ok(addr, "/api/v1/tasks?agent=pink&state=waiting&count=1").await;
    assert_eq!(page["items"][0]["state"]["state"], "waiting");
    assert_eq!(page["items"][0]["task"]["stream"], HIGH);
    assert_eq!(page["next"], "1000-0@high");

    // pink reads high (w-1, w-3) and normal's first two (w-2, blue-1, which its agent
    // would skip): in progress; w-3 nacked and blue-1 idle long: retrying.
    read_group(&mut conn, HIGH, "agent:pink", "pink-1", 10).await;
    read_group(&mut conn, NORMAL, "agent:pink", "pink-1", 2).await;
    push(
        &mut conn,
        &[record(
            LifecycleEvent::Nacked,
            "w-3",
            HIGH,
            "2000-0",
            Some("pink"),
            json!({"error": "boom"}),
        )],
    )
    .await;
    make_idle(&mut conn, NORMAL, "agent:pink", "3000-0").await;
    let (ids, _) = all_pages(addr, "agent=pink&state=in_progress&count=1").await;
    assert_eq!(ids, ["w-1", "w-2"]);
    let (ids, _) = all_pages(addr, "agent=pink&state=retrying").await;
    assert_eq!(ids, ["w-3", "blue-1"]);
    let (ids, _) = all_pages(addr, "agent=pink&state=waiting").await;
    assert_eq!(ids, ["w-0", "w-4", "w-5"]);
    // An agent with no group anywhere: nothing in progress, everything for it waiting.
    let (ids, _) = all_pages(addr, "agent=blue&state=in_progress").await;
    assert!(ids.is_empty());
    let page = get_ok(addr, "/api/v1/tasks?agent=blue&state=waiting").await;
    let blue: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["task"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(blue, ["w-3", "blue-1"]);
    assert_eq!(page["next"], Value::Null);
}

#[tokio::test]
async fn a_trace_of_three_tasks_over_two_agents_is_a_tree() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    create_group(&mut conn, HIGH, "agent:pink").await;
    create_group(&mut conn, HIGH, "agent:blue").await;
    let trace = [("correlation_id", "c-1")];
    let root = add(&mut conn, HIGH, "*", "root", "pink", &trace).await;
    let child = add(
        &mut conn,
        HIGH,
        "*",
        "child",
        "blue",
        &[("correlation_id", "c-1"), ("parent_id", "root")],
    )
    .await;
    let grandchild = add(
        &mut conn,
        HIGH,
        "*",
        "grandchild",
        "pink",
        &[("correlation_id", "c-1"), ("parent_id", "child")],
    )
    .await;
    for (id, entry) in [
        ("root", &root),
        ("child", &child),
        ("grandchild", &grandchild),
    ] {
        push(
            &mut conn,
            &[record(
                LifecycleEvent::Published,
                id,
                HIGH,
                entry,
                None,
                json!({}),
            )],
        )
        .await;
        let _: u64 = redis::cmd("SADD")
            .arg("cortex:trace:c-1")
            .arg(id)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // pink is working on the root; blue has not started.
    read_group(&mut conn, HIGH, "agent:pink", "pink-1", 1).await;

    let reply = get_ok(addr, "/api/v1/traces/c-1").await;
    assert_eq!(reply["correlation_id"], "c-1");
    let roots = reply["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "{reply}");
    assert_eq!(roots[0]["task"]["id"], "root");
    assert_eq!(roots[0]["task"]["correlation_id"], "c-1");
    assert_eq!(state_of(&roots[0], "pink")["state"], "in_progress");
    let children = roots[0]["children"].as_array().unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!(children[0]["task"]["id"], "child");
    assert_eq!(children[0]["task"]["parent_id"], "root");
    assert_eq!(state_of(&children[0], "blue")["state"], "waiting");
    let grandchildren = children[0]["children"].as_array().unwrap();
    assert_eq!(grandchildren[0]["task"]["id"], "grandchild");
    assert_eq!(grandchildren[0]["children"], json!([]));
    // pink's group read the root only: the grandchild waits.
    assert_eq!(state_of(&grandchildren[0], "pink")["state"], "waiting");

    get_err(addr, "/api/v1/traces/c-2", 404, "not_found").await;
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut conn = redis.connection().await;
    let entry = add(&mut conn, HIGH, "*", "t-1", "pink", &[]).await;
    get_err(addr, "/api/v1/tasks/no-such-task", 404, "not_found").await;
    get_err(
        addr,
        &format!("/api/v1/tasks/{}", "x".repeat(2_000)),
        400,
        "invalid_id",
    )
    .await;
    get_err(
        addr,
        &format!("/api/v1/tasks/by-entry/{HIGH}/not-an-id"),
        400,
        "invalid_id",
    )
    .await;
    get_err(
        addr,
        &format!("/api/v1/tasks/by-entry/{HIGH}/1-2-3"),
        400,
        "invalid_id",
    )
    .await;
    get_err(
        addr,
        &format!("/api/v1/tasks/by-entry/{HIGH}/1-0"),
        404,
        "not_found",
    )
    .await;
    for stream in [
        "cortex:heartbeats",
        "cortex:tasks:dlq",
        "cortex:tasks:urgent",
        "x",
    ] {
        let path = format!("/api/v1/tasks/by-entry/{stream}/{entry}");
        get_err(addr, &path, 400, "not_a_task_stream").await;
    }
    // A heartbeat's entry id is no task's.
    let hb = fixtures::heartbeat(&mut conn, "pink", "1").await;
    get_err(
        addr,
        &format!("/api/v1/tasks/by-entry/{HIGH}/{hb}"),
        404,
        "not_found",
    )
    .await;
    // Percent-encoded: the same stream, the same task.
    let encoded = format!("/api/v1/tasks/by-entry/cortex%3Atasks%3Ahigh/{entry}");
    assert_eq!(get_ok(addr, &encoded).await["task"]["id"], "t-1");
    get_err(addr, "/api/v1/tasks/%FF%FE", 400, "invalid_path").await;

    for (query, code) in [
        ("", "invalid_agent"),
        ("state=waiting", "invalid_agent"),
        ("agent=&state=waiting", "invalid_agent"),
        ("agent=pi%20nk&state=waiting", "invalid_agent"),
        ("agent=pink", "invalid_state"),
        ("agent=pink&state=done", "invalid_state"),
        ("agent=pink&state=running", "invalid_state"),
        ("agent=pink&state=waiting&count=0", "invalid_count"),
        ("agent=pink&state=waiting&count=1001", "invalid_count"),
        ("agent=pink&state=waiting&count=ten", "invalid_count"),
        ("agent=pink&state=waiting&count=-1", "invalid_count"),
        ("agent=pink&state=waiting&after=yesterday", "invalid_cursor"),
        (
            "agent=pink&state=waiting&after=1-0@urgent",
            "invalid_cursor",
        ),
        // An array or an object where a string belongs, a field not known.
        ("agent[]=pink&state=waiting", "invalid_query"),
        ("agent=pink&agent=blue&state=waiting", "invalid_query"),
        ("agent[name]=pink&state=waiting", "invalid_query"),
        ("agent=pink&state=waiting&limit=5", "invalid_query"),
    ] {
        get_err(addr, &format!("/api/v1/tasks?{query}"), 400, code).await;
    }
    get_err(addr, "/api/v1/traces/a%20b", 400, "invalid_trace").await;
    get_err(
        addr,
        &format!("/api/v1/traces/{}", "c".repeat(200)),
        400,
        "invalid_trace",
    )
    .await;
    // Nothing was written by any of it.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, ["cortex:heartbeats", HIGH]);
}

/// Any bytes in the path segments get a 200 or a documented 4xx with a JSON code,
/// never a 5xx or a dropped connection.
#[test]
fn any_path_segment_gets_a_documented_answer() {
    use proptest::prelude::*;
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let addr = relay.addr().to_owned();
    let entry = runtime.block_on(async {
        let mut conn = redis.connection().await;
        add(
            &mut conn,
            HIGH,
            "*",
            "t-1",
            "pink",
            &[("correlation_id", "c-1")],
        )
        .await
    });
    // A segment: each byte either as it is (when a path may hold it) or %XX.
    let segment = prop::collection::vec((any::<u8>(), any::<bool>()), 0..300).prop_map(|bytes| {
        bytes
            .into_iter()
            .map(|(b, raw)| {
                if raw && (b.is_ascii_alphanumeric() || b"-._~:@!$&'()*+,;=".contains(&b)) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    });
    let documented = [200u16, 400, 404];
    let config = ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    };
    proptest!(config, |(a in segment.clone(), b in segment, which in 0..4usize)| {
        let path = match which {
            0 => format!("/api/v1/tasks/{a}"),
            1 => format!("/api/v1/tasks/by-entry/{a}/{b}"),
            2 => format!("/api/v1/tasks/by-entry/{HIGH}/{a}"),
            _ => format!("/api/v1/traces/{a}"),
        };
        let (status, body) = runtime.block_on(get(&addr, &path));
        prop_assert!(documented.contains(&status), "{} {}: {}", path, status, body);
        if status != 200 {
            prop_assert!(body["code"].as_str().is_some_and(|c| !c.is_empty()), "{}: {}", path, body);
        }
    });
    // The task itself, and a very long segment.
    let path = format!("/api/v1/tasks/by-entry/{HIGH}/{entry}");
    let (status, _) = runtime.block_on(get(&addr, &path));
    assert_eq!(status, 200);
    let long = format!("/api/v1/tasks/{}", "%41".repeat(20_000));
    let (status, body) = runtime.block_on(get(&addr, &long));
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_id")),
        "{body}"
    );
}
