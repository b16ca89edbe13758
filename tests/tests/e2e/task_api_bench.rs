//! Timings of the task API with 1,000,000 entries in the task streams (ignored by
//! default; prints p50/p99/max, asserts only correctness):
//!
//! ```sh
//! cargo build --release -p cortex-relay
//! CORTEX_RELAY_BIN=target/release/cortex-relay \
//!   cargo test --release -p cortex-e2e --test e2e task_api_bench:: -- --ignored --nocapture
//! ```
//!
//! The streams hold 250,000 tasks each, for ten agents (one in ten for every agent);
//! each agent's group has delivered 90% of every stream and holds 100 tasks pending;
//! 10,000 heartbeats; 20,000 tasks have lifecycle records as the relay writes them.
//! Requests go one at a time, each on a new connection, to a release relay.
//!
//! The second test opens the dashboard's task page (`#/tasks/<id>`) in headless
//! Chromium over the same data and times it by the page's clock: from setting the hash
//! (the dashboard already running) to the task, its states and its timeline on screen;
//! and a cold open of the deep link, from navigation start. Run it alone (`task_page`)
//! with the dashboard built (`cargo xtask web`).

use cortex_e2e::browser::{wait, Browser};
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use cortex_shared::lifecycle::{LifecycleEvent, LifecycleRecord};
use redis::aio::MultiplexedConnection;
use serde_json::Value;
use std::time::{Duration, Instant};

const STREAMS: [&str; 4] = [
    "cortex:tasks:critical",
    "cortex:tasks:high",
    "cortex:tasks:normal",
    "cortex:tasks:low",
];
const PER_STREAM: usize = 250_000;
const AGENTS: usize = 10;
const WITH_RECORDS: usize = 20_000;
const SAMPLES: usize = 1_000;

fn agent(n: usize) -> String {
    format!("agent-{}", n % AGENTS)
}

/// The task at position `n` of stream `s`: its id and its `to`.
fn task(s: usize, n: usize) -> (String, String) {
    let to = if n % 10 == 9 { String::new() } else { agent(n) };
    (format!("t-{s}-{n}"), to)
}

/// The entry id of position `n` of stream `s` (explicit, so that no lookup is needed).
fn entry_id(s: usize, n: usize) -> String {
    format!("{}-{}", 1_700_000_000_000u64 + n as u64, s)
}

async fn fill(conn: &mut MultiplexedConnection) {
    let payload = r#"{"description":"some work to do","n":12345}"#;
    for (s, stream) in STREAMS.iter().enumerate() {
        for batch in (0..PER_STREAM).collect::<Vec<_>>().chunks(10_000) {
            let mut pipe = redis::pipe();
            for n in batch {
                let (id, to) = task(s, *n);
                pipe.cmd("XADD")
                    .arg(*stream)
                    .arg(entry_id(s, *n))
                    .arg("id")
                    .arg(id)
                    .arg("from")
                    .arg("harold")
                    .arg("to")
                    .arg(to)
                    .arg("priority")
                    .arg(stream.rsplit(':').next().unwrap())
                    .arg("type")
                    .arg("coding")
                    .arg("payload")
                    .arg(payload)
                    .arg("created")
                    .arg("1700000000")
                    .ignore();
            }
            let () = pipe.query_async(conn).await.unwrap();
        }
        let mut pipe = redis::pipe();
        for a in 0..AGENTS {
            let group = format!("agent:{}", agent(a));
            pipe.cmd("XGROUP")
                .arg("CREATE")
                .arg(*stream)
                .arg(&group)
                .arg(entry_id(s, PER_STREAM * 9 / 10))
                .ignore();
        }
        let () = pipe.query_async(conn).await.unwrap();
        for a in 0..AGENTS {
            let group = format!("agent:{}", agent(a));
            let _: redis::Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&group)
                .arg(format!("{}-1", agent(a)))
                .arg("COUNT")
                .arg(100)
                .arg("STREAMS")
                .arg(*stream)
                .arg(">")
                .query_async(conn)
                .await
                .unwrap();
        }
    }
    let mut pipe = redis::pipe();
    for n in 0..10_000 {
        pipe.cmd("XADD")
            .arg("cortex:heartbeats")
            .arg("*")
            .arg("agent")
            .arg(agent(n))
            .arg("time")
            .arg("1700000000")
            .arg("status")
            .arg(r#"{"state":"busy"}"#)
            .ignore();
    }
    let () = pipe.query_async(conn).await.unwrap();
    // Records for tasks spread over every stream: published, delivered, acked.
    let mut pipe = redis::pipe();
    for k in 0..WITH_RECORDS {
        let (s, n) = recorded(k);
        let (id, to) = task(s, n);
        let entry = entry_id(s, n);
        for (event, detail) in [
            (LifecycleEvent::Published, serde_json::json!({})),
            (
                LifecycleEvent::Delivered,
                serde_json::json!({"delivery": 1}),
            ),
            (LifecycleEvent::Acked, serde_json::json!({"ms": 20})),
        ] {
            let agent = (event != LifecycleEvent::Published).then(|| {
                if to.is_empty() {
                    agent(0)
                } else {
                    to.clone()
                }
            });
            let record = LifecycleRecord {
                at_ms: 1_700_000_000_000 + n as u64,
                event,
                task_id: id.clone(),
                stream: STREAMS[s].into(),
                entry_id: entry.clone(),
                consumer: agent.as_ref().map(|a| format!("{a}-1")),
                agent,
                detail: detail.as_object().cloned().unwrap_or_default(),
            };
            pipe.cmd("RPUSH")
                .arg(format!("cortex:task:{id}"))
                .arg(serde_json::to_string(&record).unwrap())
                .ignore();
        }
    }
    let () = pipe.query_async(conn).await.unwrap();
}

/// The `k`th task with records: stream and position.
fn recorded(k: usize) -> (usize, usize) {
    (k % 4, (k * 48_611) % PER_STREAM)
}

fn percentiles(label: &str, took: Vec<Duration>) -> Duration {
    let ms = took.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    Duration::from_secs_f64(ms_percentiles(label, ms) / 1e3)
}

async fn timed(addr: &str, path: &str) -> (Duration, Value) {
    let started = Instant::now();
    let (status, body) = cortex_e2e::http::json(addr, "GET", path, None).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "GET {path}: {body}");
    (took, body)
}

#[tokio::test]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn the_task_api_with_a_million_entries() {
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;
    let started = Instant::now();
    fill(&mut conn).await;
    println!(
        "setup: 1,000,000 entries written in {:?}",
        started.elapsed()
    );
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();
    let mut rng = fastrand::Rng::with_seed(14);

    let mut by_id = Vec::new();
    for _ in 0..SAMPLES {
        let (s, n) = recorded(rng.usize(0..WITH_RECORDS));
        let (id, _) = task(s, n);
        let (took, body) = timed(addr, &format!("/api/v1/tasks/{id}")).await;
        assert_eq!(body["task"]["entry_id"], entry_id(s, n));
        by_id.push(took);
    }
    let p99_id = percentiles("GET /api/v1/tasks/{id} (records)", by_id);

    let mut by_entry = Vec::new();
    let mut broadcast = Vec::new();
    for _ in 0..SAMPLES {
        let (s, n) = (rng.usize(0..4), rng.usize(0..PER_STREAM));
        let path = format!("/api/v1/tasks/by-entry/{}/{}", STREAMS[s], entry_id(s, n));
        let (took, body) = timed(addr, &path).await;
        assert_eq!(body["task"]["id"], task(s, n).0);
        if task(s, n).1.is_empty() {
            assert_eq!(body["agents"].as_array().unwrap().len(), AGENTS);
            broadcast.push(took);
        } else {
            by_entry.push(took);
        }
    }
    let p99_entry = percentiles("GET /api/v1/tasks/by-entry/… (one agent)", by_entry);
    let p99_all = percentiles("GET /api/v1/tasks/by-entry/… (every agent)", broadcast);

    // Without records: the scan of the newest entries (found near the top, and a miss
    // that reads all 4 × 10,000).
    let mut scan_hit = Vec::new();
    let mut scan_miss = Vec::new();
    for _ in 0..50 {
        let (s, n) = (rng.usize(0..4), PER_STREAM - 1 - rng.usize(0..5_000));
        let (took, body) = timed(addr, &format!("/api/v1/tasks/{}", task(s, n).0)).await;
        assert_eq!(body["task"]["entry_id"], entry_id(s, n));
        scan_hit.push(took);
        let started = Instant::now();
        let (status, _) = cortex_e2e::http::json(addr, "GET", "/api/v1/tasks/nope", None).await;
        assert_eq!(status, 404);
        scan_miss.push(started.elapsed());
    }
    percentiles(
        "GET /api/v1/tasks/{id} (no records, in the newest 5,000)",
        scan_hit,
    );
    percentiles(
        "GET /api/v1/tasks/{id} (unknown: 40,000 entries scanned)",
        scan_miss,
    );

    for state in ["waiting", "in_progress"] {
        let mut took_all = Vec::new();
        for _ in 0..50 {
            let path = format!(
                "/api/v1/tasks?agent={}&state={state}&count=50",
                agent(rng.usize(0..AGENTS))
            );
            let (took, body) = timed(addr, &path).await;
            assert_eq!(body["items"].as_array().unwrap().len(), 50, "{body}");
            took_all.push(took);
        }
        percentiles(
            &format!("GET /api/v1/tasks?state={state}&count=50"),
            took_all,
        );
    }
    println!(
        "p99 target 50 ms: by id {:?}, by entry {:?}, by entry (every agent) {:?}",
        p99_id, p99_entry, p99_all
    );
}

/// Milliseconds, by the page's clock, from setting the hash to `#/tasks/<id>` to the
/// task page loaded with its timeline drawn (checked every animation frame).
async fn navigate_ms(page: &fantoccini::Client, id: &str) -> f64 {
    let took = page
        .execute_async(
            "const [id, done] = [arguments[0], arguments[arguments.length - 1]];\
             const t0 = performance.now();\
             location.hash = '#/tasks/' + encodeURIComponent(id);\
             const check = () => {\
               const v = document.querySelector('#view-task[data-loaded=\"true\"]');\
               if (v && v.dataset.taskId === id && v.querySelector('#task-timeline li')) {\
                 done(performance.now() - t0);\
               } else if (performance.now() - t0 > 10000) { done(-1); }\
               else { requestAnimationFrame(check); }\
             };\
             requestAnimationFrame(check);",
            vec![Value::String(id.to_owned())],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    assert!(
        took >= 0.0,
        "the task page of {id} did not load within 10 s"
    );
    took
}

/// Prints p50, p99 and max of `took` (milliseconds); returns the p99.
fn ms_percentiles(label: &str, mut took: Vec<f64>) -> f64 {
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    println!(
        "{label}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        took.len(),
        at(0.5),
        at(0.99),
        took.last().unwrap()
    );
    at(0.99)
}

#[tokio::test]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn the_task_page_with_a_million_entries() {
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;
    fill(&mut conn).await;
    let relay = Relay::start(&redis.url());
    let browser = Browser::start().await;
    let page = &browser.client;
    page.goto(&format!("{}#/tasks", relay.http_url()))
        .await
        .unwrap();
    wait(page, "#conn-state", Duration::from_secs(30)).await;
    let mut rng = fastrand::Rng::with_seed(15);
    let mut warm = Vec::new();
    for _ in 0..100 {
        let (s, n) = recorded(rng.usize(0..WITH_RECORDS));
        warm.push(navigate_ms(page, &task(s, n).0).await);
    }
    let p99_warm = ms_percentiles(
        "task page, dashboard running: hash set → timeline drawn",
        warm,
    );
    browser.screenshot("task-page-1m").await;
    // Cold: the deep link opened in a fresh page load (wasm fetched and started).
    let mut cold = Vec::new();
    for _ in 0..10 {
        let (s, n) = recorded(rng.usize(0..WITH_RECORDS));
        let id = task(s, n).0;
        // A new document each time (a change of the hash alone would not load one).
        page.goto("about:blank").await.unwrap();
        page.goto(&format!("{}#/tasks/{id}", relay.http_url()))
            .await
            .unwrap();
        let css =
            format!(r#"#view-task[data-task-id="{id}"][data-loaded="true"] #task-timeline li"#);
        wait(page, &css, Duration::from_secs(30)).await;
        let at = page
            .execute("return performance.now();", vec![])
            .await
            .unwrap()
            .as_f64()
            .unwrap();
        cold.push(at);
    }
    // Where a cold load's time goes: the requests it made, by when they ended.
    let requests = page
        .execute(
            "return performance.getEntriesByType('resource')\
               .map(e => [e.name.replace(location.origin, ''), Math.round(e.startTime),\
                          Math.round(e.responseEnd)])\
               .sort((a, b) => b[2] - a[2]).slice(0, 8);",
            vec![],
        )
        .await
        .unwrap();
    println!("cold load, slowest requests [path, start ms, end ms]: {requests}");
    let p99_cold = ms_percentiles(
        "task page, deep link opened cold: navigation start → timeline drawn (WebDriver polling included)",
        cold,
    );
    println!(
        "page target 500 ms: dashboard running p99 {p99_warm:.1} ms, cold p99 {p99_cold:.1} ms"
    );
    browser.close().await;
}
