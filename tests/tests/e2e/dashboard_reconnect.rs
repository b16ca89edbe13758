//! The dashboard's reconnection, end to end (relay binary, real redis-server, headless
//! Chromium): while the relay is down the header counts down to the next attempt.
//! The relay restarted under an open dashboard (it reconnects and shows every task
//! published meanwhile exactly once) is `resume.rs`,
//! `the_dashboard_shows_tasks_published_while_the_relay_was_down_exactly_once`
//! (screenshot `resume-after-restart`); `dashboard.rs` has the plain reconnect.
//!
//! Each test waits for elements (never sleeps) and saves screenshots under
//! `target/screenshots/`.

use cortex_e2e::browser::{attr, open, wait, wait_count, CONNECTED, LIVE, LOAD};
use cortex_e2e::relay::Relay;
use cortex_e2e::stack;
use std::time::{Duration, Instant};

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
