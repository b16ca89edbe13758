//! Timings of the DLQ API at scale (ignored by default; prints numbers, asserts only
//! correctness):
//!
//! ```sh
//! cargo build --release -p cortex-relay
//! CORTEX_RELAY_BIN=target/release/cortex-relay \
//!   cargo test --release -p cortex-e2e --test e2e api_bench:: -- --ignored --nocapture
//! ```

use crate::api_common;

use api_common::*;
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use serde_json::json;
use std::time::Instant;

#[tokio::test]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn bulk_retry_of_10000_and_filtered_listing_over_100000_letters() {
    // Timings, and 100,000 letters: no other heavy or timing test alongside
    // (`cortex_e2e::machine`).
    let _alone = cortex_e2e::machine::heavy().await;
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;

    // 100,000 letters; 1 in 100 has "needle" in its error.
    let letters: Vec<_> = (0..100_000usize)
        .map(|n| {
            letter(
                &format!("t-{n}"),
                ["pink", "harold", "blue", "green"][n % 4],
                "ops",
                ["critical", "high", "normal", "low"][n % 4],
                if n % 100 == 7 {
                    "a needle here"
                } else {
                    "not acked after 3 deliveries"
                },
                &json!({"n": n, "description": "some work to do"}).to_string(),
            )
        })
        .collect();
    let started = Instant::now();
    add_letters(&mut conn, &letters).await;
    println!("setup: 100,000 letters written in {:?}", started.elapsed());
    // Started after the letters are written, so that its watch reader is not busy
    // announcing 100,000 additions while the listing is timed.
    let relay = Relay::start(&redis.url());
    let addr = relay.addr();

    let time = |label: &str, started: Instant| {
        let took = started.elapsed();
        println!("{label}: {took:?}");
        took
    };
    // A filter matching nothing: the whole DLQ is read.
    let started = Instant::now();
    let page = get_ok(addr, "/api/v1/messaging/dlq?error=no-such-error").await;
    time(
        "listing, filter matching none of 100,000 (full scan)",
        started,
    );
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["scanned"], 100_000);
    // A filter matching 1 in 100: the first page, then all of them.
    let started = Instant::now();
    let page = get_ok(addr, "/api/v1/messaging/dlq?error=needle&limit=50").await;
    time("listing, filter matching 1%, first page of 50", started);
    assert_eq!(page["items"].as_array().unwrap().len(), 50);
    let started = Instant::now();
    let all = list_all(addr, "error=needle&agent=green", 200).await;
    time(
        "listing, two filters, every page (1,000 of 100,000)",
        started,
    );
    assert_eq!(all.len(), 1000);
    let started = Instant::now();
    let stats = get_ok(addr, "/api/v1/messaging/dlq/stats").await;
    time("stats over 100,000", started);
    assert_eq!(stats["length"], 100_000);

    // Bulk retry of 10,000 letters (by filter: the newest 10,000 by time).
    let ids = list_all(addr, "", 1000).await;
    let since = ids[9_999]
        .split('-')
        .next()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let newest: Vec<String> = ids
        .iter()
        .take_while(|id| id.split('-').next().unwrap().parse::<u64>().unwrap() >= since)
        .cloned()
        .collect();
    let started = Instant::now();
    let (status, result) = api(
        addr,
        "POST",
        "/api/v1/messaging/dlq/retry",
        Some(json!({"filter": {"since_ms": since}})),
    )
    .await;
    time(
        &format!("bulk retry of {} letters (filter)", newest.len()),
        started,
    );
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["acted"].as_u64(), Some(newest.len() as u64));
    assert_eq!(
        xlen(&mut conn, "cortex:tasks:dlq").await,
        100_000 - newest.len() as u64
    );
    let tasks: u64 = {
        let mut n = 0;
        for s in ["critical", "high", "normal", "low"] {
            n += xlen(&mut conn, &format!("cortex:tasks:{s}")).await;
        }
        n
    };
    assert_eq!(tasks, newest.len() as u64);

    // And 10,000 by ids.
    let by_ids: Vec<String> = ids[newest.len()..newest.len() + 10_000].to_vec();
    let started = Instant::now();
    let (status, result) = api(
        addr,
        "POST",
        "/api/v1/messaging/dlq/retry",
        Some(json!({"ids": by_ids})),
    )
    .await;
    time("bulk retry of 10,000 letters (ids)", started);
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["acted"], 10_000);
}
