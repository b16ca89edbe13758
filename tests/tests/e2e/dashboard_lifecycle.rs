//! The dashboard's task lifecycle, end to end: relay binary, real redis-server, headless
//! Chromium. A feed row changes state live as a WebSocket consumer takes and acks its
//! task; the task page, the agent page and the trace page show it. Every step waits for
//! an element (no sleeps) and saves a screenshot under `target/screenshots/`.

use cortex_e2e::browser::{click, open, wait, wait_count, wait_text};
use cortex_e2e::http::json;
use cortex_e2e::relay::Relay;
use cortex_e2e::stack;
use cortex_e2e::ws::WsClient;
use serde_json::{json, Value};
use std::time::Duration;

/// Anything live after the page load.
const LIVE: Duration = Duration::from_secs(15);

async fn publish(relay: &Relay, body: Value) -> Value {
    let (status, reply) = json(relay.addr(), "POST", "/api/v1/tasks", Some(&body)).await;
    assert_eq!(status, 201, "publish: {reply}");
    reply
}

#[tokio::test]
async fn a_row_changes_state_live_and_the_task_agent_and_trace_pages_show_it() {
    let (_redis, relay, browser) = stack::start(Relay::start).await;
    let page = &browser.client;
    open(page, &format!("{}#/tasks", relay.http_url())).await;
    wait(page, r#"#watching[data-agent="*"]"#, LIVE).await;

    let root = publish(
        &relay,
        json!({"to":"pink","priority":"high","type":"review","payload":{"pr":42},
            "correlation_id":"trace-e2e-1"}),
    )
    .await;
    let task_id = root["task_id"].as_str().unwrap().to_owned();
    let entry_id = root["entry_id"].as_str().unwrap().to_owned();
    let row = format!(r#"#task-feed li.task[data-task-id="{task_id}"]"#);
    wait(
        page,
        &format!("{row} .task-state[data-state=\"waiting\"]"),
        LIVE,
    )
    .await;
    browser.screenshot("dashboard-lifecycle-row-waiting").await;

    // A consumer takes it: the row says so, and counts the seconds.
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.send(json!({"type":"subscribe","agent":"pink","mode":"consume","consumer":"pink-1"}))
        .await;
    ws.expect("subscribed").await;
    let task = ws.next_of_type("task").await;
    assert_eq!(task["entry_id"], entry_id.as_str());
    let in_progress = format!(
        r#"{row} .task-state[data-agent="pink"][data-state="in_progress"][data-consumer="pink-1"]"#
    );
    wait(page, &in_progress, LIVE).await;
    let text = wait_text(
        page,
        &format!("{in_progress} .task-state-text"),
        LIVE,
        |t| t.starts_with("in progress on pink-1 for "),
    )
    .await;
    assert!(text.contains(" s") || text.contains(" ms"), "{text}");
    browser
        .screenshot("dashboard-lifecycle-row-in-progress")
        .await;

    ws.send(json!({"type":"ack","stream":task["stream"],"entry_id":task["entry_id"]}))
        .await;
    ws.next_of_type("acked").await;
    let done = format!(r#"{row} .task-state[data-agent="pink"][data-state="done"]"#);
    let text = wait_text(page, &format!("{done} .task-state-text"), LIVE, |t| {
        t.starts_with("done")
    })
    .await;
    assert!(text.starts_with("done in "), "{text}");
    assert!(!text.contains("ms ms"), "{text}");
    browser.screenshot("dashboard-lifecycle-row-done").await;

    // A child task of the same trace, for another agent.
    publish(
        &relay,
        json!({"to":"blue","priority":"normal","type":"test","parent_id":task_id,
            "correlation_id":"trace-e2e-1"}),
    )
    .await;

    // The row opens the task page: fields, states, the timeline drawn.
    click(page, &format!("{row} a.task-open"), LIVE).await;
    wait(page, r#"#view-task[data-loaded="true"]"#, LIVE).await;
    wait(
        page,
        r#"#task-agents tr.agent-state[data-agent="pink"][data-state="done"]"#,
        LIVE,
    )
    .await;
    wait_count(page, "#timeline-list > li.timeline-item", 3, LIVE).await;
    for event in ["published", "delivered", "acked"] {
        wait(
            page,
            &format!(r#"#timeline-list li[data-event="{event}"]"#),
            LIVE,
        )
        .await;
        wait(
            page,
            &format!(r#"#timeline-chart circle[data-event="{event}"]"#),
            LIVE,
        )
        .await;
    }
    let lanes = wait(page, "#timeline-chart", LIVE)
        .await
        .attr("data-lanes")
        .await
        .unwrap()
        .unwrap();
    assert!(
        lanes.parse::<usize>().unwrap() >= 2,
        "published and pink: {lanes}"
    );
    let trace = wait_text(page, "#task-trace", LIVE, |t| !t.is_empty()).await;
    assert_eq!(trace, "trace-e2e-1");
    browser.screenshot("dashboard-lifecycle-task-page").await;

    // A deep link by id alone reads the same task.
    page.goto(&format!("{}#/tasks/{task_id}", relay.http_url()))
        .await
        .unwrap();
    wait(page, r#"#view-task[data-loaded="true"]"#, LIVE).await;
    let entry = wait_text(page, "#task-entry", LIVE, |t| !t.is_empty()).await;
    assert!(entry.ends_with(&entry_id), "{entry}");

    // An unknown id says so.
    page.goto(&format!("{}#/tasks/no-such-task", relay.http_url()))
        .await
        .unwrap();
    wait(page, r#"#task-error[data-code="not_found"]"#, LIVE).await;

    // The agent page: nothing in progress, one done in the last 5 minutes (counted
    // from the frames this page saw), nothing waiting.
    page.goto(&format!("{}#/agents/pink", relay.http_url()))
        .await
        .unwrap();
    wait(page, r#"#view-agent[data-loaded="true"]"#, LIVE).await;
    wait(
        page,
        r#"#agent-waiting tr.waiting-row[data-priority="high"][data-count="0"]"#,
        LIVE,
    )
    .await;
    browser.screenshot("dashboard-lifecycle-agent-page").await;

    // The trace: the root and its child, one level down.
    page.goto(&format!("{}#/traces/trace-e2e-1", relay.http_url()))
        .await
        .unwrap();
    wait(page, r#"#view-trace[data-loaded="true"]"#, LIVE).await;
    wait(page, r#"#trace-summary[data-tasks="2"]"#, LIVE).await;
    wait(
        page,
        &format!(r#"#trace-tree li.trace-node[data-task-id="{task_id}"] li.trace-node[data-depth="1"] .task-state[data-agent="blue"]"#),
        LIVE,
    )
    .await;
    browser.screenshot("dashboard-lifecycle-trace-page").await;
    browser.close().await;
}

#[tokio::test]
async fn the_agent_page_shows_work_in_progress_and_outcomes_live() {
    let (_redis, relay, browser) = stack::start(Relay::start).await;
    let page = &browser.client;
    open(page, &format!("{}#/agents/pink", relay.http_url())).await;
    wait(page, r#"#view-agent[data-loaded="true"]"#, LIVE).await;
    for _ in 0..2 {
        publish(&relay, json!({"to":"pink","priority":"low","type":"t"})).await;
    }
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.send(json!({"type":"subscribe","agent":"pink","mode":"consume","consumer":"pink-7"}))
        .await;
    ws.expect("subscribed").await;
    let first = ws.next_of_type("task").await;
    let second = ws.next_of_type("task").await;
    ws.send(json!({"type":"ack","stream":first["stream"],"entry_id":first["entry_id"]}))
        .await;
    ws.next_of_type("acked").await;
    // The second stays in progress on pink-7.
    wait(
        page,
        r#"#agent-in-progress li.agent-task[data-consumer="pink-7"][data-state="in_progress"]"#,
        LIVE,
    )
    .await;
    wait(page, r#"#outcomes-5m .outcome-done[data-count="1"]"#, LIVE).await;
    wait(page, r#"#outcomes-1h .outcome-done[data-count="1"]"#, LIVE).await;
    browser
        .screenshot("dashboard-lifecycle-agent-working")
        .await;
    ws.send(
        json!({"type":"nack","stream":second["stream"],"entry_id":second["entry_id"],
        "error":"timeout"}),
    )
    .await;
    wait(
        page,
        r#"#outcomes-5m .outcome-failed[data-count="1"]"#,
        LIVE,
    )
    .await;
    browser.close().await;
}
