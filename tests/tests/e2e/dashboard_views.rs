//! The dashboard's views, end to end: relay binary, real redis-server, headless
//! Chromium. Each test drives the UI, waits for elements (never sleeps) and saves a
//! screenshot under `target/screenshots/`.

use cortex_e2e::browser::{click, open, wait, wait_count, Browser, LOAD};
use cortex_e2e::fixtures::{
    add_task, add_typed_task, heartbeat, letter, xlen, xrange, DLQ, FIX_AUTH_BUG, HIGH,
};
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use cortex_e2e::stack;
use fantoccini::Locator;
use std::time::{Duration, Instant};

/// Anything live after the page load.
const LIVE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_deep_link_opens_the_view_with_its_filters() {
    let (_redis, relay, browser) = stack::start(Relay::start).await;
    let page = &browser.client;
    open(
        page,
        &format!("{}#/dlq?dlq_error=timeout&agents=pink", relay.http_url()),
    )
    .await;
    wait(page, "#view-dlq", LIVE).await;
    wait(page, r#"#nav-dlq[aria-current="page"]"#, LIVE).await;
    let input = wait(page, "#dlq-error", LIVE).await;
    assert_eq!(
        input.prop("value").await.unwrap().as_deref(),
        Some("timeout")
    );
    wait(page, r#"#dlq-list[data-loaded="true"]"#, LIVE).await;
    // The navigation keeps the picked agents and filters.
    let href = wait(page, "#nav-tasks", LIVE)
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(href.starts_with("#/tasks?agents=pink"), "{href}");
    browser.screenshot("dashboard-deep-link-dlq").await;

    page.goto(&format!("{}#/streams", relay.http_url()))
        .await
        .unwrap();
    wait(page, "#view-streams #throughput-chart", LOAD).await;
    wait(page, r#"#streams-table"#, LIVE).await;
    browser.screenshot("dashboard-streams").await;
    browser.close().await;
}

#[tokio::test]
async fn agent_presence_changes_without_reload() {
    // "online" is shown for 1.5 s only: no heavy test alongside (`cortex_e2e::machine`).
    let _timing = cortex_e2e::machine::timing().await;
    let (redis, relay, browser) = stack::start(|url| {
        Relay::start_with(
            url,
            "127.0.0.1:0",
            &[
                "--presence-stale-ms",
                "1500",
                "--presence-offline-ms",
                "60000",
            ],
        )
    })
    .await;
    let page = &browser.client;
    open(page, &format!("{}#/agents", relay.http_url())).await;
    wait(page, "#view-agents", LIVE).await;
    let mut conn = redis.connection().await;
    heartbeat(&mut conn, "pink", "1704556900").await;
    wait(
        page,
        r#"#agents-list li.agent[data-agent="pink"][data-presence="online"]"#,
        LIVE,
    )
    .await;
    browser.screenshot("dashboard-agents-online").await;
    wait(
        page,
        r#"#agents-list li.agent[data-agent="pink"][data-presence="stale"]"#,
        LIVE,
    )
    .await;
    browser.screenshot("dashboard-agents-stale").await;

    // Picking the agent drives the tasks view.
    click(
        page,
        r#"li.agent[data-agent="pink"] input.agent-pick"#,
        LIVE,
    )
    .await;
    wait(
        page,
        r#"li.agent[data-agent="pink"][data-picked="true"]"#,
        LIVE,
    )
    .await;
    click(page, "#nav-tasks", LIVE).await;
    wait(page, r#"#picked-agents[data-agents="pink"]"#, LIVE).await;
    wait(page, r#"#watching[data-agent="pink"]"#, LIVE).await;
    browser.close().await;
}

#[tokio::test]
async fn filter_search_and_pause_the_task_feed() {
    let (redis, relay, browser) = stack::start(Relay::start).await;
    let page = &browser.client;
    open(page, &format!("{}#/tasks", relay.http_url())).await;
    wait(page, r#"main[data-watching="*"]"#, LIVE).await;
    let mut conn = redis.connection().await;
    add_task(&mut conn, "*", "t-auth", "pink", "high", FIX_AUTH_BUG).await;
    add_typed_task(
        &mut conn,
        "*",
        "t-review",
        "pink",
        "low",
        "review",
        r#"{"pr":42}"#,
    )
    .await;
    add_task(
        &mut conn,
        "*",
        "t-other",
        "harold",
        "high",
        r#"{"description":"Docs"}"#,
    )
    .await;
    wait_count(page, "#task-feed li.task", 3, LIVE).await;

    wait(page, "#filter-priority", LIVE)
        .await
        .select_by_value("high")
        .await
        .unwrap();
    wait_count(page, "#task-feed li.task", 2, LIVE).await;
    wait(page, "#filter-search", LIVE)
        .await
        .send_keys("auth")
        .await
        .unwrap();
    wait_count(page, "#task-feed li.task", 1, LIVE).await;
    wait(page, r#"#task-feed li.task[data-task-id="t-auth"]"#, LIVE).await;
    let url = page.current_url().await.unwrap();
    assert!(url.fragment().unwrap().contains("q=auth"), "{url}");
    browser.screenshot("dashboard-tasks-filtered").await;

    // The payload viewer.
    click(page, r#"li.task[data-task-id="t-auth"] .task-view"#, LIVE).await;
    let json = wait(page, "#payload-viewer #payload-json", LIVE)
        .await
        .text()
        .await
        .unwrap();
    assert!(json.contains("\"description\": \"Fix auth bug\""), "{json}");
    click(page, "#payload-close", LIVE).await;

    click(page, "#filter-clear", LIVE).await;
    wait_count(page, "#task-feed li.task", 3, LIVE).await;

    click(page, "#pause-btn", LIVE).await;
    wait(page, r#"#pause-btn[data-paused="true"]"#, LIVE).await;
    add_task(&mut conn, "*", "t-held", "pink", "normal", "{}").await;
    wait(page, r#"#paused-count[data-count="1"]"#, LIVE).await;
    assert!(
        page.find(Locator::Css(r#"li.task[data-task-id="t-held"]"#))
            .await
            .is_err(),
        "held while paused"
    );
    browser.screenshot("dashboard-tasks-paused").await;
    click(page, "#pause-btn", LIVE).await;
    wait(page, r#"#task-feed li.task[data-task-id="t-held"]"#, LIVE).await;
    wait_count(page, "#task-feed li.task", 4, LIVE).await;
    browser.screenshot("dashboard-tasks-resumed").await;
    browser.close().await;
}

#[tokio::test]
async fn a_letter_retried_from_the_ui_reaches_its_stream_and_leaves_every_dashboard() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    let dlq_id = letter(&mut conn, "failed-001", "processing timeout").await;
    let row = format!(r#"#dlq-list li.letter[data-dlq-id="{dlq_id}"]"#);

    let first = Browser::start().await;
    let second = Browser::start().await;
    let url = format!("{}#/dlq", relay.http_url());
    open(&first.client, &url).await;
    open(&second.client, &url).await;
    wait(&first.client, &row, LIVE).await;
    wait(&second.client, &row, LIVE).await;
    // Both are subscribed (dlq frames go to watchers).
    wait(&second.client, r#"main[data-watching="*"]"#, LIVE).await;

    click(&first.client, &format!("{row} .letter-retry"), LIVE).await;
    let message = wait(&first.client, "#confirm-dialog #confirm-message", LIVE)
        .await
        .text()
        .await
        .unwrap();
    assert!(message.contains(&dlq_id), "{message}");
    first.screenshot("dashboard-dlq-confirm-retry").await;
    click(&first.client, "#confirm-ok", LIVE).await;
    wait_count(&first.client, &row, 0, LIVE).await;
    wait_count(&second.client, &row, 0, LIVE).await;
    second.screenshot("dashboard-dlq-retried-second").await;
    let status = wait(&first.client, "#dlq-status", LIVE)
        .await
        .text()
        .await
        .unwrap();
    assert!(status.contains("cortex:tasks:high"), "{status}");

    let entries = xrange(&mut conn, HIGH).await;
    assert!(
        entries
            .iter()
            .any(|(_, f)| f.iter().any(|(k, v)| k == "id" && v == "failed-001")),
        "{entries:?}"
    );
    assert_eq!(xlen(&mut conn, DLQ).await, 0);
    first.close().await;
    second.close().await;
}

#[tokio::test]
async fn bulk_delete_by_filter_deletes_only_the_matching_letters() {
    let (redis, relay, browser) = stack::start(Relay::start).await;
    let mut conn = redis.connection().await;
    letter(&mut conn, "a", "processing timeout").await;
    letter(&mut conn, "b", "Timeout again").await;
    let kept = letter(&mut conn, "c", "crash").await;
    let page = &browser.client;
    open(
        page,
        &format!("{}#/dlq?dlq_error=timeout", relay.http_url()),
    )
    .await;
    wait_count(page, "#dlq-list li.letter", 2, LIVE).await;
    click(page, "#dlq-delete-all", LIVE).await;
    let message = wait(page, "#confirm-message", LIVE)
        .await
        .text()
        .await
        .unwrap();
    assert!(message.contains("timeout"), "{message}");
    click(page, "#confirm-ok", LIVE).await;
    wait(page, "#dlq-empty", LIVE).await;
    let status = wait(page, "#dlq-status", LIVE).await.text().await.unwrap();
    assert!(status.contains("Deleted 2 of 2"), "{status}");
    browser.screenshot("dashboard-dlq-bulk-deleted").await;
    assert_eq!(xlen(&mut conn, DLQ).await, 1);

    // Clearing the filter shows the one left.
    page.goto(&format!("{}#/dlq", relay.http_url()))
        .await
        .unwrap();
    wait(
        page,
        &format!(r#"#dlq-list li.letter[data-dlq-id="{kept}"]"#),
        LOAD,
    )
    .await;
    browser.close().await;
}

#[tokio::test]
async fn the_publish_form_rejects_bad_json_and_sends_a_good_task() {
    let (_redis, relay, browser) = stack::start(Relay::start).await;
    let page = &browser.client;
    open(page, &format!("{}#/publish", relay.http_url())).await;
    wait(page, "#publish-to", LIVE)
        .await
        .send_keys("pink")
        .await
        .unwrap();
    wait(page, "#publish-priority", LIVE)
        .await
        .select_by_value("high")
        .await
        .unwrap();
    wait(page, "#publish-type", LIVE)
        .await
        .send_keys("coding")
        .await
        .unwrap();
    let payload = wait(page, "#publish-payload", LIVE).await;
    payload.clear().await.unwrap();
    payload.send_keys(r#"{"description": "Fix"#).await.unwrap();
    click(page, "#publish-btn", LIVE).await;
    let error = wait(page, "#publish-error", LIVE).await;
    let start = Instant::now();
    while error.text().await.unwrap().is_empty() {
        assert!(start.elapsed() < LIVE, "no inline error");
    }
    assert!(error.text().await.unwrap().contains("not valid JSON"));
    browser.screenshot("dashboard-publish-bad-json").await;

    let payload = wait(page, "#publish-payload", LIVE).await;
    payload.clear().await.unwrap();
    payload
        .send_keys(r#"{"description": "Fix auth bug"}"#)
        .await
        .unwrap();
    click(page, "#publish-btn", LIVE).await;
    let result = wait(page, "#publish-result[data-task-id]", LIVE).await;
    let task_id = result.attr("data-task-id").await.unwrap().unwrap();
    assert_eq!(
        result.attr("data-stream").await.unwrap().as_deref(),
        Some("cortex:tasks:high")
    );
    browser.screenshot("dashboard-publish-sent").await;

    click(page, "#nav-tasks", LIVE).await;
    wait(
        page,
        &format!(r#"#task-feed li.task[data-task-id="{task_id}"]"#),
        LIVE,
    )
    .await;
    browser.close().await;
}
