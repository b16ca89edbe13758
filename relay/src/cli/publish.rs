//! `cortex-relay publish`: write a task to its priority stream, in the README's Redis layout,
//! as the relay writes one ([`crate::store::publish`]); or, with `--relay`, through the
//! relay's `POST /api/v1/tasks` (which always gives a new UUID id). Its flags are
//! checked by the publishing rule ([`cortex_shared::publish`]) while they are parsed.

use super::http::RelayClient;
use super::output::Output;
use super::{parse_agent, parse_object, parse_priority, parse_target, parse_word};
use super::{redis_connection, CliError, OutputArgs, RedisArgs, RelayArgs};
use crate::store::lifecycle::LifecycleSettings;
use crate::store::publish::publish_task;
use axum::http::Method;
use cortex_shared::rest::{PublishRequest, Published};
use cortex_shared::{AgentName, JsonObject, Priority, SubscribeTarget, TaskMessage};
use serde_json::json;

/// `publish --from harold --to pink --priority high --type coding --payload '{"a":1}'`
#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// The sender (`from`). Default `operator`.
    #[arg(long, value_name = "AGENT", default_value = "operator", value_parser = parse_agent)]
    pub from: AgentName,
    /// The agent the task is for (`to`); `*` for every agent.
    #[arg(long, value_name = "AGENT", value_parser = parse_target)]
    pub to: SubscribeTarget,
    /// `critical`, `high`, `normal` or `low`: the stream it goes to. Default `normal`.
    #[arg(long, value_name = "PRIORITY", default_value = "normal", value_parser = parse_priority)]
    pub priority: Priority,
    /// The task's type: `coding`, `review`, `deploy`, or any other word
    /// (`[A-Za-z0-9_-]`, at most 64 characters).
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_word)]
    pub task_type: String,
    /// The task's data: a JSON object. Default `{}`.
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = parse_object)]
    pub payload: JsonObject,
    /// The task that spawned this one (`parent_id`).
    #[arg(long, value_name = "ID", value_parser = parse_parent)]
    pub parent_id: Option<String>,
    /// The trace it belongs to (`correlation_id`).
    #[arg(long, value_name = "ID", value_parser = parse_correlation)]
    pub correlation_id: Option<String>,
    /// The task's id. Default: a new UUID. (Not with `--relay`.)
    #[arg(long, value_name = "ID", value_parser = parse_task_id)]
    pub id: Option<String>,
    /// Through a relay instead of Redis (the token needs the admin role).
    #[command(flatten)]
    pub relay: RelayArgs,
    /// Which Redis (without `--relay`).
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Human or JSON output.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl PublishArgs {
    /// The task to publish, `created` now.
    pub fn task(&self) -> TaskMessage {
        TaskMessage {
            id: self
                .id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            from: self.from.to_string(),
            to: match &self.to {
                SubscribeTarget::All => String::new(),
                SubscribeTarget::Agent(name) => name.to_string(),
            },
            priority: self.priority,
            task_type: self.task_type.clone(),
            payload: self.payload.clone(),
            created: crate::metrics::unix_secs(),
            parent_id: self.parent_id.clone(),
            correlation_id: self.correlation_id.clone(),
        }
    }
}

/// Publishes the task; prints `task <id>  entry <entry id>  stream <stream>`, or
/// `{"task_id","entry_id","stream","task"}` (through a relay: without `task`).
pub async fn run(
    args: PublishArgs,
    redis_url: &str,
    lifecycle: &LifecycleSettings,
) -> Result<(), CliError> {
    let out = Output::new(args.output.json);
    let task = args.task();
    let answer = match &args.relay.relay {
        Some(relay) => {
            if args.id.is_some() {
                return Err(CliError::Invalid(
                    "--id cannot be used with --relay: the relay gives every task a new id".into(),
                ));
            }
            let request = PublishRequest {
                to: task.to.clone(),
                priority: task.priority,
                task_type: task.task_type.clone(),
                payload: Some(serde_json::Value::Object(task.payload.clone())),
                from: Some(task.from.clone()),
                parent_id: task.parent_id.clone(),
                correlation_id: task.correlation_id.clone(),
            };
            let client = RelayClient::new(relay, args.relay.token.as_deref());
            let answer = client
                .call(Method::POST, "/api/v1/tasks", Some(&json!(request)))
                .await?;
            serde_json::from_value::<Published>(answer.clone()).map_err(|e| {
                CliError::relay(relay, format!("POST /api/v1/tasks: unexpected answer: {e}"))
            })?;
            answer
        }
        None => {
            let mut conn = redis_connection(redis_url).await?;
            let entry_id = publish_task(&mut conn, &task, lifecycle)
                .await
                .map_err(|e| CliError::redis(redis_url, e))?;
            json!({"task_id": task.id, "entry_id": entry_id,
                   "stream": task.priority.stream(), "task": task})
        }
    };
    out.item(
        || {
            let text = |k: &str| answer[k].as_str().unwrap_or("?").to_owned();
            format!(
                "task {}  entry {}  stream {}",
                text("task_id"),
                text("entry_id"),
                text("stream")
            )
        },
        &answer,
    )
}

/// A task id: not empty, no white space or control characters, at most 256 bytes.
/// A `--parent-id`, by the publishing rule.
fn parse_parent(text: &str) -> Result<String, String> {
    parse_trace("parent_id", text)
}

/// A `--correlation-id`, by the publishing rule.
fn parse_correlation(text: &str) -> Result<String, String> {
    parse_trace("correlation_id", text)
}

fn parse_trace(field: &'static str, text: &str) -> Result<String, String> {
    cortex_shared::publish::checked_trace(field, Some(text))
        .map(Option::unwrap_or_default)
        .map_err(|e| e.to_string())
}

fn parse_task_id(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("empty".into())
    } else if text.len() > 256 {
        Err(format!("{} bytes long; at most 256", text.len()))
    } else if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "{text:?} contains white space or a control character"
        ))
    } else {
        Ok(text.to_owned())
    }
}
