//! The dashboard, end to end: the relay serves the built dashboard, headless Chromium
//! opens it, the test drives its own UI, and entries XADDed to Redis appear.

use cortex_e2e::browser::{open_and_watch, wait_for, CONNECTED, LOAD};
use cortex_e2e::fixtures::{add_typed_task, heartbeat, task, HIGH};
use cortex_e2e::relay::{assert_dashboard_built, Relay};
use cortex_e2e::stack;
use fantoccini::Locator;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_dashboard_shows_a_task_within_a_second_of_the_xadd() {
    // A deadline of one second: no heavy test alongside (`cortex_e2e::machine`).
    let _timing = cortex_e2e::machine::timing().await;
    assert_dashboard_built();
    let (redis, relay, browser) = stack::start(Relay::start).await;
    let page = &browser.client;

    open_and_watch(page, &relay.http_url(), "pink").await;

    let mut conn = redis.connection().await;
    let entry_id = task(&mut conn, HIGH, "task-browser-1", "pink").await;
    let added = Instant::now();
    let row = page
        .wait()
        .at_most(Duration::from_secs(1))
        .every(Duration::from_millis(5))
        .for_element(Locator::Css(
            r#"#task-feed li.task[data-task-id="task-browser-1"]"#,
        ))
        .await
        .expect("the task is shown within one second of the XADD");
    eprintln!(
        "task shown {:?} after XADD (upper bound: includes WebDriver polling)",
        added.elapsed()
    );

    assert_eq!(
        row.attr("data-entry-id").await.unwrap().as_deref(),
        Some(entry_id.as_str())
    );
    assert_eq!(
        row.attr("data-stream").await.unwrap().as_deref(),
        Some("cortex:tasks:high")
    );
    let text = |css: &'static str| {
        let row = row.clone();
        async move {
            row.find(Locator::Css(css))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(text(".badge.priority-high").await.trim(), "high");
    assert_eq!(text(".task-from").await.trim(), "harold");
    assert_eq!(text(".task-type").await.trim(), "coding");
    assert!(text(".task-payload").await.contains("Fix auth bug"));

    heartbeat(&mut conn, "pink", "1704556900").await;
    let shown = wait_for(
        page,
        r#"#heartbeat[data-agent="pink"][data-time="1704556900"]"#,
        Duration::from_secs(5),
        "the heartbeat is shown",
    )
    .await;
    let status = shown
        .find(Locator::Css(".heartbeat-status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(status.contains("busy"), "{status}");

    browser.screenshot("walking-skeleton-task-feed").await;
    browser.close().await;
}

#[tokio::test]
async fn the_dashboard_reconnects_by_itself_when_the_relay_comes_back() {
    let (redis, mut relay, browser) = stack::start(Relay::start).await;
    let page = &browser.client;
    open_and_watch(page, &relay.http_url(), "pink").await;

    relay.process().kill();
    let reconnecting = r#"#conn-state[data-state="reconnecting"]"#;
    let lost = "the dashboard shows that it lost the relay";
    wait_for(page, reconnecting, LOAD, lost).await;
    browser.screenshot("walking-skeleton-reconnecting").await;

    relay.restart();
    wait_for(page, CONNECTED, LOAD, "the dashboard reconnects by itself").await;
    let watching = r#"#watching[data-agent="pink"]"#;
    wait_for(page, watching, LOAD, "and subscribes again").await;

    let mut conn = redis.connection().await;
    add_typed_task(
        &mut conn,
        "*",
        "after-reconnect",
        "pink",
        "normal",
        "review",
        "{}",
    )
    .await;
    wait_for(
        page,
        r#"li.task[data-task-id="after-reconnect"]"#,
        Duration::from_secs(5),
        "tasks flow again after the reconnect",
    )
    .await;
    browser.screenshot("walking-skeleton-reconnected").await;
    browser.close().await;
}
