//! The real `cortex-relay` binary, bound to `127.0.0.1:0`.

use crate::process::Spawned;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A running relay, killed on drop.
#[derive(Debug)]
pub struct Relay {
    process: Spawned,
    addr: String,
    /// The arguments it was started with, for [`Relay::restart`].
    args: Vec<String>,
    /// The config file given by [`Relay::start_with_config`], kept while it runs.
    config: Option<tempfile::NamedTempFile>,
}

/// The relay binary: `$CORTEX_RELAY_BIN`, else `cortex-relay` next to the test's
/// target directory (built by `cargo build -p cortex-relay`).
pub fn relay_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CORTEX_RELAY_BIN") {
        return PathBuf::from(path);
    }
    // The test runs as target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("cortex-relay"))
        .expect("target dir");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build -p cortex-relay` (cargo xtask test does it) \
         or set CORTEX_RELAY_BIN",
        bin.display()
    );
    bin
}

/// The built dashboard: `$CORTEX_DASHBOARD_DIR`, else `dist/` at the workspace root.
pub fn dashboard_dir() -> PathBuf {
    std::env::var_os("CORTEX_DASHBOARD_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("dist"))
}

/// Fails unless [`dashboard_dir`] holds a built dashboard, saying how to build it.
pub fn assert_dashboard_built() {
    assert!(
        dashboard_dir().join("index.html").is_file(),
        "{} has no built dashboard: run `cargo xtask web` (cargo xtask test does it)",
        dashboard_dir().display()
    );
}

impl Relay {
    /// Starts the relay on a free port with Redis at `redis_url`, and waits until it
    /// listens.
    pub fn start(redis_url: &str) -> Self {
        Self::start_with(redis_url, "127.0.0.1:0", &[])
    }

    /// Starts the relay listening on `listen` (e.g. the address of a relay that was
    /// stopped, to restart it in place), with extra flags.
    pub fn start_with(redis_url: &str, listen: &str, extra: &[&str]) -> Self {
        let mut args = vec!["--listen", listen, "--redis-url", redis_url];
        args.extend_from_slice(extra);
        Self::spawn(&args)
    }

    /// Starts the relay on a free port with a config file holding `yaml` (e.g.
    /// [`crate::fixtures::tokens_config`]), and extra flags.
    pub fn start_with_config(redis_url: &str, yaml: &str, extra: &[&str]) -> Self {
        let mut config = tempfile::NamedTempFile::new().expect("config file");
        config.write_all(yaml.as_bytes()).expect("write config");
        let path = config
            .path()
            .to_str()
            .expect("a UTF-8 temp path")
            .to_owned();
        let mut args = vec!["--config", path.as_str()];
        args.extend_from_slice(extra);
        let mut relay = Self::start_with(redis_url, "127.0.0.1:0", &args);
        relay.config = Some(config);
        relay
    }

    /// Starts the relay with exactly `args` (plus the dashboard directory unless they
    /// name one), and waits until it listens.
    pub fn spawn(args: &[&str]) -> Self {
        let mut command = Command::new(relay_bin());
        if !args.contains(&"--dashboard-dir") {
            command.arg("--dashboard-dir").arg(dashboard_dir());
        }
        let mut process = Spawned::spawn(
            "relay",
            command
                .args(args)
                .env("RUST_LOG", "info,cortex_relay=debug"),
        )
        .expect("spawn cortex-relay");
        let line = process
            .wait_for_line("listening on http://", Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("address in the listening line")
            .to_owned();
        Self {
            process,
            addr,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            config: None,
        }
    }

    /// Kills the relay if it still runs, then starts it again in place: on the same
    /// address, with the same arguments and config; waits until it listens.
    pub fn restart(&mut self) {
        self.process.kill();
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        match args.iter().position(|a| *a == "--listen") {
            Some(at) if at + 1 < args.len() => args[at + 1] = &self.addr,
            _ => args.extend(["--listen", &self.addr]),
        }
        let Self { process, addr, .. } = Self::spawn(&args);
        self.process = process;
        self.addr = addr;
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn http_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `ws://127.0.0.1:<port>/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The relay's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The underlying process.
    pub fn process(&mut self) -> &mut Spawned {
        &mut self.process
    }
}
