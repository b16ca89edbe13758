//! Consumers do not outlive their connections (README, Delivery: "Consumers in
//! Redis"): a consume connection that ends holding nothing removes its consumer from
//! the agent's group and its alive key; one that ends holding a task stays, so the
//! task is reclaimed from it, and leaves once it has been; the reaper removes consumers idle past
//! `--consumer-reap-after-ms` with nothing pending, in agents' groups only unless
//! `--consumer-reap-foreign`.

use cortex_e2e::redis::{xadd, RedisServer};
use cortex_e2e::relay::Relay;
use cortex_e2e::ws::WsClient;
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

const STREAMS: [&str; 4] = [
    "cortex:tasks:critical",
    "cortex:tasks:high",
    "cortex:tasks:normal",
    "cortex:tasks:low",
];

async fn add_task(conn: &mut MultiplexedConnection, n: usize) -> String {
    let id = format!("t{n}");
    xadd(
        conn,
        "cortex:tasks:high",
        &[
            ("id", id.as_str()),
            ("from", "harold"),
            ("to", "pink"),
            ("priority", "high"),
            ("type", "coding"),
            ("payload", "{}"),
            ("created", "1704556800"),
        ],
    )
    .await
}

/// The consumers of `group` on every task stream (name → pending, summed).
async fn consumers(conn: &mut MultiplexedConnection, group: &str) -> Vec<(String, u64)> {
    let mut all = std::collections::BTreeMap::new();
    for stream in STREAMS {
        let reply: redis::RedisResult<Vec<redis::Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(stream)
            .arg(group)
            .query_async(conn)
            .await;
        for consumer in reply.unwrap_or_default() {
            let fields: std::collections::HashMap<String, redis::Value> =
                redis::from_redis_value(consumer).unwrap();
            let name: String = redis::from_redis_value_ref(&fields["name"]).unwrap();
            let pending: u64 = redis::from_redis_value_ref(&fields["pending"]).unwrap();
            *all.entry(name).or_insert(0) += pending;
        }
    }
    all.into_iter().collect()
}

async fn alive_keys(conn: &mut MultiplexedConnection) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("cortex:consumers:alive:*")
        .query_async(conn)
        .await
        .unwrap();
    keys.sort();
    keys
}

/// The consumers `/api/v1/agents` lists for `agent`.
async fn listed(relay: &Relay, agent: &str) -> BTreeSet<String> {
    let (status, body) = cortex_e2e::http::get(relay.addr(), "/api/v1/agents").await;
    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    reply["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["name"] == agent)
        .flat_map(|a| a["consumers"].as_array().cloned().unwrap_or_default())
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A consume connection for pink (`consumer`: its name, else the relay's default);
/// its name, once subscribed.
async fn consume(relay: &Relay, consumer: Option<&str>) -> (WsClient, String) {
    let mut client = WsClient::connect(&relay.ws_url()).await;
    let mut subscribe = json!({"type": "subscribe", "agent": "pink", "mode": "consume"});
    if let Some(name) = consumer {
        subscribe["consumer"] = json!(name);
    }
    client.send(subscribe).await;
    let subscribed = client.expect("subscribed").await;
    let name = subscribed["consumer"].as_str().unwrap().to_owned();
    (client, name)
}

/// Closes `client`: properly (a close frame) or by dropping the socket.
async fn close(client: WsClient, properly: bool) {
    let mut client = client;
    if properly {
        client
            .send_message(tokio_tungstenite::tungstenite::Message::Close(None))
            .await;
    }
}

/// Waits until pink's group holds exactly `expected`; what it holds then, if it did.
async fn group_becomes(
    conn: &MultiplexedConnection,
    expected: &[(String, u64)],
) -> Option<Vec<(String, u64)>> {
    cortex_e2e::eventually(WAIT, || {
        let mut conn = conn.clone();
        async move {
            let now = consumers(&mut conn, "agent:pink").await;
            (now == expected).then_some(now)
        }
    })
    .await
}

#[tokio::test]
async fn short_consume_connections_leave_no_consumer_behind() {
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;
    let relay = Relay::start(&redis.url());
    let mut names = BTreeSet::new();
    // Ten connections with the relay's default names each take a task and ack it;
    // each is gone from the group once its connection is (before the next task, which
    // its read, were it still blocked in Redis, could take).
    for n in 0..10 {
        let (mut client, name) = consume(&relay, None).await;
        names.insert(name.clone());
        add_task(&mut conn, n).await;
        let task = client.next_of_type("task").await;
        client
            .send(json!({"type": "ack", "stream": task["stream"], "entry_id": task["entry_id"]}))
            .await;
        client.next_of_type("acked").await;
        close(client, n % 2 == 0).await;
        assert_eq!(group_becomes(&conn, &[]).await, Some(Vec::new()), "{name}");
    }
    // Fifty more, five at a time, that find no task (on Redis 7.0 a read that returns
    // nothing makes no consumer; each has its alive key, though).
    for _ in 0..10 {
        let mut clients = Vec::new();
        for _ in 0..5 {
            let (client, name) = consume(&relay, None).await;
            names.insert(name);
            clients.push(client);
        }
        for (i, client) in clients.into_iter().enumerate() {
            close(client, i % 2 == 0).await;
        }
    }
    assert_eq!(names.len(), 60, "each connection had a name of its own");
    // One that stays connected (and has taken a task) is not removed.
    let (mut live_client, live) = consume(&relay, Some("pink-live")).await;
    add_task(&mut conn, 10).await;
    let task = live_client.next_of_type("task").await;
    live_client
        .send(json!({"type": "ack", "stream": task["stream"], "entry_id": task["entry_id"]}))
        .await;
    live_client.next_of_type("acked").await;
    assert_eq!(
        group_becomes(&conn, &[(live.clone(), 0)]).await,
        Some(vec![(live.clone(), 0)]),
        "only the live consumer is left in the group"
    );
    let keys = alive_keys(&mut conn).await;
    assert_eq!(keys, [format!("cortex:consumers:alive:pink:{live}")]);
    assert_eq!(listed(&relay, "pink").await, BTreeSet::from([live]));
}

#[tokio::test]
async fn a_consumer_that_goes_holding_a_task_stays_until_the_task_is_taken() {
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--visibility-timeout-ms", "60000"],
    );
    let entry = add_task(&mut conn, 1).await;
    let (mut holder, holder_name) = consume(&relay, Some("holder")).await;
    let task = holder.next_of_type("task").await;
    assert_eq!(task["entry_id"], entry.as_str());
    // One that holds nothing goes at the same time.
    let (empty, _) = consume(&relay, Some("empty")).await;
    drop(holder);
    drop(empty);
    // The holder's task is handed back (due at once: idle a whole visibility timeout).
    let handed_back = cortex_e2e::eventually(WAIT, || {
        let mut conn = conn.clone();
        async move {
            let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
                .arg("cortex:tasks:high")
                .arg("agent:pink")
                .arg("-")
                .arg("+")
                .arg(10)
                .query_async(&mut conn)
                .await
                .unwrap();
            pending.into_iter().find(|p| p.2 >= 60_000)
        }
    })
    .await
    .expect("the task handed back");
    assert_eq!(handed_back.1, "holder");
    let gone = cortex_e2e::eventually(WAIT, || {
        let mut conn = conn.clone();
        async move {
            let now = consumers(&mut conn, "agent:pink").await;
            now.iter().all(|(name, _)| name != "empty").then_some(now)
        }
    })
    .await;
    assert_eq!(
        gone,
        Some(vec![(holder_name.clone(), 1)]),
        "the holder stays with its task; the empty one went"
    );
    assert!(listed(&relay, "pink").await.contains(&holder_name));
    assert_eq!(
        alive_keys(&mut conn).await,
        ["cortex:consumers:alive:pink:holder"]
    );

    // Another consumer takes the task over and acks it; it leaves in turn, and so does
    // the holder, which has kept trying since it went (now it holds nothing).
    let (mut taker, _) = consume(&relay, Some("taker")).await;
    let task = taker.next_of_type("task").await;
    assert_eq!(task["entry_id"], entry.as_str());
    taker
        .send(json!({"type": "ack", "stream": task["stream"], "entry_id": task["entry_id"]}))
        .await;
    taker.next_of_type("acked").await;
    drop(taker);
    let after = cortex_e2e::eventually(WAIT, || {
        let mut conn = conn.clone();
        async move {
            let now = consumers(&mut conn, "agent:pink").await;
            now.is_empty().then_some(now)
        }
    })
    .await;
    assert_eq!(after, Some(vec![]), "the holder and the taker both left");
    assert_eq!(alive_keys(&mut conn).await, Vec::<String>::new());
    assert!(!listed(&relay, "pink").await.contains(&holder_name));
}

async fn create_consumer(conn: &mut MultiplexedConnection, group: &str, consumer: &str) {
    for stream in STREAMS {
        let _: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
    }
    let _: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg("cortex:tasks:high")
        .arg(group)
        .arg(consumer)
        .query_async(conn)
        .await
        .unwrap();
}

/// Waits until `consumer` is no longer in `group`.
async fn gone(conn: &MultiplexedConnection, group: &str, consumer: &str) -> bool {
    cortex_e2e::eventually(WAIT, || {
        let mut conn = conn.clone();
        async move {
            let now = consumers(&mut conn, group).await;
            now.iter().all(|(name, _)| name != consumer).then_some(())
        }
    })
    .await
    .is_some()
}

#[tokio::test]
async fn the_reaper_removes_idle_consumers_holding_nothing_in_agents_groups() {
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;
    // Consumers another client left: one holding nothing, one holding a task (read
    // straight from Redis), one in the plan's shared group.
    create_consumer(&mut conn, "agent:pink", "ghost").await;
    create_consumer(&mut conn, "agents", "old").await;
    let entry = add_task(&mut conn, 1).await;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("agent:pink")
        .arg("holding")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg("cortex:tasks:high")
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--consumer-reap-after-ms", "3000"],
    );
    // A live consumer of the relay's, which waits in blocking reads of 5 s (longer
    // than the idle time) once it has a task done: its alive key keeps it.
    let (mut live_client, live) = consume(&relay, Some("pink-live")).await;
    let second = add_task(&mut conn, 2).await;
    let task = live_client.next_of_type("task").await;
    assert_eq!(task["entry_id"], second.as_str());
    live_client
        .send(json!({"type": "ack", "stream": task["stream"], "entry_id": task["entry_id"]}))
        .await;
    live_client.next_of_type("acked").await;

    assert!(gone(&conn, "agent:pink", "ghost").await, "ghost reaped");
    // A round after the ghost's (another ghost idle just as long gone too): the live
    // one, the holder and the shared group's consumer are still there.
    create_consumer(&mut conn, "agent:pink", "ghost-2").await;
    assert!(gone(&conn, "agent:pink", "ghost-2").await, "ghost-2 reaped");
    assert_eq!(
        consumers(&mut conn, "agent:pink").await,
        [("holding".to_owned(), 1), (live.clone(), 0)]
    );
    assert_eq!(
        consumers(&mut conn, "agents").await,
        [("old".to_owned(), 0)]
    );
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg("cortex:tasks:high")
        .arg("agent:pink")
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending[0].0, entry, "the holder's task is still pending");

    // Asked to, a relay reaps other clients' groups too.
    let _foreign = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &[
            "--consumer-reap-after-ms",
            "3000",
            "--consumer-reap-foreign",
        ],
    );
    assert!(gone(&conn, "agents", "old").await, "old reaped when asked");
}
