//! The relay's configuration, in three layers: a YAML file (`--config`; the original
//! `messaging:` section is accepted as it is, our keys sit in `relay:`), overridden by
//! environment variables, overridden by flags. Every field documents its default and
//! its variable. An unknown key or a bad value stops start-up with a message naming it.

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Configuration of one relay process.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "cortex-relay",
    version,
    about = "Cortex Relay: Redis Streams to WebSocket, with a dashboard"
)]
pub struct Config {
    /// A YAML configuration file; its values are overridden by environment variables
    /// and flags. Default: none; env `CORTEX_CONFIG`.
    #[arg(long, env = "CORTEX_CONFIG")]
    pub config: Option<PathBuf>,

    /// Print the effective configuration (secrets masked) and exit.
    #[arg(long)]
    pub print_config: bool,

    /// An operator command (publish, tail, heartbeat, dlq, replay) to run instead of
    /// serving; see `cortex-relay help <command>`. Default: none, the relay serves.
    #[command(subcommand)]
    pub command: Option<crate::cli::Command>,

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

    /// WebSocket origins allowed besides the relay's own and localhost (any port),
    /// e.g. `https://ops.example.org`; `*` allows any. Default: none; env
    /// `CORTEX_ALLOWED_ORIGINS` (comma-separated).
    #[arg(
        long = "allowed-origin",
        env = "CORTEX_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// A host name the relay is reached by (e.g. `relay.example.org`, behind a proxy
    /// or in DNS), besides IP addresses and loopback names (`localhost`,
    /// `*.localhost`); a request for any other name (what a DNS-rebinding page sends)
    /// is refused with 421. Repeatable. Default: none; env `CORTEX_PUBLIC_HOSTS`
    /// (comma-separated).
    #[arg(
        long = "public-host",
        env = "CORTEX_PUBLIC_HOSTS",
        value_delimiter = ','
    )]
    pub public_hosts: Vec<String>,

    /// Serve on a non-loopback address without any token configured (anyone who can
    /// reach it may do anything). Default false; env `CORTEX_ALLOW_REMOTE`.
    #[arg(long, env = "CORTEX_ALLOW_REMOTE")]
    pub allow_remote: bool,

    /// A YAML file with the bearer tokens: a list of `{token, role, agents}`. Default:
    /// none; env `CORTEX_TOKEN_FILE`.
    #[arg(long, env = "CORTEX_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Bearer tokens, from the config file's `relay.tokens` and the token file (never
    /// from flags or the environment, where other users could read them).
    #[arg(skip)]
    pub tokens: Vec<TokenSpec>,

    /// WebSocket connections the relay holds at most; more are refused with 503.
    /// Default 20000; env `CORTEX_MAX_CONNECTIONS`.
    #[arg(long, env = "CORTEX_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,

    /// Most subscriptions (watch targets) one connection may hold. Default 64;
    /// env `CORTEX_MAX_SUBSCRIPTIONS`.
    #[arg(long, env = "CORTEX_MAX_SUBSCRIPTIONS", default_value_t = 64)]
    pub max_subscriptions: usize,

    /// Client frames per second one connection may send (a burst of as many is
    /// allowed); beyond it each frame is dropped with a `rate_limited` error.
    /// Default 2000 (an agent acking at full speed stays under it);
    /// env `CORTEX_MAX_FRAMES_PER_SECOND`.
    #[arg(long, env = "CORTEX_MAX_FRAMES_PER_SECOND", default_value_t = 2000)]
    pub max_frames_per_second: u32,

    /// How often the relay pings each WebSocket client, in milliseconds; a client
    /// silent for two intervals is disconnected. Default 30000;
    /// env `CORTEX_PING_INTERVAL_MS`.
    #[arg(long, env = "CORTEX_PING_INTERVAL_MS", default_value_t = 30_000)]
    pub ping_interval_ms: u64,

    /// Trim each task stream to about this many entries (approximate MAXLEN), never
    /// removing an entry still pending or not yet delivered in any group. Default:
    /// no trimming; env `CORTEX_TRIM_MAXLEN`.
    #[arg(long, env = "CORTEX_TRIM_MAXLEN")]
    pub trim_maxlen: Option<u64>,

    /// Presence: an agent whose last heartbeat is older than this many milliseconds
    /// is `stale`. Default 30000; env `CORTEX_PRESENCE_STALE_MS`.
    #[arg(long, env = "CORTEX_PRESENCE_STALE_MS", default_value_t = 30_000)]
    pub presence_stale_ms: u64,

    /// Presence: an agent whose last heartbeat is older than this many milliseconds
    /// is `offline` (at most `presence_stale_ms` means straight to offline).
    /// Default 120000; env `CORTEX_PRESENCE_OFFLINE_MS`.
    #[arg(long, env = "CORTEX_PRESENCE_OFFLINE_MS", default_value_t = 120_000)]
    pub presence_offline_ms: u64,

    /// `/api/v1/agents`: a consumer that has not read or claimed for this many
    /// milliseconds counts as dead (a relay's consumers do so at least every
    /// max(block_ms, visibility_timeout_ms / 2)). Default 60000;
    /// env `CORTEX_CONSUMER_DEAD_AFTER_MS`.
    #[arg(long, env = "CORTEX_CONSUMER_DEAD_AFTER_MS", default_value_t = 60_000)]
    pub consumer_dead_after_ms: u64,

    /// Consumers idle this many milliseconds with nothing pending are removed from
    /// their group on every task stream (a connection's own consumer is removed when
    /// it ends; this takes those left behind); 0: never. Agents' groups only (see
    /// `consumer_reap_foreign`). Default 3600000 (an hour); env
    /// `CORTEX_CONSUMER_REAP_AFTER_MS`.
    #[arg(
        long,
        env = "CORTEX_CONSUMER_REAP_AFTER_MS",
        default_value_t = 3_600_000
    )]
    pub consumer_reap_after_ms: u64,

    /// The consumer reaper also removes idle consumers of groups that are not an
    /// agent's (`agent:<name>`), such as the plan's shared `agents` group. Default
    /// false; env `CORTEX_CONSUMER_REAP_FOREIGN`.
    #[arg(long, env = "CORTEX_CONSUMER_REAP_FOREIGN")]
    pub consumer_reap_foreign: bool,

    /// DLQ length above which DLQ stats and metrics raise a warning
    /// (`over_warn_length`). Default 1000; env `CORTEX_DLQ_WARN_LENGTH`.
    #[arg(long, env = "CORTEX_DLQ_WARN_LENGTH", default_value_t = 1000)]
    pub dlq_warn_length: u64,

    /// The task API: entries of each task stream, newest first, searched for a task id
    /// that has no lifecycle records (see README, "Tasks and traces"); 0 searches
    /// none. Default 10000; env `CORTEX_TASK_SCAN_ENTRIES`.
    #[arg(long, env = "CORTEX_TASK_SCAN_ENTRIES", default_value_t = 10_000)]
    pub task_scan_entries: u64,

    /// Log format: `text` or `json`. Default `text`; env `CORTEX_LOG_FORMAT`.
    /// The level is set with `RUST_LOG` (default `info`).
    #[arg(long, env = "CORTEX_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// The task lifecycle record (README, Task lifecycle).
    #[command(flatten)]
    pub lifecycle: LifecycleArgs,
}

/// The task lifecycle record's flags (also taken by the `cortex` operator binary, whose
/// publish and DLQ actions on Redis write records too).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct LifecycleArgs {
    /// Write the task lifecycle record (`cortex:lifecycle`, `cortex:task:<id>`,
    /// `cortex:trace:<id>`): `on` or `off`. Default `on`; env `CORTEX_LIFECYCLE`
    /// (file: `relay.lifecycle.enabled`).
    #[arg(long = "lifecycle", env = "CORTEX_LIFECYCLE", value_enum,
          default_value_t = OnOff::On, global = true)]
    pub lifecycle: OnOff,

    /// `cortex:lifecycle` is capped at about this many entries (`MAXLEN ~`).
    /// Default 100000; env `CORTEX_LIFECYCLE_MAX_LEN` (file: `relay.lifecycle.max_len`).
    #[arg(long, env = "CORTEX_LIFECYCLE_MAX_LEN", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub lifecycle_max_len: u64,

    /// Lifecycle records are kept this many seconds: task lists and trace sets expire
    /// this long after their last write, and older stream entries are trimmed.
    /// Default 3600; env `CORTEX_LIFECYCLE_MAX_AGE_SECS`
    /// (file: `relay.lifecycle.max_age_secs`).
    #[arg(long, env = "CORTEX_LIFECYCLE_MAX_AGE_SECS", default_value_t = 3600,
          value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub lifecycle_max_age_secs: u64,
}

impl LifecycleArgs {
    /// The store's settings.
    pub fn settings(&self) -> crate::store::lifecycle::LifecycleSettings {
        crate::store::lifecycle::LifecycleSettings {
            enabled: self.lifecycle == OnOff::On,
            max_len: self.lifecycle_max_len,
            max_age: Duration::from_secs(self.lifecycle_max_age_secs),
        }
    }
}

/// A switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
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
    pub fn delivery(&self) -> crate::consume::DeliverySettings {
        crate::consume::DeliverySettings {
            visibility: Duration::from_millis(self.visibility_timeout_ms),
            max_deliveries: self.max_deliveries,
            prefetch: self.prefetch as usize,
            block: self.block(),
        }
    }

    /// The lifecycle record's settings.
    pub fn lifecycle(&self) -> crate::store::lifecycle::LifecycleSettings {
        self.lifecycle.settings()
    }

    /// The presence thresholds.
    pub fn presence(&self) -> crate::engine::presence::PresenceSettings {
        crate::engine::presence::PresenceSettings {
            stale_after: Duration::from_millis(self.presence_stale_ms),
            offline_after: Duration::from_millis(self.presence_offline_ms),
        }
    }

    /// What the consumer reaper removes.
    pub fn reaper(&self) -> crate::engine::reaper::ReaperSettings {
        crate::engine::reaper::ReaperSettings {
            idle_after: (self.consumer_reap_after_ms > 0)
                .then(|| Duration::from_millis(self.consumer_reap_after_ms)),
            foreign: self.consumer_reap_foreign,
        }
    }

    /// What the operations API takes from the configuration.
    pub fn api(&self) -> crate::state::ApiSettings {
        let presence = self.presence();
        crate::state::ApiSettings {
            stale_after: presence.stale_after,
            offline_after: presence.offline_after,
            consumer_dead_after: Duration::from_millis(self.consumer_dead_after_ms),
            dlq_warn_length: self.dlq_warn_length,
            task_scan_entries: self.task_scan_entries,
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

pub use crate::auth::{Role, TokenSpec};

/// Why the configuration cannot be used. Each names the key or flag at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Flags or environment did not parse (clap's message names the flag).
    #[error("{0}")]
    Args(#[from] clap::Error),
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid YAML for our keys (the message names the key).
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// serde's message, with the key's path and location.
        message: String,
    },
    /// A value parsed but is not allowed.
    #[error("{key}: {message}")]
    Invalid {
        /// The key (`relay.tokens[0].agents`, `--listen`, ...).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The config file: the original `messaging:` section (README, Configuration) and our `relay:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    messaging: Option<SeedMessaging>,
    #[serde(default)]
    relay: Option<RelaySection>,
}

/// The original `messaging:` section of `config.yaml`, accepted as it is.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedMessaging {
    enabled: Option<bool>,
    redis_addr: Option<String>,
    redis_password: Option<String>,
    redis_db: Option<u32>,
    websocket_port: Option<u16>,
    enable_dlq: Option<bool>,
    enable_metrics: Option<bool>,
    priority_processing: Option<bool>,
}

/// Our keys: the flags' names in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelaySection {
    listen: Option<SocketAddr>,
    redis_url: Option<String>,
    local_redis_url: Option<String>,
    dashboard_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    redis_server_bin: Option<PathBuf>,
    block_ms: Option<u64>,
    max_message_bytes: Option<usize>,
    send_queue: Option<usize>,
    visibility_timeout_ms: Option<u64>,
    max_deliveries: Option<u64>,
    prefetch: Option<u64>,
    allowed_origins: Option<Vec<String>>,
    public_hosts: Option<Vec<String>>,
    allow_remote: Option<bool>,
    token_file: Option<PathBuf>,
    tokens: Option<Vec<TokenSpec>>,
    max_subscriptions: Option<usize>,
    max_connections: Option<usize>,
    max_frames_per_second: Option<u32>,
    ping_interval_ms: Option<u64>,
    trim_maxlen: Option<u64>,
    presence_stale_ms: Option<u64>,
    presence_offline_ms: Option<u64>,
    consumer_dead_after_ms: Option<u64>,
    consumer_reap_after_ms: Option<u64>,
    consumer_reap_foreign: Option<bool>,
    dlq_warn_length: Option<u64>,
    task_scan_entries: Option<u64>,
    log_format: Option<LogFormat>,
    lifecycle: Option<LifecycleSection>,
}

/// `relay.lifecycle`: the flags `--lifecycle`, `--lifecycle-max-len`,
/// `--lifecycle-max-age-secs`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleSection {
    enabled: Option<bool>,
    max_len: Option<u64>,
    max_age_secs: Option<u64>,
}

impl Config {
    /// The configuration of this process: flags, environment, and the file they name.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::args_os())
    }

    /// The configuration for the command line `args` (the first is the program).
    pub fn load_from<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command().try_get_matches_from(args)?;
        let mut config = Self::from_arg_matches(&matches)?;
        if let Some(path) = config.config.clone() {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let file: FileConfig =
                serde_norway::from_str(&text).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            config.apply_file(file, &matches)?;
        }
        if let Some(path) = config.token_file.clone() {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let tokens: Vec<TokenSpec> =
                serde_norway::from_str(&text).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            config.tokens.extend(tokens);
        }
        config.validate()?;
        Ok(config)
    }

    /// Takes each value from the file unless a flag or variable gave it.
    fn apply_file(&mut self, file: FileConfig, matches: &ArgMatches) -> Result<(), ConfigError> {
        let unset = |id: &str| {
            !matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        if let Some(seed) = file.messaging {
            if seed.enabled == Some(false) {
                return Err(invalid(
                    "messaging.enabled",
                    "is false: this relay is the messaging bus; remove the key or set it true",
                ));
            }
            if seed.enable_dlq == Some(false) {
                tracing::warn!(
                    "messaging.enable_dlq: false is ignored; failed tasks always go to the DLQ"
                );
            }
            // enable_metrics and priority_processing: metrics are always served and
            // priorities always honoured; the keys are accepted for compatibility.
            let _ = (seed.enable_metrics, seed.priority_processing);
            if unset("redis_url") && seed.redis_addr.is_some() {
                let addr = seed.redis_addr.unwrap_or_default();
                let auth = match seed.redis_password.as_deref() {
                    Some(p) if !p.is_empty() => format!(":{p}@"),
                    _ => String::new(),
                };
                self.redis_url = Some(format!(
                    "redis://{auth}{addr}/{}",
                    seed.redis_db.unwrap_or(0)
                ));
            }
            if let Some(port) = seed.websocket_port {
                if unset("listen") {
                    self.listen = SocketAddr::from(([127, 0, 0, 1], port));
                }
            }
        }
        let Some(r) = file.relay else {
            return Ok(());
        };
        macro_rules! take {
            ($field:ident) => {
                if let Some(value) = r.$field {
                    if unset(stringify!($field)) {
                        self.$field = value.into();
                    }
                }
            };
        }
        take!(listen);
        take!(local_redis_url);
        take!(dashboard_dir);
        take!(redis_server_bin);
        take!(block_ms);
        take!(max_message_bytes);
        take!(send_queue);
        take!(visibility_timeout_ms);
        take!(max_deliveries);
        take!(prefetch);
        take!(allow_remote);
        take!(max_subscriptions);
        take!(max_connections);
        take!(max_frames_per_second);
        take!(ping_interval_ms);
        take!(presence_stale_ms);
        take!(presence_offline_ms);
        take!(consumer_dead_after_ms);
        take!(consumer_reap_after_ms);
        take!(consumer_reap_foreign);
        take!(dlq_warn_length);
        take!(task_scan_entries);
        take!(log_format);
        if let Some(url) = r.redis_url {
            if unset("redis_url") {
                self.redis_url = Some(url);
            }
        }
        if let Some(dir) = r.state_dir {
            if unset("state_dir") {
                self.state_dir = Some(dir);
            }
        }
        if let Some(path) = r.token_file {
            if unset("token_file") {
                self.token_file = Some(path);
            }
        }
        if let Some(n) = r.trim_maxlen {
            if unset("trim_maxlen") {
                self.trim_maxlen = Some(n);
            }
        }
        if let Some(origins) = r.allowed_origins {
            if unset("allowed_origins") {
                self.allowed_origins = origins;
            }
        }
        if let Some(hosts) = r.public_hosts {
            if unset("public_hosts") {
                self.public_hosts = hosts;
            }
        }
        self.tokens.extend(r.tokens.unwrap_or_default());
        if let Some(l) = r.lifecycle {
            if let Some(enabled) = l.enabled {
                if unset("lifecycle") {
                    self.lifecycle.lifecycle = if enabled { OnOff::On } else { OnOff::Off };
                }
            }
            if let Some(n) = l.max_len {
                if unset("lifecycle_max_len") {
                    self.lifecycle.lifecycle_max_len = n;
                }
            }
            if let Some(n) = l.max_age_secs {
                if unset("lifecycle_max_age_secs") {
                    self.lifecycle.lifecycle_max_age_secs = n;
                }
            }
        }
        Ok(())
    }

    /// Checks what types alone cannot.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_deliveries == 0 {
            return Err(invalid("max_deliveries", "must be at least 1"));
        }
        if self.prefetch == 0 || self.prefetch > 10_000 {
            return Err(invalid("prefetch", "must be between 1 and 10000"));
        }
        if self.send_queue == 0 {
            return Err(invalid("send_queue", "must be at least 1"));
        }
        if self.max_message_bytes < 1024 {
            return Err(invalid("max_message_bytes", "must be at least 1024"));
        }
        if self.max_frames_per_second == 0 {
            return Err(invalid("max_frames_per_second", "must be at least 1"));
        }
        if self.ping_interval_ms < 100 {
            return Err(invalid("ping_interval_ms", "must be at least 100"));
        }
        if self.lifecycle.lifecycle_max_len == 0 {
            return Err(invalid("lifecycle.max_len", "must be at least 1"));
        }
        if self.lifecycle.lifecycle_max_age_secs == 0 {
            return Err(invalid("lifecycle.max_age_secs", "must be at least 1"));
        }
        if self.consumer_reap_after_ms != 0 && self.consumer_reap_after_ms < 2_000 {
            return Err(invalid(
                "consumer_reap_after_ms",
                "must be 0 (off) or at least 2000 (a relay's consumer says it is alive every second)",
            ));
        }
        if self.presence_stale_ms == 0 {
            return Err(invalid("presence_stale_ms", "must be at least 1"));
        }
        for host in &self.public_hosts {
            let name = host.trim_end_matches('.');
            let valid = !name.is_empty()
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !valid {
                return Err(invalid(
                    "public_hosts",
                    format!(
                        "{host:?} is not a host name (e.g. relay.example.org, no scheme or port)"
                    ),
                ));
            }
        }
        if let Some(url) = &self.redis_url {
            redis::Client::open(url.as_str())
                .map_err(|e| invalid("redis_url", format!("{:?}: {e}", mask_url(url))))?;
        }
        for (i, spec) in self.tokens.iter().enumerate() {
            let key = |field: &str| format!("tokens[{i}].{field}");
            if spec.token.len() < 16 {
                return Err(invalid(&key("token"), "must be at least 16 characters"));
            }
            if spec.role == Role::Agent && spec.agents.is_empty() {
                return Err(invalid(
                    &key("agents"),
                    "an agent token must list its agents",
                ));
            }
            for agent in &spec.agents {
                cortex_shared::AgentName::parse(agent)
                    .map_err(|e| invalid(&key("agents"), format!("{agent:?}: {e}")))?;
            }
        }
        if !self.listen.ip().is_loopback() && self.tokens.is_empty() && !self.allow_remote {
            return Err(invalid(
                "listen",
                format!(
                    "{} is not a loopback address and no token is configured; configure \
                     tokens, or pass --allow-remote to serve it without authentication",
                    self.listen
                ),
            ));
        }
        Ok(())
    }

    /// The effective configuration as YAML in the file's shape, secrets masked.
    pub fn to_yaml_masked(&self) -> String {
        #[derive(Serialize)]
        struct Shown<'a> {
            relay: ShownRelay<'a>,
        }
        #[derive(Serialize)]
        struct ShownRelay<'a> {
            listen: SocketAddr,
            redis_url: Option<String>,
            local_redis_url: &'a str,
            dashboard_dir: &'a Path,
            state_dir: PathBuf,
            redis_server_bin: &'a Path,
            block_ms: u64,
            max_message_bytes: usize,
            send_queue: usize,
            visibility_timeout_ms: u64,
            max_deliveries: u64,
            prefetch: u64,
            allowed_origins: &'a [String],
            public_hosts: &'a [String],
            allow_remote: bool,
            token_file: Option<&'a Path>,
            tokens: Vec<TokenSpec>,
            max_subscriptions: usize,
            max_connections: usize,
            max_frames_per_second: u32,
            ping_interval_ms: u64,
            trim_maxlen: Option<u64>,
            presence_stale_ms: u64,
            presence_offline_ms: u64,
            consumer_dead_after_ms: u64,
            consumer_reap_after_ms: u64,
            consumer_reap_foreign: bool,
            dlq_warn_length: u64,
            task_scan_entries: u64,
            log_format: LogFormat,
            lifecycle: ShownLifecycle,
        }
        #[derive(Serialize)]
        struct ShownLifecycle {
            enabled: bool,
            max_len: u64,
            max_age_secs: u64,
        }
        let shown = Shown {
            relay: ShownRelay {
                listen: self.listen,
                redis_url: self.redis_url.as_deref().map(mask_url),
                local_redis_url: &self.local_redis_url,
                dashboard_dir: &self.dashboard_dir,
                state_dir: self.state_dir(),
                redis_server_bin: &self.redis_server_bin,
                block_ms: self.block_ms,
                max_message_bytes: self.max_message_bytes,
                send_queue: self.send_queue,
                visibility_timeout_ms: self.visibility_timeout_ms,
                max_deliveries: self.max_deliveries,
                prefetch: self.prefetch,
                allowed_origins: &self.allowed_origins,
                public_hosts: &self.public_hosts,
                allow_remote: self.allow_remote,
                token_file: self.token_file.as_deref(),
                tokens: self
                    .tokens
                    .iter()
                    .map(|t| TokenSpec {
                        token: "********".into(),
                        ..t.clone()
                    })
                    .collect(),
                max_subscriptions: self.max_subscriptions,
                max_connections: self.max_connections,
                max_frames_per_second: self.max_frames_per_second,
                ping_interval_ms: self.ping_interval_ms,
                trim_maxlen: self.trim_maxlen,
                presence_stale_ms: self.presence_stale_ms,
                presence_offline_ms: self.presence_offline_ms,
                consumer_dead_after_ms: self.consumer_dead_after_ms,
                consumer_reap_after_ms: self.consumer_reap_after_ms,
                consumer_reap_foreign: self.consumer_reap_foreign,
                dlq_warn_length: self.dlq_warn_length,
                task_scan_entries: self.task_scan_entries,
                log_format: self.log_format,
                lifecycle: ShownLifecycle {
                    enabled: self.lifecycle.lifecycle == OnOff::On,
                    max_len: self.lifecycle.lifecycle_max_len,
                    max_age_secs: self.lifecycle.lifecycle_max_age_secs,
                },
            },
        };
        serde_norway::to_string(&shown).unwrap_or_else(|e| format!("# cannot show: {e}\n"))
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

pub use crate::store::mask_url;

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
    fn public_hosts_from_flags_and_the_file_and_bad_ones_named() {
        let c = load(&[
            "--public-host",
            "relay.example.org",
            "--public-host",
            "ops.lan",
        ])
        .unwrap();
        assert_eq!(c.public_hosts, ["relay.example.org", "ops.lan"]);
        let file = write("relay:\n  public_hosts: [relay.example.org.]\n");
        let c = load(&["--config", file.0.to_str().unwrap()]).unwrap();
        assert_eq!(c.public_hosts, ["relay.example.org."]);
        assert!(c.to_yaml_masked().contains("relay.example.org."));
        for bad in [
            "https://relay.example.org",
            "relay.example.org:8080",
            "",
            "a..b",
            "x/y",
        ] {
            let err = load(&["--public-host", bad]).unwrap_err();
            assert!(
                err.to_string().starts_with("public_hosts: "),
                "{bad:?}: {err}"
            );
        }
    }

    fn write(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::new(text)
    }

    /// A file in the temp dir, removed on drop (no extra crate for one test helper).
    mod tempfile_path {
        pub(super) struct TempPath(pub(super) std::path::PathBuf);
        impl TempPath {
            pub(super) fn new(text: &str) -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "cortex-config-{}-{}.yaml",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::write(&path, text).unwrap();
                Self(path)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn load(args: &[&str]) -> Result<Config, ConfigError> {
        Config::load_from(std::iter::once("cortex-relay").chain(args.iter().copied()))
    }

    #[test]
    fn the_consumer_reaper_from_flags_and_the_file() {
        use crate::engine::reaper::ReaperSettings;
        let c = load(&[]).unwrap();
        assert_eq!(
            c.reaper(),
            ReaperSettings {
                idle_after: Some(Duration::from_secs(3600)),
                foreign: false
            }
        );
        let file = write("relay:\n  consumer_reap_after_ms: 5000\n  consumer_reap_foreign: true\n");
        let path = file.0.to_str().unwrap();
        let c = load(&["--config", path]).unwrap();
        assert_eq!(c.reaper().idle_after, Some(Duration::from_secs(5)));
        assert!(c.reaper().foreign);
        let c = load(&["--config", path, "--consumer-reap-after-ms", "0"]).unwrap();
        assert_eq!(c.reaper().idle_after, None, "0 is off; the flag wins");
        let err = load(&["--consumer-reap-after-ms", "1000"]).unwrap_err();
        assert!(err.to_string().contains("consumer_reap_after_ms"), "{err}");
    }

    #[test]
    fn the_original_config_yaml_is_accepted_as_it_is() {
        let file = write(
            "messaging:\n  enabled: true\n  redis_addr: \"127.0.0.1:6379\"\n  redis_password: \"\"\n  \
             redis_db: 0\n  websocket_port: 18889\n  enable_dlq: true\n  enable_metrics: true\n  \
             priority_processing: true\n",
        );
        let c = load(&["--config", file.0.to_str().unwrap()]).unwrap();
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379/0"));
        assert_eq!(c.listen, "127.0.0.1:18889".parse().unwrap());
    }

    #[test]
    fn file_then_env_then_flags() {
        let file = write("relay:\n  block_ms: 1000\n  prefetch: 7\n  max_deliveries: 5\n");
        let path = file.0.to_str().unwrap();
        let c = load(&["--config", path]).unwrap();
        assert_eq!((c.block_ms, c.prefetch, c.max_deliveries), (1000, 7, 5));
        // A flag beats the file. (The environment's place between them is tested end
        // to end, with the binary, in tests/tests/e2e/service.rs.)
        let c = load(&["--config", path, "--prefetch", "9"]).unwrap();
        assert_eq!((c.block_ms, c.prefetch), (1000, 9));
    }

    #[test]
    fn the_lifecycle_from_the_file_the_environment_and_flags() {
        let c = load(&[]).unwrap();
        assert_eq!(
            c.lifecycle(),
            crate::store::lifecycle::LifecycleSettings::default()
        );
        let file = write(
            "relay:\n  lifecycle:\n    enabled: false\n    max_len: 50\n    max_age_secs: 60\n",
        );
        let path = file.0.to_str().unwrap();
        let c = load(&["--config", path]).unwrap();
        let l = c.lifecycle();
        assert_eq!(
            (l.enabled, l.max_len, l.max_age),
            (false, 50, Duration::from_secs(60))
        );
        assert!(c
            .to_yaml_masked()
            .contains("lifecycle:\n    enabled: false\n    max_len: 50\n"));
        let c = load(&[
            "--config",
            path,
            "--lifecycle",
            "on",
            "--lifecycle-max-len",
            "7",
        ])
        .unwrap();
        let l = c.lifecycle();
        assert_eq!(
            (l.enabled, l.max_len, l.max_age),
            (true, 7, Duration::from_secs(60))
        );
        // Also after a subcommand (the operator commands write records too).
        let c = load(&[
            "publish",
            "--to",
            "pink",
            "--type",
            "t",
            "--lifecycle",
            "off",
        ])
        .unwrap();
        assert!(!c.lifecycle().enabled);
        for (args, needle) in [
            (&["--lifecycle", "maybe"][..], "--lifecycle"),
            (&["--lifecycle-max-len", "0"][..], "--lifecycle-max-len"),
            (
                &["--lifecycle-max-age-secs", "0"][..],
                "--lifecycle-max-age-secs",
            ),
        ] {
            let err = load(args).unwrap_err();
            assert!(err.to_string().contains(needle), "{args:?}: {err}");
        }
        for (text, needle) in [
            (
                "relay:\n  lifecycle:\n    enabled: sometimes\n",
                "lifecycle.enabled",
            ),
            (
                "relay:\n  lifecycle:\n    max_len: 0\n",
                "lifecycle.max_len",
            ),
            ("relay:\n  lifecycle:\n    max_age: 5\n", "max_age"),
        ] {
            let file = write(text);
            let err = load(&["--config", file.0.to_str().unwrap()]).unwrap_err();
            assert!(err.to_string().contains(needle), "{text:?} gave: {err}");
        }
    }

    #[test]
    fn bad_files_name_the_key() {
        for (text, needle) in [
            ("relay:\n  prefetchh: 3\n", "prefetchh"),
            ("relay:\n  listen: nowhere\n", "listen"),
            ("relay:\n  max_deliveries: 0\n", "max_deliveries"),
            ("relay:\n  block_ms: soon\n", "block_ms"),
            ("messaging:\n  enabled: false\n", "messaging.enabled"),
            ("messaging:\n  shiny: 1\n", "shiny"),
            (
                "relay:\n  tokens:\n  - {token: short, role: admin}\n",
                "tokens[0].token",
            ),
            (
                "relay:\n  tokens:\n  - {token: 0123456789abcdef, role: agent}\n",
                "tokens[0].agents",
            ),
            (
                "relay:\n  tokens:\n  - {token: 0123456789abcdef, role: boss}\n",
                "role",
            ),
        ] {
            let file = write(text);
            let err = load(&["--config", file.0.to_str().unwrap()]).unwrap_err();
            assert!(err.to_string().contains(needle), "{text:?} gave: {err}");
        }
        let err = load(&["--config", "/nonexistent/cortex.yaml"]).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/cortex.yaml"),
            "{err}"
        );
    }

    #[test]
    fn lists_where_mappings_belong_are_refused() {
        // serde's derive would take a list's items as the keys in order; the YAML
        // decoder refuses a sequence for a struct (JSON bodies and frames need
        // `cortex_shared::strict` for the same).
        for (text, needle) in [
            (
                "relay: [\"127.0.0.1:1\"]\n",
                "relay: invalid type: sequence",
            ),
            ("[{}]\n", "invalid type: sequence"),
            (
                "relay:\n  tokens:\n  - [0123456789abcdef, admin]\n",
                "relay.tokens[0]: invalid type: sequence",
            ),
            ("messaging: [true]\n", "messaging: invalid type: sequence"),
        ] {
            let file = write(text);
            let err = load(&["--config", file.0.to_str().unwrap()]).unwrap_err();
            assert!(err.to_string().contains(needle), "{text:?} gave: {err}");
        }
        let tokens = write("- [0123456789abcdef, admin]\n");
        let err = load(&["--token-file", tokens.0.to_str().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("invalid type: sequence"), "{err}");
        // Lists where lists belong are still lists.
        let file = write("relay:\n  allowed_origins: [\"http://a.example\"]\n");
        let c = load(&["--config", file.0.to_str().unwrap()]).unwrap();
        assert_eq!(c.allowed_origins, ["http://a.example"]);
    }

    #[test]
    fn remote_listen_needs_tokens_or_allow_remote() {
        let err = load(&["--listen", "0.0.0.0:8080"]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("listen: 0.0.0.0:8080 is not a loopback"),
            "{err}"
        );
        assert!(load(&["--listen", "0.0.0.0:8080", "--allow-remote"]).is_ok());
        let file = write("relay:\n  tokens:\n  - {token: 0123456789abcdef, role: admin}\n");
        let path = file.0.to_str().unwrap();
        assert!(load(&["--listen", "0.0.0.0:8080", "--config", path]).is_ok());
    }

    #[test]
    fn print_config_masks_secrets() {
        let file = write(
            "relay:\n  redis_url: redis://:hunter2@127.0.0.1:6379/0\n  tokens:\n  - \
             {token: 0123456789abcdef, role: agent, agents: [pink]}\n",
        );
        let c = load(&["--config", file.0.to_str().unwrap()]).unwrap();
        let shown = c.to_yaml_masked();
        assert!(
            !shown.contains("hunter2") && !shown.contains("0123456789abcdef"),
            "{shown}"
        );
        assert!(shown.contains("redis://:****@127.0.0.1:6379/0"), "{shown}");
        assert!(shown.contains("pink"), "{shown}");
        assert_eq!(mask_url("redis://127.0.0.1/"), "redis://127.0.0.1/");
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
