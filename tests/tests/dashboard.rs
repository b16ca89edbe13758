//! The dashboard, end to end: the relay serves the built dashboard, headless Chromium
//! opens it, the test drives its own UI, and entries XADDed to Redis appear.

use cortex_e2e::browser::Browser;
use cortex_e2e::redis::{xadd, RedisServer};
use cortex_e2e::relay::{dashboard_dir, Relay};
use fantoccini::Locator;
use std::time::{Duration, Instant};

/// Generous for page load and wasm start-up; the task itself gets one second.
const LOAD: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_dashboard_shows_a_task_within_a_second_of_the_xadd() {
    assert!(
        dashboard_dir().join("index.html").is_file(),
        "{} has no built dashboard: run `cargo xtask web` (cargo xtask test does it)",
        dashboard_dir().display()
    );
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let browser = Browser::start().await;
    let page = &browser.client;

    page.goto(&relay.http_url())
        .await
        .expect("open the dashboard");
    page.wait()
        .at_most(LOAD)
        .for_element(Locator::Css(r#"#conn-state[data-state="connected"]"#))
        .await
        .expect("the dashboard connects to the relay");

    let input = page.find(Locator::Css("#agent-input")).await.unwrap();
    input.send_keys("pink").await.unwrap();
    page.find(Locator::Css("#watch-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page.wait()
        .at_most(LOAD)
        .for_element(Locator::Css(r#"#watching[data-agent="pink"]"#))
        .await
        .expect("the relay confirms the subscription");

    let mut conn = redis.connection().await;
    let entry_id = xadd(
        &mut conn,
        "cortex:tasks:high",
        &[
            ("id", "task-browser-1"),
            ("from", "harold"),
            ("to", "pink"),
            ("priority", "high"),
            ("type", "coding"),
            ("payload", r#"{"description":"Fix auth bug"}"#),
            ("created", "1704556800"),
        ],
    )
    .await;
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

    xadd(
        &mut conn,
        "cortex:heartbeats",
        &[
            ("agent", "pink"),
            ("time", "1704556900"),
            ("status", r#"{"state":"busy"}"#),
        ],
    )
    .await;
    let heartbeat = page
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css(
            r#"#heartbeat[data-agent="pink"][data-time="1704556900"]"#,
        ))
        .await
        .expect("the heartbeat is shown");
    let status = heartbeat
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
    let redis = RedisServer::start();
    let mut relay = Relay::start(&redis.url());
    let addr = relay.addr().to_owned();
    let browser = Browser::start().await;
    let page = &browser.client;
    page.goto(&relay.http_url())
        .await
        .expect("open the dashboard");
    page.wait()
        .at_most(LOAD)
        .for_element(Locator::Css(r#"#conn-state[data-state="connected"]"#))
        .await
        .expect("connected");
    page.find(Locator::Css("#agent-input"))
        .await
        .unwrap()
        .send_keys("pink")
        .await
        .unwrap();
    page.find(Locator::Css("#watch-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    page.wait()
        .at_most(LOAD)
        .for_element(Locator::Css(r#"#watching[data-agent="pink"]"#))
        .await
        .expect("subscribed");

    relay.process().kill();
    page.wait()
        .at_most(LOAD)
        .for_element(Locator::Css(r#"#conn-state[data-state="reconnecting"]"#))
        .await
        .expect("the dashboard shows that it lost the relay");
    browser.screenshot("walking-skeleton-reconnecting").await;

    let _relay = Relay::start_with(&redis.url(), &addr, &[]);
    page.wait()
        .at_most(LOAD)
        .for_element(Locator::Css(r#"#conn-state[data-state="connected"]"#))
        .await
        .expect("the dashboard reconnects by itself");
    page.wait()
        .at_most(LOAD)
        .for_element(Locator::Css(r#"#watching[data-agent="pink"]"#))
        .await
        .expect("and subscribes again");

    let mut conn = redis.connection().await;
    xadd(
        &mut conn,
        "cortex:tasks:normal",
        &[
            ("id", "after-reconnect"),
            ("from", "harold"),
            ("to", "pink"),
            ("priority", "normal"),
            ("type", "review"),
            ("payload", "{}"),
            ("created", "1704556800"),
        ],
    )
    .await;
    page.wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css(r#"li.task[data-task-id="after-reconnect"]"#))
        .await
        .expect("tasks flow again after the reconnect");
    browser.screenshot("walking-skeleton-reconnected").await;
    browser.close().await;
}
