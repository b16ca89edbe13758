//! The dashboard's layout, theme and keyboard use, end to end (relay binary, real
//! redis-server, headless Chromium): every view fits a phone's width (390 px) and a
//! desktop's (1280 px) without sideways scrolling, with the navigation on screen; the
//! theme follows the system's dark preference; the navigation and a DLQ action's
//! confirmation work from the keyboard alone. Each test waits for elements (never
//! sleeps) and saves screenshots under `target/screenshots/`.

use cortex_e2e::browser::{attr, open, wait, wait_count, wait_for, Browser};
use cortex_e2e::fixtures::{add_task, heartbeat, letter, xlen, DLQ};
use cortex_e2e::relay::Relay;
use cortex_e2e::stack;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::Client;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Anything live after the page load.
const LIVE: Duration = Duration::from_secs(15);

/// Chromium's switch for a system that prefers dark (`preferredColorScheme`: 0 dark,
/// 1 light); `--force-dark-mode` works too, but also darkens the browser's own UI.
const DARK: &str = "--blink-settings=preferredColorScheme=0";

/// The views, as the URL and the navigation name them (`web/src/route.rs`).
const VIEWS: [&str; 5] = ["agents", "tasks", "dlq", "streams", "publish"];

/// WebDriver key codes.
const TAB: char = '\u{E004}';
const ENTER: char = '\u{E007}';
const ESCAPE: char = '\u{E00C}';

/// What shows that `view` has its data (not just its empty frame).
fn loaded(view: &str) -> &'static str {
    match view {
        "agents" => r#"#agents-list li.agent[data-agent="pink"]"#,
        "tasks" => "#task-feed li.task",
        "dlq" => r#"#dlq-list[data-loaded="true"] li.letter"#,
        "streams" => "#streams-table tr.stream",
        "publish" => "#publish-form #publish-btn",
        _ => unreachable!("{view}"),
    }
}

/// Puts something on every view: a task with a long (UUID) id and a URL in its
/// payload, a dead letter, a live heartbeat of pink.
async fn seed(redis: &cortex_e2e::redis::RedisServer) {
    let mut conn = redis.connection().await;
    let payload = r#"{"description":"Fix the token refresh in https://git.example.com/cortex/relay/src/auth/session_refresh.rs","attempt":1}"#;
    add_task(
        &mut conn,
        "*",
        "3f2b7c1e-9a4d-4e8b-b6f1-0c5d2e7a9b13",
        "pink",
        "high",
        payload,
    )
    .await;
    letter(&mut conn, "dead-3f2b7c1e-9a4d-4e8b", "processing timeout").await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    heartbeat(&mut conn, "pink", &now.to_string()).await;
}

/// Sizes the window so that the page's viewport is `width`×`height` CSS pixels (the
/// height of the window's own frame is measured and added; headless Chromium has no
/// side frame, and reports a minimum `outerWidth` narrower windows do not have), and
/// checks it is.
async fn viewport(page: &Client, width: u32, height: u32) {
    page.set_window_size(width, height).await.unwrap();
    let frame = page
        .execute("return outerHeight - innerHeight;", vec![])
        .await
        .unwrap();
    let frame = frame.as_u64().unwrap() as u32;
    page.set_window_size(width, height + frame).await.unwrap();
    let inner = page
        .execute("return [innerWidth, innerHeight];", vec![])
        .await
        .unwrap();
    assert_eq!(
        inner,
        serde_json::json!([width, height]),
        "the viewport after resizing the window"
    );
}

/// The page's width against its viewport's, with every element sticking out to the
/// right (for the failure message).
async fn overflow(page: &Client) -> (u64, u64, Vec<String>) {
    let found = page
        .execute(
            "const root = document.documentElement;\
             const width = root.clientWidth;\
             const wide = [];\
             for (const e of document.querySelectorAll('body *')) {\
               const r = e.getBoundingClientRect();\
               if (r.width > 0 && r.right > width + 0.5) {\
                 wide.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +\
                   (e.className && typeof e.className === 'string' ? '.' + e.className.trim().replace(/\\s+/g, '.') : '') +\
                   ' right=' + Math.round(r.right));\
               }\
             }\
             return [root.scrollWidth, width, wide.slice(0, 12)];",
            vec![],
        )
        .await
        .unwrap();
    let wide = found[2]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (found[0].as_u64().unwrap(), found[1].as_u64().unwrap(), wide)
}

/// Asserts the navigation is displayed and each of its links lies inside the viewport.
async fn assert_nav_on_screen(page: &Client, view: &str, width: u32) {
    let nav = wait(page, "#views", LIVE).await;
    assert!(
        nav.is_displayed().await.unwrap(),
        "{view}@{width}: #views hidden"
    );
    let links = page
        .execute(
            "const w = document.documentElement.clientWidth;\
             return [...document.querySelectorAll('#views a')].map(a => {\
               const r = a.getBoundingClientRect();\
               const s = getComputedStyle(a);\
               return [a.id, r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= w + 0.5\
                 && s.visibility === 'visible' && s.display !== 'none'];\
             });",
            vec![],
        )
        .await
        .unwrap();
    let links = links.as_array().unwrap();
    assert_eq!(
        links.len(),
        VIEWS.len(),
        "{view}@{width}: nav links {links:?}"
    );
    for link in links {
        assert_eq!(
            link[1],
            Value::Bool(true),
            "{view}@{width}: nav link {} not fully on screen",
            link[0]
        );
    }
}

/// Opens each view at the current size and checks it fits; `shot` names its screenshot.
async fn check_views(browser: &Browser, base: &str, width: u32, shot: impl Fn(&str) -> bool) {
    let page = &browser.client;
    for view in VIEWS {
        page.goto(&format!("{base}#/{view}")).await.unwrap();
        wait_for(
            page,
            &format!(r#"#main[data-view="{view}"] #view-{view}"#),
            LIVE,
            &format!("the {view} view"),
        )
        .await;
        wait_for(page, loaded(view), LIVE, &format!("the {view} view's data")).await;
        let (scroll, client, wide) = overflow(page).await;
        println!("{view}@{width}: scrollWidth {scroll}, clientWidth {client}");
        // The viewport, less a vertical scrollbar when the view is taller than it.
        assert!(
            client <= u64::from(width) && client + 20 >= u64::from(width),
            "{view}@{width}: clientWidth {client}"
        );
        assert!(
            scroll <= client,
            "{view}@{width}: the page scrolls sideways ({scroll} > {client}); wide: {wide:#?}"
        );
        assert_nav_on_screen(page, view, width).await;
        if shot(view) {
            let name = if width < 600 {
                format!("dashboard-phone-{view}")
            } else {
                format!("dashboard-desktop-{view}")
            };
            browser.screenshot(&name).await;
        }
    }
}

#[tokio::test]
async fn every_view_fits_a_phone_and_a_desktop_without_sideways_scrolling() {
    let (redis, relay, browser) = stack::start(Relay::start).await;
    seed(&redis).await;
    let page = &browser.client;
    let base = relay.http_url();
    open(page, &format!("{base}#/tasks")).await;

    viewport(page, 390, 844).await;
    check_views(&browser, &base, 390, |_| true).await;

    viewport(page, 1280, 800).await;
    check_views(&browser, &base, 1280, |view| view == "tasks").await;
    browser.close().await;
}

/// `prefers-color-scheme: dark` as the page sees it, and body's computed background
/// as `[r, g, b]`.
async fn theme(page: &Client) -> (bool, [u64; 3]) {
    let found = page
        .execute(
            "const bg = getComputedStyle(document.body).backgroundColor;\
             return [matchMedia('(prefers-color-scheme: dark)').matches,\
                     bg.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number)];",
            vec![],
        )
        .await
        .unwrap();
    let rgb = found[1].as_array().unwrap();
    let channel = |i: usize| rgb[i].as_f64().unwrap().round() as u64;
    (
        found[0].as_bool().unwrap(),
        [channel(0), channel(1), channel(2)],
    )
}

#[tokio::test]
async fn the_theme_is_dark_when_the_system_prefers_dark() {
    let (redis, relay, light) = stack::start(Relay::start).await;
    seed(&redis).await;
    let url = format!("{}#/tasks", relay.http_url());

    open(&light.client, &url).await;
    wait(&light.client, loaded("tasks"), LIVE).await;
    let (dark, rgb) = theme(&light.client).await;
    println!("default browser: prefers dark {dark}, body background {rgb:?}");
    assert!(!dark, "the default browser does not prefer dark");
    assert!(
        rgb.iter().sum::<u64>() > 600,
        "light background by default: {rgb:?}"
    );

    let dark_browser = Browser::start_with_args(&[DARK]).await;
    open(&dark_browser.client, &url).await;
    wait(&dark_browser.client, loaded("tasks"), LIVE).await;
    let (dark, rgb) = theme(&dark_browser.client).await;
    println!("{DARK}: prefers dark {dark}, body background {rgb:?}");
    assert!(dark, "{DARK} makes the page prefer dark");
    assert!(
        rgb.iter().sum::<u64>() < 150,
        "dark background when the system prefers dark: {rgb:?}"
    );
    // The text follows: light on dark.
    let text = dark_browser
        .client
        .execute(
            "return getComputedStyle(document.body).color.match(/\\d+/g).slice(0, 3).map(Number);",
            vec![],
        )
        .await
        .unwrap();
    let text_sum: u64 = text
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert!(text_sum > 600, "light text on the dark theme: {text}");
    dark_browser.screenshot("dashboard-dark").await;
    dark_browser.close().await;
    light.close().await;
}

/// Presses `key` (down and up) on whatever has the focus.
async fn press(page: &Client, key: char) {
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    page.perform_actions(keys).await.unwrap();
}

/// `id` and `class` of the focused element (`document.activeElement`).
async fn focused(page: &Client) -> (String, String) {
    let found = page
        .execute(
            "const e = document.activeElement;\
             return e ? [e.id || '', e.getAttribute('class') || '', e.tagName] : ['', '', ''];",
            vec![],
        )
        .await
        .unwrap();
    let text = |i: usize| found[i].as_str().unwrap_or_default().to_owned();
    (text(0), text(1))
}

/// Presses Tab until `done` holds for the focused element (at most `max` times);
/// returns how many presses it took and the ids focused on the way.
async fn tab_until(
    page: &Client,
    max: usize,
    done: impl Fn(&str, &str) -> bool,
) -> (usize, Vec<String>) {
    let mut seen = Vec::new();
    for n in 1..=max {
        press(page, TAB).await;
        let (id, class) = focused(page).await;
        seen.push(if id.is_empty() {
            format!(".{class}")
        } else {
            id.clone()
        });
        if done(&id, &class) {
            return (n, seen);
        }
    }
    panic!("not reached with {max} Tabs; focused on the way: {seen:?}");
}

#[tokio::test]
async fn the_navigation_and_a_dlq_confirmation_work_from_the_keyboard() {
    let (redis, relay, browser) = stack::start(Relay::start).await;
    seed(&redis).await;
    let mut conn = redis.connection().await;
    let page = &browser.client;
    open(page, &format!("{}#/tasks", relay.http_url())).await;
    wait(page, loaded("tasks"), LIVE).await;
    let start = page
        .execute("return document.activeElement === document.body;", vec![])
        .await
        .unwrap();
    assert_eq!(
        start,
        Value::Bool(true),
        "nothing is focused at the page's start"
    );

    // The first Tab lands in the navigation; a few more reach Dead letters.
    press(page, TAB).await;
    let (id, _) = focused(page).await;
    assert_eq!(id, "nav-agents", "the first Tab focuses the first nav link");
    let (presses, seen) = tab_until(page, 10, |id, _| id == "nav-dlq").await;
    println!("Tab order to nav-dlq: nav-agents, {seen:?} ({presses} more)");
    assert_eq!(seen, ["nav-tasks", "nav-dlq"], "the nav links in order");
    let outline = page
        .execute(
            "const s = getComputedStyle(document.activeElement);\
             return [s.outlineStyle, s.outlineWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert_ne!(
        outline[0], "none",
        "the focused nav link shows a focus ring"
    );

    // Enter follows the link: the hash and the view change.
    press(page, ENTER).await;
    wait(page, r#"#main[data-view="dlq"] #view-dlq"#, LIVE).await;
    wait(page, r#"#nav-dlq[aria-current="page"]"#, LIVE).await;
    let hash = page.execute("return location.hash;", vec![]).await.unwrap();
    assert!(
        hash.as_str().unwrap().starts_with("#/dlq"),
        "the hash after Enter: {hash}"
    );
    let row = r#"#dlq-list[data-loaded="true"] li.letter"#;
    wait(page, row, LIVE).await;
    let dlq_id = attr(page, row, "data-dlq-id").await.unwrap();

    // On through the DLQ view to the letter's Retry button; Enter asks first.
    let (presses, seen) = tab_until(page, 60, |_, class| {
        class.split_whitespace().any(|c| c == "letter-retry")
    })
    .await;
    println!("Tab order to .letter-retry ({presses}): {seen:?}");
    press(page, ENTER).await;
    let message = wait(page, "#confirm-dialog #confirm-message", LIVE)
        .await
        .text()
        .await
        .unwrap();
    assert!(message.contains(&dlq_id), "{message}");
    let (id, _) = focused(page).await;
    assert_eq!(id, "confirm-ok", "the dialog takes the focus");
    browser.screenshot("dashboard-keyboard-confirm").await;

    // Escape cancels: the dialog closes and the letter stays.
    press(page, ESCAPE).await;
    wait_count(page, "#confirm-dialog", 0, LIVE).await;
    wait(page, &format!(r#"li.letter[data-dlq-id="{dlq_id}"]"#), LIVE).await;
    assert_eq!(xlen(&mut conn, DLQ).await, 1, "Escape retried nothing");
    wait(page, r#"#main[data-view="dlq"] #view-dlq"#, LIVE).await;
    browser.close().await;
}
