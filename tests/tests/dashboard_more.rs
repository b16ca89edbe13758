//! More of the dashboard, end to end (relay binary, real redis-server, headless
//! Chromium): the reconnect countdown, token login, DLQ edit-and-retry and paging, the
//! streams chart, the payload viewer's copy, history by time range, and the time from
//! page load to the first task with 1,000 tasks in Redis. Each test waits for
//! elements (never sleeps) and saves screenshots under `target/screenshots/`.
//!
//! The relay restarted under an open dashboard (it reconnects and shows every task
//! published meanwhile exactly once) is `resume.rs`,
//! `the_dashboard_shows_tasks_published_while_the_relay_was_down_exactly_once`
//! (screenshot `resume-after-restart`), next to the protocol tests of the resume it
//! relies on; `dashboard.rs` has the plain reconnect.

use cortex_e2e::browser::{attr, click, open, wait, wait_count, wait_text, CONNECTED, LOAD};
use cortex_e2e::fixtures::{add_task, field, letter, tokens_config, xrange, ADMIN, DLQ, HIGH};
use cortex_e2e::relay::{dashboard_dir, Relay};
use cortex_e2e::stack;
use fantoccini::{Client, Locator};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Anything live after the page load.
const LIVE: Duration = Duration::from_secs(15);

/// `data-task-id` of every element matching `css`, in page order.
async fn task_ids(page: &Client, css: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for element in page.find_all(Locator::Css(css)).await.unwrap() {
        ids.push(
            element
                .attr("data-task-id")
                .await
                .unwrap()
                .unwrap_or_default(),
        );
    }
    ids
}

/// The clipboard's text, read in the page.
async fn clipboard(page: &Client) -> String {
    let text = page
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             navigator.clipboard.readText().then(t => done(t), e => done('error: ' + e));",
            vec![],
        )
        .await
        .unwrap();
    text.as_str().unwrap_or_default().to_owned()
}

async fn session_token(page: &Client) -> Option<String> {
    let value = page
        .execute("return sessionStorage.getItem('cortex-token');", vec![])
        .await
        .unwrap();
    value.as_str().map(str::to_owned)
}

#[tokio::test]
async fn the_header_counts_down_to_the_next_attempt_while_the_relay_is_down() {
    let (_redis, mut relay, browser) = stack::start(Relay::start).await;
    let page = &browser.client;
    open(page, &format!("{}#/tasks", relay.http_url())).await;
    wait(page, r#"main[data-watching="*"]"#, LIVE).await;
    assert!(
        attr(page, "#reconnect-countdown", "data-seconds")
            .await
            .is_none(),
        "no countdown while connected"
    );

    relay.process().kill();
    wait(page, r#"#conn-state[data-state="reconnecting"]"#, LIVE).await;
    // The waits grow 0.25, 0.5, 1, 2, 4, 5 s: within 20 s a wait of 2 s or more is
    // shown counting down, one second after the other.
    let start = Instant::now();
    let mut last: Option<u64> = None;
    let mut screenshot = false;
    let (from, to) = loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no countdown from N to N-1 seen (last {last:?})"
        );
        // The number and the text, read together in the page.
        let shown = page
            .execute(
                "const e = document.getElementById('reconnect-countdown');\
                 const state = document.getElementById('conn-state');\
                 return e ? [e.dataset.seconds, state.textContent] : null;",
                vec![],
            )
            .await
            .unwrap();
        let Some([seconds, text]) = shown.as_array().map(|a| [&a[0], &a[1]]) else {
            continue;
        };
        let seconds: u64 = seconds.as_str().unwrap().parse().unwrap();
        assert_eq!(
            text.as_str().unwrap().trim(),
            format!("reconnecting in {seconds} s")
        );
        if seconds >= 2 && !screenshot {
            browser.screenshot("dashboard-reconnect-countdown").await;
            screenshot = true;
        }
        match last {
            Some(previous) if previous >= 2 && seconds == previous - 1 => {
                break (previous, seconds);
            }
            _ => last = Some(seconds),
        }
    };
    println!("countdown seen going from {from} s to {to} s");
    assert_eq!(
        attr(page, "#conn-state", "data-state").await.as_deref(),
        Some("reconnecting")
    );

    relay.restart();
    wait(page, CONNECTED, LOAD).await;
    wait_count(page, "#reconnect-countdown", 0, LIVE).await;
    browser
        .screenshot("dashboard-reconnect-countdown-done")
        .await;
    browser.close().await;
}

#[tokio::test]
async fn a_token_typed_into_the_login_form_opens_the_api_and_the_socket() {
    let (redis, relay, browser) =
        stack::start(|url| Relay::start_with_config(url, &tokens_config(), &[])).await;
    let mut conn = redis.connection().await;
    add_task(&mut conn, "*", "before-login", "pink", "high", "{}").await;
    let letter_id = letter(&mut conn, "dead-1", "timeout").await;
    let page = &browser.client;

    // Without a token the relay answers 401 and closes the socket with 4401.
    page.goto(&format!("{}#/tasks", relay.http_url()))
        .await
        .unwrap();
    wait(page, "#login-form #login-token", LOAD).await;
    let reason = wait(page, "#login-reason", LIVE)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        reason.contains("401") || reason.contains("4401"),
        "{reason}"
    );
    assert_eq!(task_ids(page, "#task-feed li.task").await.len(), 0);
    browser.screenshot("dashboard-login-required").await;

    // A wrong token is refused and not kept.
    wait(page, "#login-token", LIVE)
        .await
        .send_keys("not-a-token-at-all")
        .await
        .unwrap();
    click(page, "#login-btn", LIVE).await;
    wait_text(page, "#login-error", LIVE, |t| {
        t == "The relay refused this token."
    })
    .await;
    assert_eq!(session_token(page).await, None);
    browser.screenshot("dashboard-login-refused").await;

    // The admin token: kept for the tab, the page reloads and connects with it.
    let input = wait(page, "#login-token", LIVE).await;
    input.clear().await.unwrap();
    input.send_keys(ADMIN).await.unwrap();
    click(page, "#login-btn", LIVE).await;
    wait(page, CONNECTED, LOAD).await;
    // `subscribed` comes only after the relay took the auth frame.
    wait(page, r#"main[data-watching="*"]"#, LIVE).await;
    wait(
        page,
        r#"#task-feed li.task[data-task-id="before-login"]"#,
        LIVE,
    )
    .await;
    assert_eq!(session_token(page).await.as_deref(), Some(ADMIN));
    wait_count(page, "#login-form", 0, LIVE).await;
    // HTTP calls carry it too: the DLQ listing answers.
    click(page, "#nav-dlq", LIVE).await;
    wait(
        page,
        &format!(r#"#dlq-list[data-loaded="true"] li.letter[data-dlq-id="{letter_id}"]"#),
        LIVE,
    )
    .await;
    wait(page, "#logout-btn", LIVE).await;
    browser.screenshot("dashboard-login-signed-in").await;

    // A reload keeps the token; signing out forgets it.
    page.refresh().await.unwrap();
    wait(page, r#"main[data-watching="*"]"#, LOAD).await;
    click(page, "#logout-btn", LIVE).await;
    wait(page, "#login-form", LOAD).await;
    assert_eq!(session_token(page).await, None);
    browser.close().await;
}

#[tokio::test]
async fn a_letter_edited_in_the_inspector_is_retried_with_the_edited_payload() {
    let (redis, relay, browser) = stack::start(Relay::start).await;
    let mut conn = redis.connection().await;
    let dlq_id = letter(&mut conn, "failed-edit", "processing timeout").await;
    let row = format!(r#"#dlq-list li.letter[data-dlq-id="{dlq_id}"]"#);
    let page = &browser.client;
    open(page, &format!("{}#/dlq", relay.http_url())).await;
    click(page, &format!("{row} .letter-inspect"), LIVE).await;
    wait(
        page,
        &format!(r#"#letter-inspector[data-dlq-id="{dlq_id}"]"#),
        LIVE,
    )
    .await;
    let textarea = wait(page, "#letter-payload", LIVE).await;
    let original = textarea.prop("value").await.unwrap().unwrap_or_default();
    assert!(original.contains("Fix auth bug"), "{original}");

    // Not JSON: refused inline, Retry disabled.
    textarea.clear().await.unwrap();
    textarea.send_keys(r#"{"description": "#).await.unwrap();
    wait_text(page, "#letter-payload-error", LIVE, |t| {
        t.starts_with("Not valid JSON")
    })
    .await;
    wait(page, "#letter-retry[disabled]", LIVE).await;

    let edited = r#"{"description": "Fix auth bug, take 2", "attempt": 2}"#;
    let textarea = wait(page, "#letter-payload", LIVE).await;
    textarea.clear().await.unwrap();
    textarea.send_keys(edited).await.unwrap();
    wait_text(page, "#letter-payload-error", LIVE, str::is_empty).await;
    click(page, "#letter-retry:not([disabled])", LIVE).await;
    let message = wait_text(page, "#confirm-message", LIVE, |t| !t.is_empty()).await;
    assert!(message.contains(&dlq_id), "{message}");
    assert!(message.contains("with the edited payload"), "{message}");
    browser.screenshot("dashboard-dlq-edit-confirm").await;
    click(page, "#confirm-ok", LIVE).await;
    wait_count(page, &row, 0, LIVE).await;
    let status = wait_text(page, "#dlq-status", LIVE, |t| t.starts_with("Retried")).await;
    assert!(status.contains("cortex:tasks:high"), "{status}");
    browser.screenshot("dashboard-dlq-edited-retried").await;

    let entries = xrange(&mut conn, HIGH).await;
    let retried: Vec<_> = entries
        .iter()
        .filter(|(_, f)| field(f, "id") == Some("failed-edit"))
        .collect();
    assert_eq!(retried.len(), 1, "{entries:?}");
    let fields = &retried[0].1;
    let payload: serde_json::Value =
        serde_json::from_str(field(fields, "payload").unwrap()).unwrap();
    assert_eq!(
        payload,
        serde_json::json!({"description": "Fix auth bug, take 2", "attempt": 2})
    );
    assert_eq!(field(fields, "edited"), Some("true"));
    assert_eq!(field(fields, "retried_from"), Some(dlq_id.as_str()));
    assert!(xrange(&mut conn, DLQ).await.is_empty());
    browser.close().await;
}

#[tokio::test]
async fn dlq_pages_show_every_letter_once() {
    let (redis, relay, browser) = stack::start(Relay::start).await;
    let mut conn = redis.connection().await;
    let names: Vec<String> = (0..25).map(|i| format!("letter-{i:02}")).collect();
    for name in &names {
        letter(&mut conn, name, "timeout").await;
    }
    let page = &browser.client;
    open(page, &format!("{}#/dlq", relay.http_url())).await;
    let rows = r#"#dlq-list[data-loaded="true"] li.letter"#;
    wait_count(page, rows, 20, LIVE).await;
    wait_text(page, "#dlq-page", LIVE, |t| t == "Page 1").await;
    wait(page, "#dlq-prev[disabled]", LIVE).await;
    let first = task_ids(page, rows).await;
    // Newest first: the last 20 written.
    let expected_first: Vec<String> = names[5..].iter().rev().cloned().collect();
    assert_eq!(first, expected_first);
    browser.screenshot("dashboard-dlq-page-1").await;

    click(page, "#dlq-next:not([disabled])", LIVE).await;
    wait_text(page, "#dlq-page", LIVE, |t| t == "Page 2").await;
    wait_count(page, rows, 5, LIVE).await;
    let second = task_ids(page, rows).await;
    let expected_second: Vec<String> = names[..5].iter().rev().cloned().collect();
    assert_eq!(second, expected_second);
    wait(page, "#dlq-next[disabled]", LIVE).await;
    let all: BTreeSet<&String> = first.iter().chain(&second).collect();
    assert_eq!(all.len(), 25, "every letter once");
    browser.screenshot("dashboard-dlq-page-2").await;

    click(page, "#dlq-prev:not([disabled])", LIVE).await;
    wait_text(page, "#dlq-page", LIVE, |t| t == "Page 1").await;
    wait_count(page, rows, 20, LIVE).await;
    browser.close().await;
}

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

#[tokio::test]
async fn the_payload_viewer_copies_the_payload() {
    let (redis, relay, browser) = stack::start(Relay::start).await;
    let page = &browser.client;
    open(page, &format!("{}#/tasks", relay.http_url())).await;
    wait(page, r#"main[data-watching="*"]"#, LIVE).await;
    let mut conn = redis.connection().await;
    add_task(
        &mut conn,
        "*",
        "t-copy",
        "pink",
        "high",
        r#"{"description":"Fix auth bug","files":["a.rs"]}"#,
    )
    .await;
    click(page, r#"li.task[data-task-id="t-copy"] .task-view"#, LIVE).await;
    let shown = wait(
        page,
        r#"#payload-viewer[data-task-id="t-copy"] #payload-json"#,
        LIVE,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        shown.contains("\"description\": \"Fix auth bug\""),
        "{shown}"
    );
    wait(page, r#"#payload-copy[data-copy-state="idle"]"#, LIVE).await;
    page.execute(
        "window.__errors = [];\
         window.addEventListener('error', e => window.__errors.push(String(e.message)));\
         window.addEventListener('unhandledrejection', e => window.__errors.push(String(e.reason)));",
        vec![],
    )
    .await
    .unwrap();

    // The browser's profile lets pages use the clipboard (see `Browser::start`), so
    // what was copied can be read back.
    click(page, "#payload-copy", LIVE).await;
    wait(page, r#"#payload-copy[data-copy-state="copied"]"#, LIVE).await;
    assert_eq!(
        wait(page, "#payload-copy", LIVE)
            .await
            .text()
            .await
            .unwrap(),
        "Copied"
    );
    assert_eq!(clipboard(page).await.trim(), shown.trim());
    // The text the fallback copies is the same.
    let copy_text = wait(page, "#payload-copy-text", LIVE)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(copy_text.trim(), shown.trim());
    browser.screenshot("dashboard-payload-copied").await;

    // Where the clipboard API refuses, the viewer copies by selecting that text.
    click(page, "#payload-close", LIVE).await;
    click(page, r#"li.task[data-task-id="t-copy"] .task-view"#, LIVE).await;
    wait(page, r#"#payload-copy[data-copy-state="idle"]"#, LIVE).await;
    page.execute_async(
        "const done = arguments[arguments.length - 1];\
         navigator.clipboard.writeText('something else').then(() => {\
           navigator.clipboard.writeText = () => Promise.reject(new DOMException('denied', 'NotAllowedError'));\
           done(null);\
         });",
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(clipboard(page).await, "something else");
    click(page, "#payload-copy", LIVE).await;
    wait(page, r#"#payload-copy[data-copy-state="copied"]"#, LIVE).await;
    assert_eq!(clipboard(page).await.trim(), shown.trim());
    let errors = page
        .execute("return window.__errors;", vec![])
        .await
        .unwrap();
    assert_eq!(errors, serde_json::json!([]), "no error on the page");
    browser.close().await;
}

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

/// Not a pass/fail on time: prints the time from opening the page to the first task
/// shown, with 1,000 tasks in Redis, and asserts that the history appears in full.
#[tokio::test]
async fn load_to_first_task_with_1000_tasks_in_history() {
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
