//! The dashboard's payload viewer, end to end (relay binary, real redis-server,
//! headless Chromium): it copies the payload to the clipboard.
//!
//! Each test waits for elements (never sleeps) and saves screenshots under
//! `target/screenshots/`.

use cortex_e2e::browser::{click, open, wait, LIVE};
use cortex_e2e::fixtures::add_task;
use cortex_e2e::relay::Relay;
use cortex_e2e::stack;
use fantoccini::Client;

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
