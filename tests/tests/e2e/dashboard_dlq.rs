//! The dashboard's dead letter view, end to end (relay binary, real redis-server,
//! headless Chromium): a letter edited in the inspector is retried with the edited
//! payload, and paging shows every letter once.
//!
//! Each test waits for elements (never sleeps) and saves screenshots under
//! `target/screenshots/`.

use cortex_e2e::browser::{click, open, task_ids, wait, wait_count, wait_text, LIVE};
use cortex_e2e::fixtures::{field, letter, xrange, DLQ, HIGH};
use cortex_e2e::relay::Relay;
use cortex_e2e::stack;
use std::collections::BTreeSet;

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
