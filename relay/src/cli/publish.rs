//! `cortex-relay publish`: write a task to its priority stream, in the plan's layout,
//! with the agent API's [`Publisher`].

use super::output::Output;
use super::{parse_agent, parse_object, parse_priority, parse_target, parse_word};
use super::{CliError, OutputArgs, RedisArgs};
use crate::agent::Publisher;
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
    /// The task's type: `coding`, `review`, `deploy`, or any other word.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_word)]
    pub task_type: String,
    /// The task's data: a JSON object. Default `{}`.
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = parse_object)]
    pub payload: JsonObject,
    /// The task's id. Default: a new UUID.
    #[arg(long, value_name = "ID", value_parser = parse_word)]
    pub id: Option<String>,
    /// Which Redis.
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
            created: unix_now(),
        }
    }
}

/// Publishes the task; prints `task <id>  entry <entry id>  stream <stream>`, or
/// `{"task_id","entry_id","stream","task"}`.
pub async fn run(args: PublishArgs, redis_url: &str) -> Result<(), CliError> {
    let out = Output::new(args.output.json);
    let task = args.task();
    let publisher = connect(redis_url).await?;
    let entry_id = publisher
        .publish_task(&task)
        .await
        .map_err(|e| agent_error(redis_url, e))?;
    let stream = task.priority.stream();
    out.item(
        || format!("task {}  entry {entry_id}  stream {stream}", task.id),
        &json!({"task_id": task.id, "entry_id": entry_id, "stream": stream, "task": task}),
    )
}

/// A [`Publisher`] on `redis_url`, giving up after a few seconds.
pub(crate) async fn connect(redis_url: &str) -> Result<Publisher, CliError> {
    // A plain connection first: an unreachable Redis is reported at once, with its
    // reason, rather than after the publisher's reconnection attempts.
    super::redis_connection(redis_url).await?;
    match tokio::time::timeout(super::CONNECT_TIMEOUT, Publisher::connect(redis_url)).await {
        Ok(result) => result.map_err(|e| agent_error(redis_url, e)),
        Err(_) => Err(CliError::redis(
            redis_url,
            format!("no connection after {:?}", super::CONNECT_TIMEOUT),
        )),
    }
}

/// An agent API error as a CLI error.
pub(crate) fn agent_error(redis_url: &str, e: crate::agent::AgentError) -> CliError {
    match e {
        crate::agent::AgentError::Redis(source) => CliError::redis(redis_url, source),
        other => CliError::redis(redis_url, other),
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
