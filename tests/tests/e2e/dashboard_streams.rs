//! The dashboard's streams chart, end to end (relay binary, real redis-server,
//! headless Chromium): it moves when tasks are published.
//!
//! Each test waits for elements (never sleeps) and saves screenshots under
//! `target/screenshots/`.

use cortex_e2e::browser::{attr, open, wait, LIVE};
use cortex_e2e::fixtures::add_task;
use cortex_e2e::relay::Relay;
use cortex_e2e::stack;
use fantoccini::Client;
use std::time::Instant;

/// The y of every point of the chart's line (160 is zero throughput).
async fn chart_ys(page: &Client) -> Vec<f64> {
    let points = attr(page, "#throughput-chart polyline.line", "points")
        .await
        .unwrap_or_default();
    points
        .split_whitespace()
        .filter_map(|p| p.split_once(',')?.1.parse().ok())
        .collect()
}

#[tokio::test]
async fn the_streams_chart_moves_when_tasks_are_published() {
    let (redis, relay, browser) = stack::start(Relay::start).await;
    let page = &browser.client;
    open(page, &format!("{}#/streams", relay.http_url())).await;
    // Two metrics polls (2 s apart) make the first sample.
    let start = Instant::now();
    while chart_ys(page).await.len() < 2 {
        assert!(start.elapsed() < LIVE * 2, "the chart has no line");
    }
    let before = chart_ys(page).await;
    assert!(
        before.iter().all(|y| *y == 160.0),
        "flat before: {before:?}"
    );
    browser.screenshot("dashboard-streams-chart-flat").await;

    let mut conn = redis.connection().await;
    for i in 0..30 {
        add_task(&mut conn, "*", &format!("chart-{i}"), "pink", "high", "{}").await;
    }
    let start = Instant::now();
    let after = loop {
        let ys = chart_ys(page).await;
        if ys.iter().any(|y| *y < 160.0) {
            break ys;
        }
        assert!(start.elapsed() < LIVE * 2, "the line never rose: {ys:?}");
    };
    assert_ne!(before, after);
    wait(
        page,
        r#"#streams-table tr.stream[data-stream="cortex:tasks:high"][data-length="30"]"#,
        LIVE,
    )
    .await;
    browser.screenshot("dashboard-streams-chart-moved").await;
    browser.close().await;
}
