//! The operator CLI: subcommands of the `cortex-relay` binary that act on Redis
//! directly (in the README's Redis layout, like any agent) or on a running relay, then exit.
//! `cortex-relay` without a subcommand is the server.
//!
//! - [`publish`]: write a task to its priority stream.
//! - [`tail`]: print an agent's tasks as they arrive (watch, or consume and ack).
//! - [`heartbeat`]: write an agent's heartbeat.
//! - [`dlq`]: list, retry and delete dead letters.
//! - [`replay`]: print a range of a stream.
//! - [`output`]: human lines or JSON Lines (`--json`); [`entry`]: a decoded stream
//!   entry and its two renderings; `http`: the small HTTP client for the relay's API.
//!
//! Input is checked while the command line is parsed (agent names, priorities, JSON
//! objects, entry ids), so bad input is refused, with exit code 2, before Redis or the
//! relay is touched. Failures at run time (Redis or the relay unreachable, a refusal,
//! an unknown dead letter) exit with 1. Messages go to stderr; stdout carries only the
//! results.

pub mod dlq;
pub mod entry;
pub mod heartbeat;
mod http;
pub mod output;
pub mod publish;
pub mod replay;
pub mod tail;

use crate::store::lifecycle::LifecycleSettings;
use clap::{Args, Subcommand};
use cortex_shared::{AgentName, EntryId, JsonObject, Priority, SubscribeTarget};
use std::time::Duration;

/// The Redis used when neither `--redis-url` nor `CORTEX_REDIS_URL` is given.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// How long connecting to Redis or a relay may take before the command gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one request to Redis or a relay may take.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The operator subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Publish a task to its priority stream (Redis) and print its task id and entry id.
    Publish(publish::PublishArgs),
    /// Print an agent's tasks as they arrive, until Ctrl-C (or `--count` tasks).
    Tail(tail::TailArgs),
    /// Send an agent's heartbeat to `cortex:heartbeats` (Redis).
    Heartbeat(heartbeat::HeartbeatArgs),
    /// List, retry and delete dead letters (`cortex:tasks:dlq`), on Redis or through
    /// a relay.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Print a range of a stream (Redis), oldest first.
    Replay(replay::ReplayArgs),
}

/// Which Redis to use.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis to use. Default `redis://127.0.0.1:6379/` (or the `--redis-url` given
    /// before the subcommand); env `CORTEX_REDIS_URL`.
    #[arg(
        long = "redis-url",
        value_name = "URL",
        env = "CORTEX_REDIS_URL",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
}

/// Which relay to act through, and how to authenticate to it.
#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// A running relay to act through, e.g. `http://127.0.0.1:8080`; without it the
    /// command acts on Redis directly. Env `CORTEX_RELAY_URL`.
    #[arg(long, value_name = "URL", env = "CORTEX_RELAY_URL", value_parser = parse_relay_url)]
    pub relay: Option<String>,
    /// Bearer token sent to the relay (`Authorization: Bearer …`); env `CORTEX_TOKEN`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CORTEX_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArgs {
    /// Print JSON Lines for scripts: one JSON object per line, one line per item.
    #[arg(long)]
    pub json: bool,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The input was refused before anything was touched.
    #[error("{0}")]
    Invalid(String),
    /// Redis failed or could not be reached.
    #[error("Redis at {url}: {message}")]
    Redis {
        /// The Redis URL, password masked.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The relay could not be reached, or answered something unexpected.
    #[error("relay at {url}: {message}")]
    Relay {
        /// The relay's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The relay refused the request with an error of its own.
    #[error("the relay refused: {code}: {message}")]
    Refused {
        /// The error's stable code (`unauthorized`, `not_found`, …).
        code: String,
        /// The error's message.
        message: String,
    },
    /// What the command acts on does not exist (e.g. an unknown dead letter).
    #[error("{0}")]
    NotFound(String),
    /// The command cannot be carried out (e.g. a dead letter whose task does not
    /// decode cannot be retried).
    #[error("{0}")]
    Cannot(String),
    /// Writing the results failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    /// The process exit code for this error: 2 for refused input, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Invalid(_) => 2,
            _ => 1,
        }
    }

    /// A Redis failure at `url`.
    pub(crate) fn redis(url: &str, message: impl std::fmt::Display) -> Self {
        CliError::Redis {
            url: mask_password(url),
            message: message.to_string(),
        }
    }

    /// A relay failure at `url`.
    pub(crate) fn relay(url: &str, message: impl std::fmt::Display) -> Self {
        CliError::Relay {
            url: url.to_owned(),
            message: message.to_string(),
        }
    }
}

/// Runs `command`; `server_redis_url` is a `--redis-url` given before the subcommand;
/// `lifecycle` says whether publishing and DLQ actions on Redis write the lifecycle
/// record (README, Task lifecycle).
pub async fn run(
    command: Command,
    server_redis_url: Option<&str>,
    lifecycle: LifecycleSettings,
) -> Result<(), CliError> {
    let redis_url = |args: &RedisArgs| {
        args.redis_url
            .clone()
            .or_else(|| server_redis_url.map(str::to_owned))
            .unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned())
    };
    match command {
        Command::Publish(args) => {
            let url = redis_url(&args.redis);
            publish::run(args, &url, &lifecycle).await
        }
        Command::Tail(args) => {
            let url = redis_url(&args.redis);
            tail::run(args, &url, lifecycle).await
        }
        Command::Heartbeat(args) => {
            let url = redis_url(&args.redis);
            heartbeat::run(args, &url).await
        }
        Command::Dlq(command) => {
            let url = redis_url(command.redis());
            dlq::run(command, &url, &lifecycle).await
        }
        Command::Replay(args) => {
            let url = redis_url(&args.redis);
            replay::run(args, &url).await
        }
    }
}

/// Runs `command` as the whole process does: quiet logs (`RUST_LOG`, default `warn`),
/// errors printed on stderr as `cortex-relay: …`. Returns the exit code: 0 done,
/// 1 failed, 2 input refused. Output cut short by a closed pipe (`| head`) counts as
/// done.
pub async fn main(
    command: Command,
    server_redis_url: Option<&str>,
    lifecycle: LifecycleSettings,
) -> i32 {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    match run(command, server_redis_url, lifecycle).await {
        Ok(()) => 0,
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("cortex-relay: {e}");
            e.exit_code()
        }
    }
}

/// Connects to Redis for ordinary commands (not blocking reads).
pub(crate) async fn redis_connection(
    url: &str,
) -> Result<redis::aio::MultiplexedConnection, CliError> {
    let client = redis::Client::open(url).map_err(|e| CliError::redis(url, e))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| CliError::redis(url, e))
}

/// `url` with its password, if any, masked.
pub(crate) fn mask_password(url: &str) -> String {
    crate::store::mask_url(url)
}

// Value parsers: input is checked while the command line is parsed, so clap reports
// the flag and the problem, and nothing runs.

/// An agent name (`[A-Za-z0-9_.-]`, 1 to 64).
pub(crate) fn parse_agent(text: &str) -> Result<AgentName, String> {
    AgentName::parse(text).map_err(|e| e.to_string())
}

/// An agent name, or `*` for every agent.
pub(crate) fn parse_target(text: &str) -> Result<SubscribeTarget, String> {
    SubscribeTarget::parse(text).map_err(|e| format!("{e} (or `*` for every agent)"))
}

/// `critical`, `high`, `normal` or `low`.
pub(crate) fn parse_priority(text: &str) -> Result<Priority, String> {
    Priority::parse(text)
        .ok_or_else(|| format!("unknown priority {text:?}; expected critical, high, normal or low"))
}

/// A JSON object, as text.
pub(crate) fn parse_object(text: &str) -> Result<JsonObject, String> {
    cortex_shared::entry::parse_object(text).map_err(|p| p.to_string())
}

/// A complete stream entry id, `<ms>-<seq>`.
pub(crate) fn parse_entry_id(text: &str) -> Result<String, String> {
    match text.split_once('-') {
        Some(_) => text
            .parse::<EntryId>()
            .map(|id| id.to_string())
            .map_err(|e| e.to_string()),
        None => Err(format!(
            "{text:?} is not a stream entry id (expected <milliseconds>-<sequence>)"
        )),
    }
}

/// A task type: a word of `[A-Za-z0-9_-]`, 1 to 64 characters (the publishing rule,
/// [`cortex_shared::publish`], as the relay takes it).
pub(crate) fn parse_word(text: &str) -> Result<String, String> {
    cortex_shared::publish::checked_type(text)
        .map(|()| text.to_owned())
        .map_err(|e| e.to_string())
}

/// An `http://` URL of a relay, without a trailing slash.
fn parse_relay_url(text: &str) -> Result<String, String> {
    let url = text.trim_end_matches('/');
    match url.split_once("://") {
        Some(("http", rest)) if !rest.is_empty() => Ok(url.to_owned()),
        Some(("https", _)) => Err("https is not supported; give the relay's http:// URL".into()),
        _ => Err(format!(
            "{text:?} is not a relay URL (expected http://HOST:PORT)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The CLI alone, as the binary parses it.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    fn parse(args: &[&str]) -> Result<Command, String> {
        Cli::try_parse_from(std::iter::once("cortex-relay").chain(args.iter().copied()))
            .map(|cli| cli.command)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn bad_input_is_refused_naming_the_flag_and_the_problem() {
        let cases: &[(&[&str], &[&str])] = &[
            (
                &["publish", "--to", "pi nk", "--type", "coding"],
                &["--to", "contains ' '"],
            ),
            (
                &[
                    "publish",
                    "--to",
                    "pink",
                    "--type",
                    "c",
                    "--priority",
                    "urgent",
                ],
                &["--priority", "unknown priority \"urgent\""],
            ),
            (
                &[
                    "publish",
                    "--to",
                    "pink",
                    "--type",
                    "c",
                    "--payload",
                    "{nope",
                ],
                &["--payload", "not valid JSON"],
            ),
            (
                &["publish", "--to", "pink", "--type", "c", "--payload", "[1]"],
                &["--payload", "expected a JSON object, found an array"],
            ),
            (
                &["heartbeat", "pink", "--status", "7"],
                &["--status", "found a number"],
            ),
            (&["tail", "pi/nk"], &["contains '/'"]),
            (&["dlq", "retry", "nope"], &["not a stream entry id"]),
            (
                &["replay", "high", "--count", "1", "--last", "1"],
                &["cannot be used with"],
            ),
            (&["replay", "high", "--start", "yesterday"], &["--start"]),
            (&["dlq", "list", "--relay", "ftp://x"], &["not a relay URL"]),
        ];
        for (args, needles) in cases {
            let err = parse(args).expect_err(&format!("{args:?} should be refused"));
            for needle in *needles {
                assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
            }
        }
    }

    #[test]
    fn good_input_parses() {
        let Command::Publish(p) = parse(&[
            "publish",
            "--from",
            "harold",
            "--to",
            "pink",
            "--priority",
            "high",
            "--type",
            "coding",
            "--payload",
            r#"{"a":1}"#,
        ])
        .unwrap() else {
            panic!("publish")
        };
        assert_eq!(p.priority, Priority::High);
        assert_eq!(p.payload["a"], 1);
        assert!(matches!(
            parse(&["dlq", "retry", "1-0", "2-0", "--priority", "low"]).unwrap(),
            Command::Dlq(dlq::DlqCommand::Retry(_))
        ));
        assert!(matches!(
            parse(&["tail", "*", "--count", "1"]).unwrap(),
            Command::Tail(_)
        ));
        assert_eq!(parse_entry_id("17-3").unwrap(), "17-3");
        assert_eq!(
            parse_relay_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
    }
}
