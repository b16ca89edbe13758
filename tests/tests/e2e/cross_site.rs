//! Hostile pages in a real Chromium (README, "Pages on other sites"): a page on another
//! site, and one on another loopback origin, send the simple POSTs a browser sends
//! without a preflight (text/plain and form bodies) to the relay's DLQ delete and
//! publish routes, and change nothing; a DNS-rebinding name gets 421 everywhere while
//! the same relay by its address, or under a name it is told it has, works.

use cortex_e2e::browser::{self, Browser};
use cortex_e2e::fixtures::{letter, xlen, CRITICAL, DLQ};
use cortex_e2e::page::PageServer;
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::{assert_dashboard_built, Relay};
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

/// The names Chromium resolves to 127.0.0.1 in these tests.
const EVIL: &str = "evil.example";
const REBIND: &str = "rebind.example";

/// The other site's page: `attack(relay)` makes every request a page can make without
/// a preflight and says what the page saw of each; `submit(action)` posts a
/// text/plain form to `action` (the browser then shows the answer).
const ATTACKER: &str = r#"<!doctype html><title>Another site</title>
<script>
async function attempt(url, init) {
  try {
    const response = await fetch(url, init);
    return { seen: "answer", type: response.type, status: response.status };
  } catch (e) {
    return { seen: "error", name: e.name };
  }
}
async function attack(relay) {
  const deleteAll = '{"filter":{}}';
  const task = JSON.stringify({ to: "pink", priority: "critical", type: "coding", payload: {} });
  const dlq = relay + "/api/v1/messaging/dlq/delete";
  const tasks = relay + "/api/v1/tasks";
  const form = (fields) => new URLSearchParams(fields);
  return {
    dlq_text: await attempt(dlq, { method: "POST", body: deleteAll }),
    dlq_form: await attempt(dlq, { method: "POST", body: form({ filter: "{}" }) }),
    dlq_no_cors: await attempt(dlq, { method: "POST", mode: "no-cors", body: deleteAll }),
    task_text: await attempt(tasks, { method: "POST", body: task }),
    task_form: await attempt(tasks, { method: "POST", body: form({ to: "pink", priority: "critical", type: "coding" }) }),
    task_no_cors: await attempt(tasks, { method: "POST", mode: "no-cors", body: task }),
  };
}
function submit(action) {
  const form = document.createElement("form");
  form.method = "POST";
  form.action = action;
  form.enctype = "text/plain";
  const input = document.createElement("input");
  input.name = '{"filter":{}, "x":"';
  input.value = '"}';
  form.appendChild(input);
  document.body.appendChild(form);
  form.submit();
}
</script>
<p>Nothing to see here.</p>"#;

/// Runs `body` (the body of an async function) in the current page; what it returns.
async fn run(page: &Client, body: &str) -> Value {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        (async () => {{ {body} }})().then(
            (value) => done({{ ok: value === undefined ? null : value }}),
            (e) => done({{ thrown: String(e) }}));"#
    );
    let out = page
        .execute_async(&script, Vec::new())
        .await
        .expect("the script runs");
    if let Some(thrown) = out.get("thrown") {
        panic!("the page's script threw {thrown}");
    }
    out["ok"].clone()
}

/// The text the browser shows for the current document (empty while there is none).
async fn shown(page: &Client) -> String {
    match page.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits (up to [`browser::LOAD`]) until the browser shows a JSON error; its body.
async fn shown_error(page: &Client) -> Value {
    let text = tokio::time::timeout(browser::LOAD, async {
        loop {
            let text = shown(page).await;
            if text.contains("\"code\"") {
                break text;
            }
        }
    })
    .await
    .expect("the browser shows the relay's answer");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[tokio::test]
async fn pages_on_other_origins_cannot_empty_the_dlq_or_publish() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    letter(&mut conn, "task-1", "boom").await;
    letter(&mut conn, "task-2", "boom").await;
    let site = PageServer::start(ATTACKER).await;
    let browser = Browser::start_resolving(&[EVIL]).await;
    let page = &browser.client;
    let target = format!("http://{}", relay.addr());

    // A site elsewhere, and a page on another loopback port (loopback origins may
    // open the WebSocket and make changes, so the body rule is what stops it).
    for (origin, refusal) in [
        (format!("http://{EVIL}:{}", site.port()), "forbidden_origin"),
        (
            format!("http://127.0.0.1:{}", site.port()),
            "unsupported_media_type",
        ),
    ] {
        page.goto(&format!("{origin}/"))
            .await
            .expect("open the page");
        let seen = run(page, &format!("return await attack({target:?});")).await;
        // The page learns nothing but that the request failed: no CORS answer.
        for attempt in ["dlq_text", "dlq_form", "task_text", "task_form"] {
            assert_eq!(
                seen[attempt],
                json!({"seen":"error","name":"TypeError"}),
                "{origin}: {seen}"
            );
        }
        for attempt in ["dlq_no_cors", "task_no_cors"] {
            assert_eq!(
                seen[attempt],
                json!({"seen":"answer","type":"opaque","status":0}),
                "{origin}: {seen}"
            );
        }
        // Every request was answered (fetch settles on the answer); nothing changed.
        assert_eq!(
            xlen(&mut conn, DLQ).await,
            2,
            "{origin}: the DLQ is as it was"
        );
        assert_eq!(
            xlen(&mut conn, CRITICAL).await,
            0,
            "{origin}: nothing published"
        );

        // A form posted to the relay: the browser shows the relay's refusal.
        run(
            page,
            &format!(
                "submit({:?});",
                format!("{target}/api/v1/messaging/dlq/delete")
            ),
        )
        .await;
        let answer = shown_error(page).await;
        assert_eq!(answer["code"], refusal, "{origin}: {answer}");
        assert_eq!(
            xlen(&mut conn, DLQ).await,
            2,
            "{origin}: the DLQ is as it was"
        );
    }

    // The relay's own dashboard still acts on the DLQ: same origin, JSON.
    assert_dashboard_built();
    browser::open(page, &relay.http_url()).await;
    let deleted = run(
        page,
        r#"const response = await fetch("/api/v1/messaging/dlq/delete", {
            method: "POST", headers: { "Content-Type": "application/json" }, body: '{"filter":{}}' });
        return [response.status, await response.json()];"#,
    )
    .await;
    assert_eq!(deleted[0], 200, "{deleted}");
    assert_eq!(deleted[1]["acted"], 2, "{deleted}");
    assert_eq!(xlen(&mut conn, DLQ).await, 0);
    browser.close().await;
}

#[tokio::test]
async fn a_dns_rebinding_name_is_refused_and_the_relay_works_by_its_address() {
    assert_dashboard_built();
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    letter(&mut conn, "task-1", "boom").await;
    let browser = Browser::start_resolving(&[REBIND]).await;
    let page = &browser.client;
    let port = |relay: &Relay| relay.addr().rsplit(':').next().unwrap().to_owned();

    // The name now points at the relay: the browser treats the relay as that page's
    // own origin, and the relay answers it 421, page, API and WebSocket alike.
    page.goto(&format!("http://{REBIND}:{}/", port(&relay)))
        .await
        .expect("open the rebound name");
    let refused = shown_error(page).await;
    assert_eq!(refused["code"], "misdirected_request", "{refused}");
    let seen = run(
        page,
        r#"const status = async (path, init) => {
            const response = await fetch(path, init);
            return [response.status, (await response.json()).code];
        };
        const socket = await new Promise((resolve) => {
            const ws = new WebSocket(`ws://${location.host}/ws`);
            ws.onopen = () => resolve("open");
            ws.onclose = (e) => resolve(`closed ${e.code}`);
        });
        return {
            page: await status("/"),
            agents: await status("/api/v1/agents"),
            dlq: await status("/api/v1/messaging/dlq"),
            publish: await status("/api/v1/tasks", { method: "POST",
                headers: { "Content-Type": "application/json" },
                body: JSON.stringify({ to: "pink", priority: "critical", type: "coding", payload: {} }) }),
            delete: await status("/api/v1/messaging/dlq/delete", { method: "POST",
                headers: { "Content-Type": "application/json" }, body: '{"filter":{}}' }),
            socket,
        };"#,
    )
    .await;
    let misdirected = json!([421, "misdirected_request"]);
    for key in ["page", "agents", "dlq", "publish", "delete"] {
        assert_eq!(seen[key], misdirected, "{key}: {seen}");
    }
    assert_eq!(seen["socket"], "closed 1006", "{seen}");
    assert_eq!(xlen(&mut conn, CRITICAL).await, 0, "nothing published");
    assert_eq!(xlen(&mut conn, DLQ).await, 1, "nothing deleted");

    // The same relay by its address: the dashboard connects.
    browser::open(page, &relay.http_url()).await;
    // A relay told the name is its own (--public-host) serves it, WebSocket included.
    let named = Relay::start_with(&redis.url(), "127.0.0.1:0", &["--public-host", REBIND]);
    browser::open(page, &format!("http://{REBIND}:{}/", port(&named))).await;
    browser.close().await;
}
