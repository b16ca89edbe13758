//! Delivery under faults (README, "Delivery"): the relay killed with SIGKILL mid-flight, Redis
//! killed and restarted, two relays on one Redis, a relay started before Redis. Every
//! task published (and acknowledged by Redis) is acked at least once, or shown to
//! watchers; none is lost.

use cortex_agent::{Delivery, Publisher, RelayConsumer, TaskRequest};
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use cortex_e2e::ws::WsClient;
use cortex_shared::Priority;
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);

fn request(n: usize) -> TaskRequest {
    TaskRequest::new("pink", Priority::ALL[n % 4], "coding")
        .with_payload(serde_json::json!({ "n": n }).as_object().unwrap().clone())
}

/// What consumers did: tasks acked (by id), and how many deliveries there were.
#[derive(Default)]
struct Tally {
    acked: BTreeSet<String>,
    deliveries: usize,
    redelivered: usize,
}

impl Tally {
    /// Takes the next delivery to `a` or `b` (`true`: `a`'s), and acks it.
    async fn ack_next(&mut self, a: &mut RelayConsumer, b: &mut RelayConsumer) -> (Delivery, bool) {
        let (delivery, from_a) = next_of(a, b).await;
        self.ack(if from_a { a } else { b }, &delivery).await;
        (delivery, from_a)
    }

    /// Acks `delivery` and records it; an ack that fails (the relay or Redis is away)
    /// is not counted: the task comes back.
    async fn ack(&mut self, consumer: &RelayConsumer, delivery: &Delivery) {
        self.deliveries += 1;
        if delivery.delivery_count > 1 || self.acked.contains(&delivery.task.id) {
            self.redelivered += 1;
        }
        if consumer.ack(delivery).await.is_ok() {
            self.acked.insert(delivery.task.id.clone());
        }
    }
}

/// Publishes [`request`]`(n)` as harold for each `n` in `ns`; returns the task ids.
async fn publish<C: FromIterator<String>>(publisher: &Publisher, ns: Range<usize>) -> C {
    let mut ids = Vec::with_capacity(ns.len());
    for n in ns {
        ids.push(
            publisher
                .publish("harold", request(n))
                .await
                .unwrap()
                .task_id,
        );
    }
    ids.into_iter().collect()
}

/// A consumer of pink's tasks called `name`, on the relay at `ws_url`.
async fn consumer(ws_url: &str, name: &str) -> RelayConsumer {
    RelayConsumer::connect(ws_url, "pink", name).await.unwrap()
}

async fn next_of(a: &mut RelayConsumer, b: &mut RelayConsumer) -> (Delivery, bool) {
    tokio::time::timeout(WAIT, async {
        tokio::select! {
            d = a.next() => (d.expect("consumer a open"), true),
            d = b.next() => (d.expect("consumer b open"), false),
        }
    })
    .await
    .expect("a delivery within the timeout")
}

#[tokio::test]
async fn the_relay_killed_mid_flight_loses_nothing() {
    let redis = RedisServer::start();
    let flags = ["--visibility-timeout-ms", "1000"];
    let mut relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &flags);
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let mut a = consumer(&relay.ws_url(), "pink-a").await;
    let mut b = consumer(&relay.ws_url(), "pink-b").await;

    const TOTAL: usize = 500;
    let mut published: BTreeSet<_> = publish(&publisher, 0..TOTAL / 2).await;
    let mut tally = Tally::default();
    while tally.acked.len() < 100 {
        tally.ack_next(&mut a, &mut b).await;
    }

    // Killed with tasks delivered and not yet acked, and a backlog waiting.
    relay.process().kill();
    published.extend(publish::<Vec<_>>(&publisher, TOTAL / 2..TOTAL).await);
    relay.restart();

    while tally.acked.len() < TOTAL {
        let (delivery, _) = tally.ack_next(&mut a, &mut b).await;
        assert_eq!(delivery.task.to, "pink");
    }
    assert_eq!(
        tally.acked, published,
        "every published task acked at least once"
    );
    let mut conn = redis.connection().await;
    for priority in Priority::ALL {
        let pending: (u64,) = redis::cmd("XPENDING")
            .arg(priority.stream())
            .arg("agent:pink")
            .query_async::<(u64, redis::Value, redis::Value, redis::Value)>(&mut conn)
            .await
            .map(|r| (r.0,))
            .unwrap();
        assert_eq!(
            pending.0,
            0,
            "nothing left pending on {}",
            priority.stream()
        );
    }
    eprintln!(
        "relay SIGKILL: published {TOTAL}, delivered {}, acked {}, redelivered {}, lost 0",
        tally.deliveries,
        tally.acked.len(),
        tally.redelivered
    );
}

#[tokio::test]
async fn redis_killed_and_restarted_loses_no_acknowledged_task() {
    let mut redis = RedisServer::start_durable();
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--visibility-timeout-ms", "1000"],
    );
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let mut a = consumer(&relay.ws_url(), "pink-a").await;
    let mut b = consumer(&relay.ws_url(), "pink-b").await;

    let mut published: BTreeSet<_> = publish(&publisher, 0..100).await;
    let mut tally = Tally::default();
    while tally.acked.len() < 40 {
        tally.ack_next(&mut a, &mut b).await;
    }

    redis.kill();
    // While Redis is down the relay stays up and says it is not ready.
    let (status, body) = cortex_e2e::http::get(relay.addr(), "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("redis_unavailable"), "{body}");
    let (status, _) = cortex_e2e::http::get(relay.addr(), "/healthz").await;
    assert_eq!(status, 200);

    redis.restart();
    let back = Instant::now();
    // Published after the restart; every XADD that Redis acknowledged counts.
    for n in 100..200 {
        let sent = tokio::time::timeout(WAIT, async {
            loop {
                match publisher.publish("harold", request(n)).await {
                    Ok(sent) => break sent,
                    // The publisher's connection notices the restart on first use.
                    Err(_) => tokio::task::yield_now().await,
                }
            }
        })
        .await
        .expect("publishing works again after the restart");
        published.insert(sent.task_id);
    }
    let mut first_after: Option<Duration> = None;
    while tally.acked.len() < published.len() {
        let (delivery, from_a) = next_of(&mut a, &mut b).await;
        first_after.get_or_insert_with(|| back.elapsed());
        tally.ack(if from_a { &a } else { &b }, &delivery).await;
    }
    assert_eq!(tally.acked, published);
    let (status, _) = cortex_e2e::http::get(relay.addr(), "/readyz").await;
    assert_eq!(status, 200);
    eprintln!(
        "redis restart: published {}, delivered {}, acked {}, redelivered {}, lost 0; \
         first delivery {:?} after redis was back",
        published.len(),
        tally.deliveries,
        tally.acked.len(),
        tally.redelivered,
        first_after.unwrap_or_default()
    );
}

#[tokio::test]
async fn two_relays_share_an_agents_work_and_watchers_on_either_see_everything() {
    let redis = RedisServer::start();
    let one = Relay::start(&redis.url());
    let two = Relay::start(&redis.url());
    let mut watch_one = WsClient::connect(&one.ws_url()).await;
    watch_one.subscribe("pink").await;
    let mut watch_two = WsClient::connect(&two.ws_url()).await;
    watch_two.subscribe("*").await;
    let mut a = consumer(&one.ws_url(), "pink-a").await;
    let mut b = consumer(&two.ws_url(), "pink-b").await;

    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let published: Vec<_> = publish(&publisher, 0..200).await;
    let mut by_relay: HashMap<bool, usize> = HashMap::new();
    let mut tally = Tally::default();
    while tally.acked.len() < published.len() {
        let (_, from_a) = tally.ack_next(&mut a, &mut b).await;
        *by_relay.entry(from_a).or_default() += 1;
    }
    assert_eq!(tally.acked, published.iter().cloned().collect());
    assert_eq!(tally.redelivered, 0);
    assert!(
        by_relay.get(&true).copied().unwrap_or(0) > 0
            && by_relay.get(&false).copied().unwrap_or(0) > 0,
        "both relays' consumers took a share: {by_relay:?}"
    );
    for watcher in [&mut watch_one, &mut watch_two] {
        let mut seen = BTreeSet::new();
        while seen.len() < published.len() {
            let frame = watcher.expect("task").await;
            assert!(seen.insert(frame["data"]["id"].as_str().unwrap().to_owned()));
        }
        assert_eq!(seen, published.iter().cloned().collect());
    }
}

/// A relay started while Redis is down shows a watcher everything added once Redis is
/// up, including what was added before the relay's reader got through (it used to
/// start from the streams' tails at that moment, skipping those).
#[tokio::test]
async fn a_relay_started_before_redis_shows_watchers_everything_added_after_it() {
    let mut redis = RedisServer::start();
    redis.kill();
    let relay = Relay::start(&redis.url());
    let (status, _) = cortex_e2e::http::get(relay.addr(), "/readyz").await;
    assert_eq!(status, 503, "Redis is down");
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.subscribe("pink").await;

    redis.restart();
    // At once: the reader is most likely still waiting out its backoff.
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let sent = publisher.publish("harold", request(1)).await.unwrap();
    let more = publisher.publish("harold", request(2)).await.unwrap();

    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        while seen.len() < 2 {
            let frame = ws.next_of_type("task").await;
            seen.push(frame["data"]["id"].as_str().unwrap().to_owned());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("both tasks shown; saw {seen:?}"));
    assert_eq!(seen, [sent.task_id, more.task_id]);
}
