//! Signing in to the dashboard, end to end (relay binary with tokens, real
//! redis-server, headless Chromium): a token typed into the login form opens the API
//! and the socket.
//!
//! Each test waits for elements (never sleeps) and saves screenshots under
//! `target/screenshots/`.

use cortex_e2e::browser::{click, task_ids, wait, wait_count, wait_text, CONNECTED, LIVE, LOAD};
use cortex_e2e::fixtures::{add_task, letter, tokens_config, ADMIN};
use cortex_e2e::relay::Relay;
use cortex_e2e::stack;
use fantoccini::Client;

async fn session_token(page: &Client) -> Option<String> {
    let value = page
        .execute("return sessionStorage.getItem('cortex-token');", vec![])
        .await
        .unwrap();
    value.as_str().map(str::to_owned)
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
