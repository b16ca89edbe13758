//! `cortex-relay heartbeat`: write an agent's heartbeat to `cortex:heartbeats`, in the
//! README's Redis layout (`agent`, `time`, `status`), as the relay writes one
//! ([`crate::store::publish`]).

use super::output::Output;
use super::{parse_agent, parse_object, redis_connection, CliError, OutputArgs, RedisArgs};
use crate::store::publish::{heartbeat_now, publish_heartbeat};
use cortex_shared::{AgentName, JsonObject, HEARTBEAT_STREAM};
use serde_json::json;

/// `heartbeat AGENT --status '{"state":"idle"}'`
#[derive(Debug, Clone, clap::Args)]
pub struct HeartbeatArgs {
    /// The agent whose heartbeat it is.
    #[arg(value_name = "AGENT", value_parser = parse_agent)]
    pub agent: AgentName,
    /// Its status: a JSON object. Default `{}`.
    #[arg(long, value_name = "JSON", default_value = "{}", value_parser = parse_object)]
    pub status: JsonObject,
    /// Which Redis.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Human or JSON output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Sends the heartbeat; prints `heartbeat <agent>  entry <entry id>`, or
/// `{"agent","entry_id","stream","status"}`.
pub async fn run(args: HeartbeatArgs, redis_url: &str) -> Result<(), CliError> {
    let out = Output::new(args.output.json);
    let mut conn = redis_connection(redis_url).await?;
    let heartbeat = heartbeat_now(args.agent.as_str(), args.status.clone());
    let entry_id = publish_heartbeat(&mut conn, &heartbeat)
        .await
        .map_err(|e| CliError::redis(redis_url, e))?;
    out.item(
        || format!("heartbeat {}  entry {entry_id}", args.agent),
        &json!({"agent": args.agent.as_str(), "entry_id": entry_id,
                "stream": HEARTBEAT_STREAM, "status": args.status}),
    )
}
