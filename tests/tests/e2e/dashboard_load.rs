//! The dashboard's load time, end to end (relay binary, real redis-server, headless
//! Chromium): the time from navigation to the first task on screen with 1,000 tasks
//! in Redis, printed (README, "The dashboard").
//!
//! Each test waits for elements (never sleeps) and saves screenshots under
//! `target/screenshots/`.

use cortex_e2e::browser::{task_ids, wait_count, LIVE, LOAD};
use cortex_e2e::relay::{dashboard_dir, Relay};
use cortex_e2e::stack;
use fantoccini::Locator;
use std::time::{Duration, Instant};

/// Not a pass/fail on time: prints the time from opening the page to the first task
/// shown, with 1,000 tasks in Redis, and asserts that the history appears in full.
#[tokio::test]
async fn load_to_first_task_with_1000_tasks_in_history() {
    // Numbers the README quotes: no heavy test alongside (`cortex_e2e::machine`).
    let _timing = cortex_e2e::machine::timing().await;
    let (redis, relay, browser) = stack::start(Relay::start).await;
    let mut conn = redis.connection().await;
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        let priority = ["critical", "high", "normal", "low"][i % 4];
        pipe.cmd("XADD")
            .arg(format!("cortex:tasks:{priority}"))
            .arg("*")
            .arg(&[
                ("id", format!("bulk-{i:04}").as_str()),
                ("from", "harold"),
                ("to", "pink"),
                ("priority", priority),
                ("type", "coding"),
                ("payload", r#"{"description":"one of a thousand"}"#),
                ("created", "1704556800"),
            ])
            .ignore();
    }
    let () = pipe.query_async(&mut conn).await.unwrap();
    let page = &browser.client;

    let opened = Instant::now();
    page.goto(&format!("{}#/tasks", relay.http_url()))
        .await
        .unwrap();
    let loaded = opened.elapsed();
    let now = || async {
        page.execute("return performance.now();", vec![])
            .await
            .unwrap()
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    page.wait()
        .at_most(LOAD)
        .every(Duration::from_millis(2))
        .for_element(Locator::Css("#conn-state"))
        .await
        .expect("the dashboard runs");
    let started = now().await;
    page.wait()
        .at_most(LOAD)
        .every(Duration::from_millis(2))
        .for_element(Locator::Css(r#"#conn-state[data-state="connected"]"#))
        .await
        .expect("the dashboard connects");
    let connected = now().await;
    page.wait()
        .at_most(LOAD)
        .every(Duration::from_millis(2))
        .for_element(Locator::Css(r#"main[data-watching="*"]"#))
        .await
        .expect("the relay confirms the watch");
    let subscribed = now().await;
    page.wait()
        .at_most(LOAD)
        .every(Duration::from_millis(2))
        .for_element(Locator::Css("#task-feed li.task"))
        .await
        .expect("a task is shown");
    let first = opened.elapsed();
    let in_page = now().await;
    // Where the time went, by the page's own clock (ms since navigation start).
    let timings = page
        .execute(
            "const nav = performance.getEntriesByType('navigation')[0] || {};\
             const wasm = performance.getEntriesByType('resource')\
               .find(e => e.name.endsWith('.wasm')) || {};\
             return {dom_content_loaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,\
               wasm_fetched: wasm.responseEnd, wasm_bytes: wasm.encodedBodySize};",
            vec![],
        )
        .await
        .unwrap();
    // Every agent is watched: the newest 50 of each of the four streams.
    wait_count(page, "#task-feed li.task", 200, LIVE).await;
    let all = opened.elapsed();
    let newest = task_ids(page, "#task-feed li.task").await;
    assert_eq!(newest.first().map(String::as_str), Some("bulk-0999"));
    println!(
        "load-to-first-task with 1,000 tasks in Redis: {:.0} ms from navigation \
         (performance.now() when seen: {in_page:.0} ms; goto returned after {:.0} ms; \
         all 200 history rows after {:.0} ms); upper bounds, WebDriver polling included",
        first.as_secs_f64() * 1000.0,
        loaded.as_secs_f64() * 1000.0,
        all.as_secs_f64() * 1000.0,
    );
    println!(
        "page timings (ms from navigation start): {timings}, \
         dashboard rendered at {started:.0}, connected at {connected:.0}, \
         subscribed at {subscribed:.0}"
    );
    // The relay's part: the same subscription on a bare WebSocket from the page, no
    // rendering.
    let bare = page
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             const t0 = performance.now(); let opened = 0, n = 0;\
             const ws = new WebSocket(`ws://${location.host}/ws`);\
             ws.onopen = () => { opened = performance.now() - t0;\
               ws.send(JSON.stringify({type: 'subscribe', agent: '*', history: 50})); };\
             ws.onmessage = m => { if (JSON.parse(m.data).type === 'task' && ++n === 200) {\
               ws.close(); done({opened, all_200: performance.now() - t0}); } };\
             ws.onerror = () => done(null);",
            vec![],
        )
        .await
        .unwrap();
    println!("a bare WebSocket from the page (ms): {bare}");
    browser.screenshot("dashboard-load-1000").await;
    browser.close().await;

    // The bundle that was loaded.
    for entry in std::fs::read_dir(dashboard_dir()).unwrap().flatten() {
        let path = entry.path();
        if path.to_string_lossy().ends_with("_bg.wasm") {
            let raw = std::fs::metadata(&path).unwrap().len();
            let gzip = std::process::Command::new("gzip")
                .args(["-9", "-c"])
                .arg(&path)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| o.stdout.len());
            println!(
                "dashboard wasm {}: {raw} bytes raw, {} gzip -9",
                path.display(),
                gzip.map_or("?".to_owned(), |g| format!("{g} bytes"))
            );
        }
    }
}
