//! The relay's configuration: command-line flags, each overridable by an environment
//! variable. Every field documents its default and its variable.

use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Configuration of one relay process.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cortex-relay",
    version,
    about = "Cortex Relay: Redis Streams to WebSocket, with a dashboard"
)]
pub struct Config {
    /// Address to serve HTTP and WebSocket on; port 0 picks a free port (the bound
    /// address is printed). Default `127.0.0.1:8080`; env `CORTEX_LISTEN`.
    #[arg(long, env = "CORTEX_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Redis to use, e.g. `redis://127.0.0.1:6379/0` or `redis+unix:///run/redis.sock`.
    /// Default: none, meaning use a Redis answering on 127.0.0.1:6379 if there is one,
    /// else start a private `redis-server` (the embedded default). Env `CORTEX_REDIS_URL`.
    #[arg(long, env = "CORTEX_REDIS_URL")]
    pub redis_url: Option<String>,

    /// The Redis looked for when no `--redis-url` is given: if it answers, it is used;
    /// else a managed redis-server is started. Default `redis://127.0.0.1:6379/`;
    /// env `CORTEX_LOCAL_REDIS_URL`.
    #[arg(
        long,
        env = "CORTEX_LOCAL_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/"
    )]
    pub local_redis_url: String,

    /// Directory of the built dashboard (trunk's `dist`), served at `/`.
    /// Default: `dist` at the root of the source tree; env `CORTEX_DASHBOARD_DIR`.
    #[arg(long, env = "CORTEX_DASHBOARD_DIR", default_value = default_dashboard_dir())]
    pub dashboard_dir: PathBuf,

    /// Where the managed redis-server keeps its data and socket. Default
    /// `$XDG_STATE_HOME/cortex-relay`, else `~/.local/state/cortex-relay`;
    /// env `CORTEX_STATE_DIR`.
    #[arg(long, env = "CORTEX_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// The `redis-server` program to start when managing Redis. Default `redis-server`
    /// (looked up on PATH); env `CORTEX_REDIS_SERVER`.
    #[arg(long, env = "CORTEX_REDIS_SERVER", default_value = "redis-server")]
    pub redis_server_bin: PathBuf,

    /// How long one blocking stream read waits in Redis before it is reissued, in
    /// milliseconds. Default 5000; env `CORTEX_BLOCK_MS`.
    #[arg(long, env = "CORTEX_BLOCK_MS", default_value_t = 5000)]
    pub block_ms: u64,

    /// Largest WebSocket message a client may send, in bytes. Default 65536;
    /// env `CORTEX_MAX_MESSAGE_BYTES`.
    #[arg(long, env = "CORTEX_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Frames queued for one WebSocket client before it is disconnected as too slow
    /// (it then reconnects and resumes). Default 1024; env `CORTEX_SEND_QUEUE`.
    #[arg(long, env = "CORTEX_SEND_QUEUE", default_value_t = 1024)]
    pub send_queue: usize,

    /// Consume mode: a task not acked this many milliseconds after delivery is
    /// delivered again. Default 30000; env `CORTEX_VISIBILITY_TIMEOUT_MS`.
    #[arg(long, env = "CORTEX_VISIBILITY_TIMEOUT_MS", default_value_t = 30_000)]
    pub visibility_timeout_ms: u64,

    /// Consume mode: deliveries before a task goes to the dead letter queue.
    /// Default 3; env `CORTEX_MAX_DELIVERIES`.
    #[arg(long, env = "CORTEX_MAX_DELIVERIES", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_deliveries: u64,

    /// Consume mode: tasks delivered and not yet acked per consumer connection.
    /// Default 32; env `CORTEX_PREFETCH`.
    #[arg(long, env = "CORTEX_PREFETCH", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..10_000))]
    pub prefetch: u64,

    /// Log format: `text` or `json`. Default `text`; env `CORTEX_LOG_FORMAT`.
    /// The level is set with `RUST_LOG` (default `info`).
    #[arg(long, env = "CORTEX_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn default_dashboard_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../dist")
}

impl Config {
    /// How long a blocking read waits in Redis.
    pub fn block(&self) -> Duration {
        Duration::from_millis(self.block_ms)
    }

    /// The consume-mode delivery settings.
    pub fn delivery(&self) -> crate::bridge::consumer::DeliverySettings {
        crate::bridge::consumer::DeliverySettings {
            visibility: Duration::from_millis(self.visibility_timeout_ms),
            max_deliveries: self.max_deliveries,
            prefetch: self.prefetch as usize,
            block: self.block(),
        }
    }

    /// The state directory, with its default applied.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return dir.clone();
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("cortex-relay")
    }

    /// A configuration for tests and embedding: defaults, listening on `listen`,
    /// using `redis_url`.
    pub fn for_redis(listen: SocketAddr, redis_url: impl Into<String>) -> Self {
        let mut config = Self::parse_from(["cortex-relay"]);
        config.listen = listen;
        config.redis_url = Some(redis_url.into());
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::try_parse_from(["cortex-relay"]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.block(), Duration::from_secs(5));
        assert_eq!(c.max_message_bytes, 65536);
        assert!(c.dashboard_dir.ends_with("dist"));
    }

    #[test]
    fn flags_override_and_bad_values_are_named() {
        let c = Config::try_parse_from([
            "cortex-relay",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            "redis://127.0.0.1:7000",
        ])
        .unwrap();
        assert_eq!(c.listen.port(), 0);
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:7000"));
        let err = Config::try_parse_from(["cortex-relay", "--listen", "nowhere"]).unwrap_err();
        assert!(err.to_string().contains("--listen"), "{err}");
    }
}
