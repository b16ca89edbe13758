//! Headless Chromium driven over WebDriver (chromedriver on a free loopback port).

use crate::process::Spawned;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A chromedriver process and one browser session on it; the session is closed and the
/// driver killed on drop (the driver takes its Chromium with it).
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    _driver: Spawned,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile, 1280×800.
    pub async fn start() -> Self {
        Self::start_with_args(&[]).await
    }

    /// Like [`Browser::start`], with `extra` appended to Chromium's command line (e.g.
    /// `--blink-settings=preferredColorScheme=0` for a system that prefers dark).
    pub async fn start_with_args(extra: &[&str]) -> Self {
        let install = "apt-get install -y chromium chromium-driver (cargo xtask test does it)";
        let driver_bin = crate::tool(
            "CHROMEDRIVER",
            &["chromedriver", "/usr/bin/chromedriver"],
            install,
        );
        let chromium = crate::tool("CHROMIUM", &["chromium", "/usr/bin/chromium"], install);
        let (driver, port) = start_driver(&driver_bin);
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
                // Pages may read the clipboard back (the payload viewer's copy test).
                "prefs": {
                    "profile.content_settings.exceptions.clipboard": {
                        "*,*": {"setting": 1}
                    }
                },
            },
        });
        let caps = match caps {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("built as an object"),
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        Self {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    /// Like [`Browser::start`], resolving each of `names` (e.g. `evil.example`) to
    /// 127.0.0.1 (Chromium's `--host-resolver-rules`): pages on other sites, or a
    /// DNS-rebinding name, served on loopback.
    pub async fn start_resolving(names: &[&str]) -> Self {
        let rules: Vec<String> = names.iter().map(|n| format!("MAP {n} 127.0.0.1")).collect();
        let arg = format!("--host-resolver-rules={}", rules.join(","));
        Self::start_with_args(&[&arg]).await
    }

    /// Saves a screenshot as `target/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = crate::workspace_root().join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshots dir");
        let path = dir.join(format!("{name}.png"));
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Ends the session (the driver is killed when `self` drops).
    pub async fn close(self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.clone().close()).await;
    }
}

fn start_driver(bin: &PathBuf) -> (Spawned, u16) {
    for _ in 0..5 {
        let port = crate::free_port();
        let mut driver = Spawned::spawn(
            &format!("chromedriver:{port}"),
            Command::new(bin).args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()]),
        )
        .expect("spawn chromedriver");
        if driver
            .wait_for_line("started successfully", Duration::from_secs(10))
            .is_ok()
        {
            return (driver, port);
        }
    }
    panic!("chromedriver did not start on a free port after 5 tries");
}

/// Page load and wasm start-up: how long a test waits for the dashboard to connect.
pub const LOAD: Duration = Duration::from_secs(20);

/// Anything live after the page load.
pub const LIVE: Duration = Duration::from_secs(15);

/// `data-task-id` of every element matching `css`, in page order.
pub async fn task_ids(page: &Client, css: &str) -> Vec<String> {
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

/// The dashboard's connection state once it is connected to the relay.
pub const CONNECTED: &str = r#"#conn-state[data-state="connected"]"#;

/// Opens the dashboard at `url` and waits (up to [`LOAD`]) until it is connected.
pub async fn open(page: &Client, url: &str) {
    page.goto(url).await.expect("open the dashboard");
    wait_for(page, CONNECTED, LOAD, "the dashboard connects to the relay").await;
}

/// Opens the dashboard at `url`, connected, types `agent` into its watch box and
/// waits (up to [`LOAD`]) until the relay confirms the subscription.
pub async fn open_and_watch(page: &Client, url: &str, agent: &str) {
    open(page, url).await;
    page.find(Locator::Css("#agent-input"))
        .await
        .unwrap()
        .send_keys(agent)
        .await
        .unwrap();
    page.find(Locator::Css("#watch-btn"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let watching = format!(r#"#watching[data-agent="{agent}"]"#);
    wait_for(page, &watching, LOAD, "the relay confirms the subscription").await;
}

/// Waits (polling the page, no sleep) for an element matching `css`.
pub async fn wait(page: &Client, css: &str, timeout: Duration) -> Element {
    wait_for(page, css, timeout, &format!("waiting {timeout:?}")).await
}

/// Waits like [`wait`]; a timeout fails the test with `what` (what the test waited
/// for).
pub async fn wait_for(page: &Client, css: &str, timeout: Duration, what: &str) -> Element {
    page.wait()
        .at_most(timeout)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{what} ({css}): {e}"))
}

/// How many elements match `css` now.
pub async fn count(page: &Client, css: &str) -> usize {
    page.find_all(Locator::Css(css)).await.unwrap().len()
}

/// Waits until exactly `n` elements match `css`.
pub async fn wait_count(page: &Client, css: &str, n: usize, timeout: Duration) {
    let start = Instant::now();
    loop {
        let found = count(page, css).await;
        if found == n {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "{css}: {found} elements after {timeout:?}, expected {n}"
        );
    }
}

/// Waits for `css`, then clicks it.
pub async fn click(page: &Client, css: &str, timeout: Duration) {
    wait(page, css, timeout)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// The attribute `name` of the first element matching `css` (`None`: no such element
/// or attribute).
pub async fn attr(page: &Client, css: &str, name: &str) -> Option<String> {
    match page.find(Locator::Css(css)).await {
        Ok(element) => element.attr(name).await.ok().flatten(),
        Err(_) => None,
    }
}

/// Waits until the text of the first element matching `css` satisfies `ok`; returns it.
pub async fn wait_text(
    page: &Client,
    css: &str,
    timeout: Duration,
    ok: impl Fn(&str) -> bool,
) -> String {
    let start = Instant::now();
    loop {
        let text = match page.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if ok(&text) {
            return text;
        }
        assert!(
            start.elapsed() < timeout,
            "{css}: text {text:?} after {timeout:?}"
        );
    }
}
