//! The dashboard's history by time range, end to end (relay binary, real
//! redis-server, headless Chromium): it shows the picked agents' tasks in the range.
//!
//! Each test waits for elements (never sleeps) and saves screenshots under
//! `target/screenshots/`.

use cortex_e2e::browser::{attr, click, open, task_ids, wait, wait_count, wait_text, LIVE, LOAD};
use cortex_e2e::fixtures::add_task;
use cortex_e2e::relay::Relay;
use cortex_e2e::stack;

#[tokio::test]
async fn history_by_time_range_shows_the_picked_agents_tasks_in_the_range() {
    let (redis, relay, browser) = stack::start(Relay::start).await;
    let mut conn = redis.connection().await;
    // 2024-01-06, UTC: 16:00, 16:30, 17:00, 17:30, 18:00.
    let at = |h: u64, m: u64| format!("{}-0", 1_704_499_200_000 + (h * 3600 + m * 60) * 1000);
    add_task(&mut conn, &at(16, 0), "h-1600", "pink", "high", "{}").await;
    add_task(&mut conn, &at(16, 30), "n-1630", "pink", "normal", "{}").await;
    add_task(&mut conn, &at(17, 0), "l-1700-all", "", "low", "{}").await;
    add_task(
        &mut conn,
        &at(17, 0),
        "c-1700-harold",
        "harold",
        "critical",
        "{}",
    )
    .await;
    add_task(&mut conn, &at(17, 30), "h-1730", "pink", "high", "{}").await;
    add_task(&mut conn, &at(18, 0), "n-1800", "pink", "normal", "{}").await;

    let page = &browser.client;
    open(page, &format!("{}#/tasks?agents=pink", relay.http_url())).await;
    wait(page, r#"main[data-watching="pink"]"#, LIVE).await;
    let feed = "#task-feed li.task";
    wait_count(page, feed, 5, LIVE).await;

    // A time that does not parse is refused inline.
    wait(page, "#history-from", LIVE)
        .await
        .send_keys("yesterday")
        .await
        .unwrap();
    click(page, "#history-load", LIVE).await;
    wait_text(page, "#history-error", LIVE, |t| t.starts_with("From:")).await;

    let from = wait(page, "#history-from", LIVE).await;
    from.clear().await.unwrap();
    from.send_keys("2024-01-06 16:15").await.unwrap();
    wait(page, "#history-to", LIVE)
        .await
        .send_keys("2024-01-06 17:45")
        .await
        .unwrap();
    click(page, "#history-load", LIVE).await;
    let loaded = r#"#history-status[data-state="loaded"]"#;
    wait(page, loaded, LIVE).await;
    wait_count(page, feed, 3, LIVE).await;
    assert_eq!(
        task_ids(page, feed).await,
        ["h-1730", "l-1700-all", "n-1630"],
        "the range, newest first, pink's and everyone's"
    );
    assert_eq!(
        attr(page, loaded, "data-matched").await.as_deref(),
        Some("3")
    );
    let url = page.current_url().await.unwrap();
    let fragment = url.fragment().unwrap_or_default().to_owned();
    assert!(
        fragment.contains("from=2024-01-06T16%3A15%3A00Z")
            && fragment.contains("to=2024-01-06T17%3A45%3A00Z")
            && fragment.contains("agents=pink"),
        "{fragment}"
    );
    browser.screenshot("dashboard-history-range").await;

    // Live tasks keep coming in meanwhile; back to live shows them.
    add_task(&mut conn, "*", "live-now", "pink", "high", "{}").await;
    click(page, "#history-live", LIVE).await;
    wait(page, r#"#task-feed li.task[data-task-id="live-now"]"#, LIVE).await;
    wait_count(page, feed, 6, LIVE).await;
    wait_count(page, "#history-status", 0, LIVE).await;

    // The URL holds the range: a link opens it (here every agent: harold's too).
    let link = format!(
        "{}#/tasks?{}",
        relay.http_url(),
        fragment.split_once('?').unwrap().1
    )
    .replace("agents=pink&", "");
    page.goto(&link).await.unwrap();
    page.refresh().await.unwrap();
    wait(page, loaded, LOAD).await;
    wait_count(page, feed, 4, LIVE).await;
    assert_eq!(
        task_ids(page, feed).await,
        ["h-1730", "c-1700-harold", "l-1700-all", "n-1630"]
    );
    let value = wait(page, "#history-from", LIVE)
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("2024-01-06T16:15:00Z"));
    browser.screenshot("dashboard-history-link").await;
    browser.close().await;
}
