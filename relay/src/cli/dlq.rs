//! `cortex-relay dlq list|retry|delete`: the dead letters of `cortex:tasks:dlq`.
//!
//! With `--relay`, the relay's API does the work: `GET /api/v1/messaging/dlq` (paged
//! with its cursor), `POST /api/v1/messaging/dlq/retry/{id}`,
//! `DELETE /api/v1/messaging/dlq/{id}`. Without it, Redis directly, with the relay's
//! own code ([`crate::store::dlq`]), so both paths do the same: `list` selects with
//! the same scanner and filter; `retry` and `delete` run the same scripts, which
//! count retries on the task, leave the tombstone that makes a second action
//! `already_retried`/`already_deleted`, and tell every relay's watchers (open
//! dashboards) at once.
//!
//! Output: `list` prints a table for people, or one `DlqItem` per line (the API's
//! shape: `{"dlq_id":…,"original_id":…,…,"error":…,"retry_count":3,"dead_at":…}`);
//! `retry` prints the API's answer per letter (`{"dlq_id","task_id","stream",
//! "entry_id","retry_count","edited"}`); `delete` prints `{"dlq_id","deleted":true}`.

use super::entry::route;
use super::http::{encode, query, RelayClient};
use super::output::{shorten, utc, Output};
use super::{parse_agent, parse_entry_id, parse_priority, parse_word, redis_connection};
use super::{CliError, OutputArgs, RedisArgs, RelayArgs};
use crate::store::dlq::{self, DlqError, Edits, Scanner, Selection};
use crate::store::lifecycle::LifecycleSettings;
use axum::http::Method;
use cortex_shared::rest::{DlqFilter, DlqItem, DlqPage, RetryRequest};
use cortex_shared::{AgentName, EntryId, Priority};
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};

/// The longest error shown in the human table.
const SHOWN_ERROR: usize = 80;

/// Letters per page asked of a relay (its maximum).
const RELAY_PAGE: u64 = 1000;

/// The DLQ subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DlqCommand {
    /// List dead letters, newest first.
    List(ListArgs),
    /// Republish dead letters' original tasks to their priority stream, and remove
    /// the letters.
    Retry(RetryArgs),
    /// Remove dead letters.
    Delete(DeleteArgs),
}

impl DlqCommand {
    /// Its Redis arguments.
    pub fn redis(&self) -> &RedisArgs {
        match self {
            DlqCommand::List(args) => &args.redis,
            DlqCommand::Retry(args) => &args.redis,
            DlqCommand::Delete(args) => &args.redis,
        }
    }
}

/// `dlq list [--agent A] [--priority P] [--type T] [--error TEXT] [--payload TEXT]
/// [--since-ms MS] [--until-ms MS] [--limit N]`: the relay API's filters.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Only letters of tasks to or from this agent.
    #[arg(long, value_name = "AGENT", value_parser = parse_agent)]
    pub agent: Option<AgentName>,
    /// Only letters of tasks of this priority.
    #[arg(long, value_name = "PRIORITY", value_parser = parse_priority)]
    pub priority: Option<Priority>,
    /// Only letters of tasks of this type.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_word)]
    pub task_type: Option<String>,
    /// Only letters whose error contains this text (ignoring case).
    #[arg(long, value_name = "TEXT")]
    pub error: Option<String>,
    /// Only letters whose task's payload contains this text (ignoring case).
    #[arg(long, value_name = "TEXT")]
    pub payload: Option<String>,
    /// Only letters written to the DLQ at or after this time (unix milliseconds).
    #[arg(long, value_name = "MS")]
    pub since_ms: Option<u64>,
    /// Only letters written to the DLQ at or before this time (unix milliseconds).
    #[arg(long, value_name = "MS")]
    pub until_ms: Option<u64>,
    /// At most N letters (the newest). Default 100.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: u64,
    /// Through a relay instead of Redis.
    #[command(flatten)]
    pub relay: RelayArgs,
    /// Which Redis (without `--relay`).
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Human or JSON output.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl ListArgs {
    /// The filter, as the API takes it.
    fn filter(&self) -> DlqFilter {
        DlqFilter {
            agent: self.agent.as_ref().map(AgentName::to_string),
            priority: self.priority.map(|p| p.as_str().to_owned()),
            task_type: self.task_type.clone(),
            error: self.error.clone(),
            payload: self.payload.clone(),
            since_ms: self.since_ms,
            until_ms: self.until_ms,
        }
    }
}

/// `dlq retry ID… [--priority P]`
#[derive(Debug, Clone, clap::Args)]
pub struct RetryArgs {
    /// The letters' ids in `cortex:tasks:dlq` (as `dlq list` shows them).
    #[arg(value_name = "ID", required = true, value_parser = parse_entry_id)]
    pub ids: Vec<String>,
    /// Republish with this priority (and to its stream) instead of the original one.
    #[arg(long, value_name = "PRIORITY", value_parser = parse_priority)]
    pub priority: Option<Priority>,
    /// Through a relay instead of Redis.
    #[command(flatten)]
    pub relay: RelayArgs,
    /// Which Redis (without `--relay`).
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Human or JSON output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `dlq delete ID…`
#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    /// The letters' ids in `cortex:tasks:dlq`.
    #[arg(value_name = "ID", required = true, value_parser = parse_entry_id)]
    pub ids: Vec<String>,
    /// Through a relay instead of Redis.
    #[command(flatten)]
    pub relay: RelayArgs,
    /// Which Redis (without `--relay`).
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Human or JSON output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Where the DLQ commands act.
enum Target {
    Redis(MultiplexedConnection, String, LifecycleSettings),
    Relay(RelayClient),
}

impl Target {
    async fn new(
        relay: &RelayArgs,
        redis_url: &str,
        lifecycle: &LifecycleSettings,
    ) -> Result<Self, CliError> {
        match &relay.relay {
            Some(url) => Ok(Target::Relay(RelayClient::new(url, relay.token.as_deref()))),
            None => Ok(Target::Redis(
                redis_connection(redis_url).await?,
                redis_url.to_owned(),
                *lifecycle,
            )),
        }
    }
}

/// Runs one DLQ subcommand.
pub async fn run(
    command: DlqCommand,
    redis_url: &str,
    lifecycle: &LifecycleSettings,
) -> Result<(), CliError> {
    match command {
        DlqCommand::List(args) => {
            let target = Target::new(&args.relay, redis_url, lifecycle).await?;
            list(args, target).await
        }
        DlqCommand::Retry(args) => {
            let mut target = Target::new(&args.relay, redis_url, lifecycle).await?;
            let out = Output::new(args.output.json);
            let mut failures = Failures::new(args.ids.len(), "retried");
            for id in &args.ids {
                let result = match retry(&mut target, id, args.priority).await {
                    Ok(retried) => out.item(
                        || {
                            let text = |k: &str| retried[k].as_str().unwrap_or("?").to_owned();
                            format!(
                                "retried {id}  task {}  entry {}  stream {}",
                                text("task_id"),
                                text("entry_id"),
                                text("stream")
                            )
                        },
                        &retried,
                    ),
                    Err(e) => Err(e),
                };
                failures.record(result)?;
            }
            failures.finish()
        }
        DlqCommand::Delete(args) => {
            let mut target = Target::new(&args.relay, redis_url, lifecycle).await?;
            let out = Output::new(args.output.json);
            let mut failures = Failures::new(args.ids.len(), "deleted");
            for id in &args.ids {
                let result = match delete(&mut target, id).await {
                    Ok(()) => out.item(
                        || format!("deleted {id}"),
                        &json!({"dlq_id": id, "deleted": true}),
                    ),
                    Err(e) => Err(e),
                };
                failures.record(result)?;
            }
            failures.finish()
        }
    }
}

/// Failures among several ids: one that concerns a single letter (unknown, already
/// retried, cannot be retried) is reported on stderr and the others still run; the
/// command then fails with a count. With one id, its error is the command's.
struct Failures {
    total: usize,
    failed: usize,
    done: &'static str,
}

impl Failures {
    fn new(total: usize, done: &'static str) -> Self {
        Self {
            total,
            failed: 0,
            done,
        }
    }

    /// `Err` when the command must stop here.
    fn record(&mut self, result: Result<(), CliError>) -> Result<(), CliError> {
        match result {
            Ok(()) => Ok(()),
            Err(e) if self.total == 1 => Err(e),
            Err(e @ (CliError::NotFound(_) | CliError::Cannot(_) | CliError::Refused { .. })) => {
                eprintln!("cortex-relay: {e}");
                self.failed += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn finish(self) -> Result<(), CliError> {
        match self.failed {
            0 => Ok(()),
            n => Err(CliError::Cannot(format!(
                "{n} of {} dead letters were not {}",
                self.total, self.done
            ))),
        }
    }
}

/// Prints the letters that match, newest first.
async fn list(args: ListArgs, target: Target) -> Result<(), CliError> {
    let out = Output::new(args.output.json);
    let items = match target {
        Target::Redis(mut conn, url, _) => list_redis(&mut conn, &url, &args).await?,
        Target::Relay(client) => list_relay(&client, &args).await?,
    };
    if out.is_json() {
        for item in &items {
            out.item(String::new, &json!(item))?;
        }
        return Ok(());
    }
    if items.is_empty() {
        out.note("no dead letters");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items.iter().map(row).collect();
    out.table(
        &[
            "DLQ ID", "DEAD AT", "PRIORITY", "ROUTE", "TYPE", "TASK", "RETRIES", "ERROR",
        ],
        &rows,
    )
}

/// One row of the human table.
fn row(item: &DlqItem) -> Vec<String> {
    let letter = &item.letter;
    vec![
        item.dlq_id.clone(),
        utc(letter.dead_at),
        letter.original_priority.clone(),
        route(&letter.original_from, &letter.original_to),
        letter.original_type.clone(),
        letter.original_id.clone(),
        letter.retry_count.to_string(),
        shorten(&letter.error, SHOWN_ERROR),
    ]
}

/// The letters on Redis, with the relay API's scanner and filter.
async fn list_redis(
    conn: &mut MultiplexedConnection,
    url: &str,
    args: &ListArgs,
) -> Result<Vec<DlqItem>, CliError> {
    let selection =
        Selection::parse(&args.filter()).map_err(|e| CliError::Invalid(e.to_string()))?;
    let mut scanner = Scanner::new(&selection, None);
    let mut items = Vec::new();
    while !scanner.done() {
        let batch = scanner
            .next(conn)
            .await
            .map_err(|e| CliError::redis(url, e))?;
        for (id, letter) in batch {
            if selection.matches(&letter) {
                items.push(DlqItem {
                    dlq_id: id.to_string(),
                    letter,
                });
                if items.len() as u64 >= args.limit {
                    return Ok(items);
                }
            }
        }
    }
    Ok(items)
}

/// The letters the relay lists, following its cursor up to `--limit`.
async fn list_relay(client: &RelayClient, args: &ListArgs) -> Result<Vec<DlqItem>, CliError> {
    let filter = args.filter();
    let mut items: Vec<DlqItem> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let left = args.limit - items.len() as u64;
        let path = format!(
            "/api/v1/messaging/dlq{}",
            query(&[
                ("agent", filter.agent.clone()),
                ("priority", filter.priority.clone()),
                ("type", filter.task_type.clone()),
                ("error", filter.error.clone()),
                ("payload", filter.payload.clone()),
                ("since_ms", filter.since_ms.map(|ms| ms.to_string())),
                ("until_ms", filter.until_ms.map(|ms| ms.to_string())),
                ("limit", Some(left.min(RELAY_PAGE).to_string())),
                ("cursor", cursor.clone()),
            ])
        );
        let answer = client.call(Method::GET, &path, None).await?;
        let page: DlqPage = serde_json::from_value(answer).map_err(|e| {
            CliError::relay(client.base(), format!("GET {path}: unexpected answer: {e}"))
        })?;
        items.extend(page.items);
        match page.next_cursor {
            Some(next) if (items.len() as u64) < args.limit => cursor = Some(next),
            _ => break,
        }
    }
    items.truncate(args.limit as usize);
    Ok(items)
}

/// Retries one letter; the answer as JSON (at least `dlq_id`, `task_id`, `stream`,
/// `entry_id`).
async fn retry(
    target: &mut Target,
    id: &str,
    priority: Option<Priority>,
) -> Result<Value, CliError> {
    match target {
        Target::Redis(conn, url, lifecycle) => {
            retry_redis(conn, url, id, priority, lifecycle).await
        }
        Target::Relay(client) => {
            let body = json!(RetryRequest {
                priority,
                ..RetryRequest::default()
            });
            client
                .call(
                    Method::POST,
                    &format!("/api/v1/messaging/dlq/retry/{}", encode(id)),
                    Some(&body),
                )
                .await
        }
    }
}

async fn retry_redis(
    conn: &mut MultiplexedConnection,
    url: &str,
    id: &str,
    priority: Option<Priority>,
    lifecycle: &LifecycleSettings,
) -> Result<Value, CliError> {
    let edits = Edits {
        priority,
        ..Edits::default()
    };
    let retried = dlq::retry(conn, dlq_id(id)?, &edits, lifecycle)
        .await
        .map_err(|e| dlq_error(url, e))?;
    Ok(json!(retried))
}

/// A DLQ id as `dlq retry|delete` took it (checked while parsing).
fn dlq_id(id: &str) -> Result<EntryId, CliError> {
    id.parse::<EntryId>()
        .map_err(|e| CliError::Invalid(format!("{id:?}: {e}")))
}

async fn delete(target: &mut Target, id: &str) -> Result<(), CliError> {
    match target {
        Target::Redis(conn, url, lifecycle) => dlq::delete(conn, dlq_id(id)?, lifecycle)
            .await
            .map_err(|e| dlq_error(url, e)),
        Target::Relay(client) => client
            .call(
                Method::DELETE,
                &format!("/api/v1/messaging/dlq/{}", encode(id)),
                None,
            )
            .await
            .map(drop),
    }
}

/// A DLQ action's failure on the Redis path, as a CLI error saying what the relay's
/// API would (its code, then its message): not found, already retried or deleted,
/// or a letter whose task does not decode (with what to do about it).
fn dlq_error(url: &str, e: DlqError) -> CliError {
    let code = e.code();
    match e {
        DlqError::NotFound(_) => CliError::NotFound(format!("{code}: {e}")),
        DlqError::AlreadyRetried(_) | DlqError::AlreadyDeleted(_) => {
            CliError::Cannot(format!("{code}: {e}"))
        }
        DlqError::NotRetryable { id, error } => CliError::Cannot(format!(
            "{code}: dead letter {id} cannot be retried: its task does not decode ({error}); \
             delete it, or retry it through the relay's API giving what is missing or broken \
             (POST /api/v1/messaging/dlq/retry/{id} with the task's fields)"
        )),
        DlqError::Redis(e) => CliError::redis(url, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: DlqCommand,
    }

    #[test]
    fn list_flags_are_the_apis_filter() {
        let argv = [
            "dlq",
            "list",
            "--agent",
            "pink",
            "--priority",
            "high",
            "--type",
            "coding",
            "--error",
            "time out",
            "--payload",
            "auth",
            "--since-ms",
            "5",
            "--until-ms",
            "9",
        ];
        let DlqCommand::List(args) = Cli::try_parse_from(argv).unwrap().command else {
            panic!("list")
        };
        assert_eq!(
            serde_json::to_value(args.filter()).unwrap(),
            json!({"agent":"pink","priority":"high","type":"coding","error":"time out",
                   "payload":"auth","since_ms":5,"until_ms":9})
        );
        assert_eq!(args.limit, 100);
    }
}
