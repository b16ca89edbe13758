//! End-to-end harness: the real `redis-server`, the real `cortex-relay` binary and a
//! real headless Chromium, each started on a free loopback port and stopped on drop.
//!
//! - [`redis`]: [`redis::RedisServer`], a throwaway `redis-server` in a temp dir.
//! - [`relay`]: [`relay::Relay`], the relay binary bound to `127.0.0.1:0`.
//! - [`ws`]: [`ws::WsClient`], a WebSocket client that speaks JSON frames.
//! - [`browser`]: [`browser::Browser`], chromedriver + headless Chromium via WebDriver,
//!   and the page helpers the browser tests share ([`browser::open`], [`browser::wait`],
//!   [`browser::click`], …).
//! - [`fixtures`]: tasks, heartbeats and dead letters written to Redis in the README's Redis
//!   layout and read back; a relay config with a token per role.
//! - [`http`]: a plain GET, for probes; JSON API calls; raw bytes, for malformed
//!   requests.
//! - [`proxy`]: [`proxy::Proxy`], a TCP proxy that can reset the connections through it.
//! - [`stack`]: [`stack::start`], a redis-server, a relay on it and a browser at once.
//! - [`page`]: [`page::PageServer`], a page of another site on a loopback port.
//! - [`machine`]: [`machine::heavy`] and [`machine::timing`], guards that keep CPU-heavy
//!   tests apart from each other and from tests that depend on prompt scheduling, now
//!   that every end-to-end test shares one test binary.
//!
//! Nothing here sleeps to synchronise: every wait is for an event (a log line, a frame,
//! an element) with a timeout, or ([`eventually`]) for a state only a server can tell.
//! A missing tool fails the test with the command that installs it.

pub mod browser;
pub mod fixtures;
pub mod http;
pub mod machine;
pub mod page;
pub mod process;
pub mod proxy;
pub mod redis;
pub mod relay;
pub mod stack;
pub mod ws;

use std::path::PathBuf;

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A free TCP port on 127.0.0.1 (the OS picks one; it is released before use, so a
/// caller that fails to bind it should pick again).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The path of a tool: `$VAR` if set, else the first of `candidates` that exists, else
/// a panic that names the command installing it.
pub fn tool(var: &str, candidates: &[&str], install: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        return PathBuf::from(path);
    }
    for candidate in candidates {
        let path = PathBuf::from(candidate);
        if path.is_file() {
            return path;
        }
        if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(candidate))
                .find(|p| p.is_file())
        }) {
            return found;
        }
    }
    panic!(
        "{} not found (set ${var}); install it with: {install}",
        candidates[0]
    );
}

/// Asks `check` until it answers `Some`, for up to `timeout`; `None` if it never did.
/// For a state only Redis or a process can tell (a group's pending count, a file),
/// with no event to wait on: each ask follows the last by a few milliseconds.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
