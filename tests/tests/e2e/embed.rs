//! The JavaScript client (`CortexClient`, dist/client/) end to end: its example page
//! (`/examples/embed.html`, no Yew) in headless Chromium consumes, acks and nacks tasks
//! through the real relay and redis-server; `watch` resumes across a relay restart;
//! refused tokens and bad input reject with the relay's codes; and the TypeScript
//! declarations type-check the README's example (`tsc --noEmit`).

use cortex_e2e::browser::{click, wait_for, Browser, LOAD};
use cortex_e2e::fixtures::{task, tokens_config, ADMIN, AGENT, CRITICAL, HIGH, LOW, NORMAL};
use cortex_e2e::relay::{dashboard_dir, Relay};
use cortex_e2e::stack;
use cortex_e2e::workspace_root;
use fantoccini::{Client, Locator};
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const STREAMS: [&str; 4] = [CRITICAL, HIGH, NORMAL, LOW];

/// The built module, or a failure that says how to build it.
fn module_dir() -> std::path::PathBuf {
    let dir = dashboard_dir().join("client");
    assert!(
        dir.join("cortex_client.js").is_file() && dir.join("cortex_client.d.ts").is_file(),
        "{} has no built client module: run `cargo xtask web` (cargo xtask test does it)",
        dir.display()
    );
    dir
}

/// Tasks delivered to `agent`'s group on `stream` and not acked (XPENDING's count).
async fn pending(conn: &mut MultiplexedConnection, stream: &str, agent: &str) -> i64 {
    let summary: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(format!("agent:{agent}"))
        .query_async(conn)
        .await
        .expect("XPENDING");
    match summary.first() {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("XPENDING summary: {other:?}"),
    }
}

/// The row of the example page for `task_id`'s delivery number `count`.
fn row(task_id: &str, count: u32) -> String {
    format!(r#"#tasks li.task[data-task-id="{task_id}"][data-delivery-count="{count}"]"#)
}

/// Runs `body`, the body of an async function, in the page with the module imported as
/// `m` (and initialised); returns what it returns. An exception fails the test.
async fn js(page: &Client, body: &str) -> Value {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        (async () => {{
            const m = await import("/client/cortex_client.js");
            await m.default();
            {body}
        }})().then(
            (value) => done({{ ok: value === undefined ? null : value }}),
            (e) => done({{ thrown: {{ name: e?.name, code: e?.code, message: String(e?.message ?? e) }} }}));"#
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

/// Fails if the example page caught an error nobody handled (an uncaught exception, a
/// rejected promise nobody awaited: what a panic in the module would be).
async fn assert_no_page_error(page: &Client) {
    let error = page.find(Locator::Css("#error")).await.unwrap();
    let hidden = error.attr("hidden").await.unwrap();
    assert!(
        hidden.is_some(),
        "the page shows an error: {}",
        error.text().await.unwrap()
    );
}

async fn open_example(browser: &Browser, relay: &Relay, query: &str) {
    module_dir();
    browser
        .client
        .goto(&format!("{}examples/embed.html{query}", relay.http_url()))
        .await
        .expect("open the example page");
}

#[tokio::test]
async fn the_example_page_consumes_and_acks_tasks_and_none_stays_pending() {
    let (redis, relay, browser) = stack::start(Relay::start).await;
    let mut conn = redis.connection().await;
    // Waiting in Redis before the page loads: the time to the first task covers the
    // whole start (module, wasm, connection, consumer group).
    task(&mut conn, HIGH, "early-1", "pink").await;

    let page = &browser.client;
    open_example(&browser, &relay, "?agent=pink&consumer=pink-embed").await;
    wait_for(
        page,
        &row("early-1", 1),
        LOAD,
        "the task waiting in Redis is shown",
    )
    .await;
    let first_ms = page
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .attr("data-first-task-ms")
        .await
        .unwrap()
        .expect("the page records when it showed its first task");
    eprintln!("embed: first task shown {first_ms} ms after the page started loading");
    wait_for(page, r#"#state[data-state="connected"]"#, LOAD, "connected").await;
    wait_for(
        page,
        r#"#subscription[data-agent="pink"][data-consumer="pink-embed"]"#,
        LOAD,
        "the relay confirmed the consumer",
    )
    .await;

    task(&mut conn, NORMAL, "later-2", "pink").await;
    task(&mut conn, CRITICAL, "later-3", "").await;
    task(&mut conn, LOW, "for-harold", "harold").await;
    for id in ["later-2", "later-3"] {
        wait_for(page, &row(id, 1), LOAD, "a live task is shown").await;
    }
    let shown = page.find_all(Locator::Css("#tasks li.task")).await.unwrap();
    assert_eq!(shown.len(), 3, "harold's task is not pink's");
    let text = page
        .find(Locator::Css(&row("later-2", 1)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("Fix auth bug") && text.contains("normal"),
        "{text}"
    );

    for id in ["early-1", "later-2", "later-3"] {
        click(page, &format!("{} .ack-btn", row(id, 1)), LOAD).await;
    }
    for id in ["early-1", "later-2", "later-3"] {
        wait_for(
            page,
            &format!(r#"{}[data-status="acked"]"#, row(id, 1)),
            LOAD,
            "the relay confirms the ack",
        )
        .await;
    }
    browser.screenshot("embed-consumed-and-acked").await;
    for stream in STREAMS {
        assert_eq!(
            pending(&mut conn, stream, "pink").await,
            0,
            "{stream}: acked tasks are no longer pending"
        );
    }
    assert_no_page_error(page).await;
    browser.close().await;
}

#[tokio::test]
async fn a_nacked_task_is_delivered_again_then_dead_lettered_and_the_dlq_api_works() {
    let (redis, relay, browser) =
        stack::start(|url| Relay::start_with(url, "127.0.0.1:0", &["--max-deliveries", "2"])).await;
    let mut conn = redis.connection().await;
    let page = &browser.client;
    open_example(&browser, &relay, "?agent=pink&consumer=pink-nack").await;
    wait_for(
        page,
        r#"#subscription[data-agent="pink"]"#,
        LOAD,
        "consuming",
    )
    .await;

    task(&mut conn, HIGH, "flaky-1", "pink").await;
    click(page, &format!("{} .nack-btn", row("flaky-1", 1)), LOAD).await;
    wait_for(
        page,
        &format!(r#"{}[data-status="nacked"]"#, row("flaky-1", 1)),
        LOAD,
        "the first nack leaves a delivery",
    )
    .await;
    click(page, &format!("{} .nack-btn", row("flaky-1", 2)), LOAD).await;
    wait_for(
        page,
        &format!(r#"{}[data-status="dead-lettered"]"#, row("flaky-1", 2)),
        LOAD,
        "the second nack dead-letters it",
    )
    .await;
    browser.screenshot("embed-nacked-dead-lettered").await;
    assert_eq!(pending(&mut conn, HIGH, "pink").await, 0);

    // The dead letter queue through the module's HTTP calls.
    let out = js(
        page,
        r#"const c = new m.CortexClient("/");
        const listed = await c.dlq.list({ agent: "pink" });
        const letter = listed.items.find((l) => l.original_id === "flaky-1");
        const retried = await c.dlq.retry(letter.dlq_id, { priority: "low" });
        const codes = [];
        for (const id of [letter.dlq_id, "9-9"]) {
            try { await c.dlq.delete(id); codes.push("deleted"); }
            catch (e) { codes.push([e.name, e.code, e.status, e instanceof Error]); }
        }
        c.close();
        return { letter, retried, codes };"#,
    )
    .await;
    assert_eq!(out["letter"]["error"], "rejected in the example page");
    assert_eq!(out["letter"]["original_to"], "pink");
    assert_eq!(out["retried"]["stream"], LOW);
    assert_eq!(out["retried"]["task_id"], "flaky-1");
    assert_eq!(
        out["codes"],
        json!([
            ["CortexError", "already_retried", 409, true],
            ["CortexError", "not_found", 404, true]
        ])
    );
    // The retried task comes back to the page, as a first delivery on its new stream.
    let again = format!(r#"{}[data-stream="{LOW}"]"#, row("flaky-1", 1));
    click(page, &format!("{again} .ack-btn"), LOAD).await;
    wait_for(
        page,
        &format!(r#"{again}[data-status="acked"]"#),
        LOAD,
        "the retried task is acked",
    )
    .await;
    assert_eq!(pending(&mut conn, LOW, "pink").await, 0);
    assert_no_page_error(page).await;
    browser.close().await;
}

/// The task ids of the `li.watched` rows, in order.
async fn watched(page: &Client) -> Vec<String> {
    let mut ids = Vec::new();
    for li in page.find_all(Locator::Css("li.watched")).await.unwrap() {
        ids.push(li.attr("data-task-id").await.unwrap().unwrap_or_default());
    }
    ids
}

#[tokio::test]
async fn watch_resumes_across_a_relay_restart_without_loss_or_duplicates() {
    let (redis, mut relay, browser) = stack::start(Relay::start).await;
    let mut conn = redis.connection().await;
    task(&mut conn, HIGH, "before-1", "pink").await;

    let page = &browser.client;
    open_example(&browser, &relay, "").await;
    let state = js(
        page,
        r#"const c = new m.CortexClient("/");
        window.watchClient = c;
        c.onState((state) => { document.body.dataset.watchState = state; });
        const list = document.createElement("ul");
        document.body.append(list);
        const sub = await c.watch("pink", (task) => {
            const li = document.createElement("li");
            li.className = "watched";
            li.dataset.taskId = task.id;
            li.dataset.entryId = task.entry_id;
            li.textContent = `${task.id} ${task.stream} ${task.entry_id}`;
            list.append(li);
        });
        return [sub.agent, sub.mode, c.state];"#,
    )
    .await;
    assert_eq!(state, json!(["pink", "watch", "connected"]));
    wait_for(
        page,
        r#"li.watched[data-task-id="before-1"]"#,
        LOAD,
        "history",
    )
    .await;
    task(&mut conn, HIGH, "live-1", "pink").await;
    wait_for(
        page,
        r#"li.watched[data-task-id="live-1"]"#,
        LOAD,
        "a live task",
    )
    .await;

    relay.process().kill();
    wait_for(
        page,
        r#"body[data-watch-state="reconnecting"]"#,
        LOAD,
        "the client notices the relay is gone",
    )
    .await;
    // Published while the relay is down: on a stream the watch has seen, on one it has
    // not, and one for another agent.
    task(&mut conn, HIGH, "down-1", "pink").await;
    task(&mut conn, LOW, "down-2", "").await;
    task(&mut conn, NORMAL, "down-harold", "harold").await;
    relay.restart();
    wait_for(
        page,
        r#"body[data-watch-state="connected"]"#,
        LOAD,
        "the client reconnects by itself",
    )
    .await;
    wait_for(
        page,
        r#"li.watched[data-task-id="down-1"]"#,
        LOAD,
        "resumed",
    )
    .await;
    wait_for(
        page,
        r#"li.watched[data-task-id="down-2"]"#,
        LOAD,
        "resumed",
    )
    .await;
    task(&mut conn, HIGH, "after-1", "pink").await;
    wait_for(
        page,
        r#"li.watched[data-task-id="after-1"]"#,
        LOAD,
        "live again",
    )
    .await;
    browser.screenshot("embed-watch-resumed").await;

    let ids = watched(page).await;
    assert_eq!(ids.len(), 5, "each task once: {ids:?}");
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["after-1", "before-1", "down-1", "down-2", "live-1"],
        "{ids:?}"
    );
    assert_eq!(ids[..2], ["before-1", "live-1"]);
    assert_eq!(ids[4], "after-1");
    js(page, "window.watchClient.close();").await;
    assert_no_page_error(page).await;
    browser.close().await;
}

#[tokio::test]
async fn refused_tokens_and_bad_input_reject_with_the_right_codes() {
    let (_redis, relay, browser) =
        stack::start(|url| Relay::start_with_config(url, &tokens_config(), &[])).await;
    let page = &browser.client;
    open_example(&browser, &relay, "").await;
    let nobody = cortex_e2e::free_port();
    let out = js(
        page,
        &format!(
            r#"const code = async (promise) => {{
                try {{ await promise; return "resolved"; }}
                catch (e) {{ return e instanceof Error && e.name === "CortexError" ? e.code : `not a CortexError: ${{e}}`; }}
            }};
            const thrown = (f) => {{ try {{ f(); return "returned"; }} catch (e) {{ return e.code; }} }};
            const out = {{}};

            const wrong = new m.CortexClient("/", "not-a-token");
            const states = [];
            wrong.onState((state, error) => states.push(error ? `${{state}}:${{error.code}}` : state));
            out.watch = await code(wrong.watch("pink", () => {{}}));
            out.states = states;
            out.dlq = await wrong.dlq.list().catch((e) => [e.code, e.status]);
            out.after = await code(wrong.heartbeat("pink", {{}}));

            const pink = new m.CortexClient("/", "{AGENT}");
            const sub = await pink.consume("pink", "pink-1", () => {{}});
            out.consumer = [sub.mode, sub.consumer];
            out.heartbeat = (await pink.heartbeat("pink", {{ state: "idle" }})).stream;
            out.heartbeat_harold = await code(pink.heartbeat("harold"));
            out.publish = await pink.publish({{ to: "pink", priority: "high", type: "coding" }})
                .catch((e) => [e.code, e.status]);
            out.second_consumer = await code(pink.consume("harold", null, () => {{}}));
            out.bad_agent = await code(pink.watch("no/slash", () => {{}}));
            out.not_a_string = await code(pink.watch(42, () => {{}}));
            out.no_callback = await code(pink.watch("pink"));
            out.bad_priority = await code(pink.publish({{ to: "pink", priority: "urgent", type: "x" }}));
            out.unknown_field = await code(pink.dlq.list({{ agnet: "pink" }}));
            out.bad_history = await code(pink.watch("*", () => {{}}, {{ history: -1 }}));
            out.bad_status = await code(pink.heartbeat("pink", "busy"));
            pink.close();
            out.closed = await code(pink.heartbeat("pink"));

            const admin = new m.CortexClient("/", "{ADMIN}");
            out.admin_publish = (await admin.publish({{ to: "pink", priority: "low", type: "coding" }})).stream;
            admin.close();

            out.bad_url = thrown(() => new m.CortexClient("ftp://relay.example"));
            out.url_not_string = thrown(() => new m.CortexClient(42));
            out.bad_token = thrown(() => new m.CortexClient("/", 42));
            const gone = new m.CortexClient("http://127.0.0.1:{nobody}");
            out.no_relay = await code(gone.dlq.list());
            const waiting = gone.heartbeat("pink");
            gone.close();
            out.no_relay_closed = await code(waiting);
            return out;"#
        ),
    )
    .await;
    let expect = json!({
        "watch": "unauthorized",
        "dlq": ["unauthorized", 401],
        "after": "unauthorized",
        "consumer": ["consume", "pink-1"],
        "heartbeat": "cortex:heartbeats",
        "heartbeat_harold": "forbidden",
        "publish": ["forbidden", 403],
        "second_consumer": "not_allowed",
        "bad_agent": "invalid_agent",
        "not_a_string": "invalid_argument",
        "no_callback": "invalid_argument",
        "bad_priority": "invalid_argument",
        "unknown_field": "invalid_argument",
        "bad_history": "invalid_argument",
        "bad_status": "invalid_argument",
        "closed": "closed",
        "admin_publish": LOW,
        "bad_url": "invalid_url",
        "url_not_string": "invalid_url",
        "bad_token": "invalid_argument",
        "no_relay": "network",
        "no_relay_closed": "closed",
    });
    for (key, want) in expect.as_object().unwrap() {
        assert_eq!(&out[key], want, "{key}: {out}");
    }
    // A refused token ends in `offline:unauthorized` without ever connecting. (If the
    // first close reaches the page without its code, one retry comes first; the second
    // refusal ends it.)
    let states: Vec<&str> = out["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"connecting"), "{out}");
    assert_eq!(states.last(), Some(&"offline:unauthorized"), "{out}");
    assert!(
        states.iter().all(|s| *s != "connected") && states.len() <= 3,
        "{out}"
    );
    browser.screenshot("embed-refused-token").await;
    assert_no_page_error(page).await;
    browser.close().await;
}

/// The README's example (the first TypeScript block of "Embedding the client").
fn readme_example() -> String {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Embedding the client\n")
        .nth(1)
        .expect("README.md has a section \"## Embedding the client\"");
    let code = section
        .split("```ts\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the section has a ```ts example");
    code.to_owned()
}

fn tsc(dir: &Path, file: &str) -> (bool, String) {
    let tsc = workspace_root().join("target/tools/node_modules/.bin/tsc");
    assert!(
        tsc.is_file(),
        "{} not found: run `cargo xtask setup` (it installs TypeScript from npm into \
         target/tools)",
        tsc.display()
    );
    let out = Command::new(&tsc)
        .current_dir(dir)
        .args([
            "--noEmit", "--strict", "--target", "es2022", "--module", "es2022",
        ])
        // esnext.disposable: the classes have `[Symbol.dispose]()` (TypeScript 5.2+).
        .args(["--moduleResolution", "bundler"])
        .args(["--lib", "es2022,esnext.disposable,dom"])
        .arg(file)
        .output()
        .expect("run tsc");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_typescript_declarations_type_check_the_readme_example_and_catch_mistakes() {
    let module = module_dir();
    let dir = tempfile::tempdir().unwrap();
    for file in ["cortex_client.d.ts", "cortex_client_bg.wasm.d.ts"] {
        std::fs::copy(module.join(file), dir.path().join(file)).unwrap();
    }
    let example =
        readme_example().replace("\"/client/cortex_client.js\"", "\"./cortex_client.js\"");
    assert!(example.contains("./cortex_client.js"), "{example}");
    std::fs::write(dir.path().join("example.ts"), &example).unwrap();
    let (ok, output) = tsc(dir.path(), "example.ts");
    assert!(
        ok,
        "the README's example does not type-check:\n{output}\n{example}"
    );

    // The types are not `any`: each of these lines is an error.
    let mistakes = [
        r#"client.publish({ to: "pink", priority: "urgent", type: "coding" });"#,
        r#"client.watch("pink", (task) => { const n: number = task.payload; });"#,
        r#"client.consume("pink", null, (task) => task.ack("twice"));"#,
        r#"client.dlq.list({ agnet: "pink" });"#,
        r#"client.onState((state) => { const s: "up" | "down" = state; });"#,
        r#"client.dlq.list().then((page) => page.items[0].retry_count.toUpperCase());"#,
        r#"client.agentOutcomes("pink").then((o) => o.last_hour.done.toUpperCase());"#,
    ];
    let mut bad = String::from(
        "import { CortexClient } from \"./cortex_client.js\";\n\
         const client = new CortexClient(\"/\");\n",
    );
    for line in mistakes {
        bad.push_str(line);
        bad.push('\n');
    }
    std::fs::write(dir.path().join("bad.ts"), &bad).unwrap();
    let (ok, output) = tsc(dir.path(), "bad.ts");
    assert!(!ok, "tsc accepted every mistake:\n{bad}");
    for line in 3..3 + mistakes.len() {
        assert!(
            output.contains(&format!("bad.ts({line},")),
            "no error reported on line {line} ({}):\n{output}",
            mistakes[line - 3]
        );
    }
}
