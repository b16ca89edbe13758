//! `cortex-relay dlq list|retry|delete`: the dead letters of `cortex:tasks:dlq`.
//!
//! On Redis (the default): `list` reads the stream newest first (`XREVRANGE`) and
//! filters here; `retry` republishes the letter's original task (its fields as the
//! plan writes them, its priority changed by `--priority`) to its priority stream and
//! deletes the letter, in one server-side script, so a letter is never both retried
//! and kept, nor retried twice; `delete` is `XDEL`. With `--relay`, the relay's API
//! does it: `GET /api/v1/messaging/dlq`, `POST /api/v1/messaging/dlq/retry/{id}`,
//! `DELETE /api/v1/messaging/dlq/{id}`.

use super::entry::{route, Decoded, Entry};
use super::http::{encode, query, RelayClient};
use super::output::{shorten, utc, Output};
use super::{parse_agent, parse_entry_id, parse_priority, parse_word, redis_connection};
use super::{CliError, OutputArgs, RedisArgs, RelayArgs};
use axum::http::Method;
use cortex_shared::{AgentName, DeadLetter, Priority, DLQ_STREAM};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;
use serde_json::{json, Value};
use std::sync::LazyLock;

/// Letters read per round trip while listing.
const PAGE: usize = 500;

/// The longest error shown in the human table.
const SHOWN_ERROR: usize = 80;

/// KEYS: the DLQ, the stream to republish to. ARGV: the letter's id, then the task's
/// fields. Republishes and deletes the letter only if it still exists; returns the new
/// entry id, or nil.
static RETRY: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  return false
end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
"#,
    )
});

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

/// `dlq list [--to AGENT] [--from AGENT] [--priority P] [--type T] [--error TEXT] [--limit N]`
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// Only letters of tasks addressed to this agent.
    #[arg(long, value_name = "AGENT", value_parser = parse_agent)]
    pub to: Option<AgentName>,
    /// Only letters of tasks from this agent.
    #[arg(long, value_name = "AGENT", value_parser = parse_agent)]
    pub from: Option<AgentName>,
    /// Only letters of tasks of this priority.
    #[arg(long, value_name = "PRIORITY", value_parser = parse_priority)]
    pub priority: Option<Priority>,
    /// Only letters of tasks of this type.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_word)]
    pub task_type: Option<String>,
    /// Only letters whose error contains this text.
    #[arg(long, value_name = "TEXT")]
    pub error: Option<String>,
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

/// `dlq retry ID… [--priority P]`
#[derive(Debug, Clone, clap::Args)]
pub struct RetryArgs {
    /// The letters' entry ids in `cortex:tasks:dlq` (as `dlq list` shows them).
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
    /// The letters' entry ids in `cortex:tasks:dlq`.
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
    Redis(MultiplexedConnection, String),
    Relay(RelayClient),
}

impl Target {
    async fn new(relay: &RelayArgs, redis_url: &str) -> Result<Self, CliError> {
        match &relay.relay {
            Some(url) => Ok(Target::Relay(RelayClient::new(url, relay.token.as_deref()))),
            None => Ok(Target::Redis(
                redis_connection(redis_url).await?,
                redis_url.to_owned(),
            )),
        }
    }
}

/// Runs one DLQ subcommand.
pub async fn run(command: DlqCommand, redis_url: &str) -> Result<(), CliError> {
    match command {
        DlqCommand::List(args) => {
            let target = Target::new(&args.relay, redis_url).await?;
            list(args, target).await
        }
        DlqCommand::Retry(args) => {
            let mut target = Target::new(&args.relay, redis_url).await?;
            let out = Output::new(args.output.json);
            let mut failures = Failures::new(args.ids.len(), "retried");
            for id in &args.ids {
                let result = match retry(&mut target, id, args.priority).await {
                    Ok(retried) => out.item(
                        || {
                            format!(
                                "retried {id}  task {}  entry {}  stream {}",
                                retried.task_id, retried.entry_id, retried.stream
                            )
                        },
                        &json!({"dlq_id": id, "task_id": retried.task_id,
                                "entry_id": retried.entry_id, "stream": retried.stream}),
                    ),
                    Err(e) => Err(e),
                };
                failures.record(result)?;
            }
            failures.finish()
        }
        DlqCommand::Delete(args) => {
            let mut target = Target::new(&args.relay, redis_url).await?;
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

/// Failures among several ids: one that concerns a single letter (unknown, cannot be
/// retried) is reported on stderr and the others still run; the command then fails
/// with a count. With one id, its error is the command's.
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

/// Prints the letters that match, newest first: a table for people, or one entry
/// object per line (see [`super::entry`]).
async fn list(args: ListArgs, target: Target) -> Result<(), CliError> {
    let out = Output::new(args.output.json);
    let entries = match target {
        Target::Redis(mut conn, url) => list_redis(&mut conn, &args)
            .await
            .map_err(|e| CliError::redis(&url, e))?,
        Target::Relay(client) => list_relay(&client, &args).await?,
    };
    if out.is_json() {
        for entry in &entries {
            out.item(String::new, &entry.json())?;
        }
        return Ok(());
    }
    if entries.is_empty() {
        out.note("no dead letters");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries.iter().map(row).collect();
    out.table(
        &[
            "DLQ ID", "DEAD AT", "PRIORITY", "ROUTE", "TYPE", "TASK", "RETRIES", "ERROR",
        ],
        &rows,
    )
}

/// One row of the human table.
fn row(entry: &Entry) -> Vec<String> {
    match &entry.decoded {
        Decoded::DeadLetter(letter) => vec![
            entry.entry_id.clone(),
            utc(letter.dead_at),
            letter.original_priority.clone(),
            route(&letter.original_from, &letter.original_to),
            letter.original_type.clone(),
            letter.original_id.clone(),
            letter.retry_count.to_string(),
            shorten(&letter.error, SHOWN_ERROR),
        ],
        Decoded::Raw { fields, error } => {
            let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
            vec![
                entry.entry_id.clone(),
                super::output::entry_time(&entry.entry_id),
                field("original_priority"),
                route(&field("original_from"), &field("original_to")),
                field("original_type"),
                field("original_id"),
                field("retry_count"),
                shorten(
                    &format!(
                        "(undecodable letter: {}) {}",
                        error.as_deref().unwrap_or("?"),
                        field("error")
                    ),
                    SHOWN_ERROR,
                ),
            ]
        }
        _ => vec![entry.entry_id.clone()],
    }
}

/// A letter's field, decoded or raw.
fn letter_field<'a>(decoded: &'a Decoded, name: &str) -> Option<&'a str> {
    match decoded {
        Decoded::DeadLetter(l) => Some(match name {
            "original_to" => &l.original_to,
            "original_from" => &l.original_from,
            "original_priority" => &l.original_priority,
            "original_type" => &l.original_type,
            "error" => &l.error,
            _ => return None,
        }),
        Decoded::Raw { fields, .. } => fields.get(name).map(String::as_str),
        _ => None,
    }
}

/// Whether a letter passes `args`' filters.
fn matches(args: &ListArgs, decoded: &Decoded) -> bool {
    let is = |name: &str, wanted: Option<&str>| {
        wanted.is_none_or(|wanted| letter_field(decoded, name) == Some(wanted))
    };
    is("original_to", args.to.as_ref().map(AgentName::as_str))
        && is("original_from", args.from.as_ref().map(AgentName::as_str))
        && is("original_priority", args.priority.map(Priority::as_str))
        && is("original_type", args.task_type.as_deref())
        && args.error.as_deref().is_none_or(|text| {
            letter_field(decoded, "error").is_some_and(|error| error.contains(text))
        })
}

async fn list_redis(
    conn: &mut MultiplexedConnection,
    args: &ListArgs,
) -> redis::RedisResult<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut end = "+".to_owned();
    loop {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(DLQ_STREAM)
            .arg(&end)
            .arg("-")
            .arg("COUNT")
            .arg(PAGE)
            .query_async(conn)
            .await?;
        for id in &reply.ids {
            let entry = Entry::decode(DLQ_STREAM, id);
            if matches(args, &entry.decoded) {
                entries.push(entry);
                if entries.len() as u64 >= args.limit {
                    return Ok(entries);
                }
            }
        }
        let last = reply.ids.last().and_then(|id| id.id.parse().ok());
        match last {
            Some(last) if reply.ids.len() == PAGE => match before(last) {
                Some(previous) => end = previous,
                None => return Ok(entries),
            },
            _ => return Ok(entries),
        }
    }
}

fn before(id: cortex_shared::EntryId) -> Option<String> {
    use cortex_shared::EntryId;
    if id.seq > 0 {
        Some(EntryId::new(id.ms, id.seq - 1).to_string())
    } else if id.ms > 0 {
        Some(EntryId::new(id.ms - 1, u64::MAX).to_string())
    } else {
        None
    }
}

/// A retried letter: where its task went.
struct Retried {
    task_id: String,
    stream: String,
    entry_id: String,
}

async fn retry(
    target: &mut Target,
    id: &str,
    priority: Option<Priority>,
) -> Result<Retried, CliError> {
    match target {
        Target::Redis(conn, url) => {
            let url = url.clone();
            retry_redis(conn, id, priority).await.map_err(|e| match e {
                Failure::Redis(e) => CliError::redis(&url, e),
                Failure::Cli(e) => e,
            })
        }
        Target::Relay(client) => {
            let body = priority.map(|p| json!({"priority": p.as_str()}));
            let answer = client
                .call(
                    Method::POST,
                    &format!("/api/v1/messaging/dlq/retry/{}", encode(id)),
                    body.as_ref(),
                )
                .await?;
            let text = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|name| answer.get(*name).and_then(Value::as_str))
                    .unwrap_or("?")
                    .to_owned()
            };
            Ok(Retried {
                task_id: text(&["task_id", "original_id", "id"]),
                stream: text(&["stream"]),
                entry_id: text(&["entry_id", "new_entry_id"]),
            })
        }
    }
}

enum Failure {
    Redis(redis::RedisError),
    Cli(CliError),
}

impl From<redis::RedisError> for Failure {
    fn from(e: redis::RedisError) -> Self {
        Failure::Redis(e)
    }
}

async fn retry_redis(
    conn: &mut MultiplexedConnection,
    id: &str,
    priority: Option<Priority>,
) -> Result<Retried, Failure> {
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(DLQ_STREAM)
        .arg(id)
        .arg(id)
        .query_async(conn)
        .await?;
    let Some(found) = reply.ids.first() else {
        return Err(Failure::Cli(not_found(id)));
    };
    let letter = match Entry::decode(DLQ_STREAM, found).decoded {
        Decoded::DeadLetter(letter) => letter,
        Decoded::Raw { error, .. } => {
            return Err(Failure::Cli(CliError::Cannot(format!(
                "dead letter {id} cannot be retried: the letter does not decode: {}",
                error.unwrap_or_default()
            ))))
        }
        _ => unreachable!("the DLQ decodes to letters"),
    };
    let mut task = original_task(id, &letter).map_err(Failure::Cli)?;
    if let Some(priority) = priority {
        task.priority = priority;
    }
    let stream = task.priority.stream();
    let mut invocation = RETRY.key(DLQ_STREAM);
    invocation.key(stream).arg(id);
    for (field, value) in task.to_fields() {
        invocation.arg(field).arg(value);
    }
    let entry_id: Option<String> = invocation.invoke_async(conn).await?;
    match entry_id {
        Some(entry_id) => Ok(Retried {
            task_id: task.id,
            stream: stream.to_owned(),
            entry_id,
        }),
        // Deleted (or retried by someone else) between the read and the script.
        None => Err(Failure::Cli(not_found(id))),
    }
}

/// The letter's original task, or why it cannot be retried.
fn original_task(id: &str, letter: &DeadLetter) -> Result<cortex_shared::TaskMessage, CliError> {
    letter.original_task().map_err(|e| {
        CliError::Cannot(format!(
            "dead letter {id} cannot be retried: its original task does not decode ({e}); \
             delete it, or publish a corrected task"
        ))
    })
}

async fn delete(target: &mut Target, id: &str) -> Result<(), CliError> {
    match target {
        Target::Redis(conn, url) => {
            let deleted: i64 = redis::cmd("XDEL")
                .arg(DLQ_STREAM)
                .arg(id)
                .query_async(conn)
                .await
                .map_err(|e| CliError::redis(url, e))?;
            if deleted == 0 {
                return Err(not_found(id));
            }
            Ok(())
        }
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

fn not_found(id: &str) -> CliError {
    CliError::NotFound(format!(
        "no dead letter {id} in {DLQ_STREAM} (already retried or deleted?)"
    ))
}

/// The letters the relay lists, as entries.
async fn list_relay(client: &RelayClient, args: &ListArgs) -> Result<Vec<Entry>, CliError> {
    let path = format!(
        "/api/v1/messaging/dlq{}",
        query(&[
            ("to", args.to.as_ref().map(|a| a.to_string())),
            ("from", args.from.as_ref().map(|a| a.to_string())),
            ("priority", args.priority.map(|p| p.as_str().to_owned())),
            ("type", args.task_type.clone()),
            ("error", args.error.clone()),
            ("limit", Some(args.limit.to_string())),
        ])
    );
    let answer = client.call(Method::GET, &path, None).await?;
    let items = match &answer {
        Value::Array(items) => items.clone(),
        Value::Object(map) => ["letters", "dead_letters", "items", "entries"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array).cloned())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        let id = ["dlq_id", "entry_id", "id"]
            .iter()
            .find_map(|k| item.get(*k).and_then(Value::as_str))
            .unwrap_or("?")
            .to_owned();
        let body = ["letter", "data"]
            .iter()
            .find_map(|k| item.get(*k).filter(|v| v.is_object()))
            .unwrap_or(&item);
        let decoded = match serde_json::from_value::<DeadLetter>(body.clone()) {
            Ok(letter) => Decoded::DeadLetter(letter),
            Err(e) => Decoded::Raw {
                fields: body
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                                (k.clone(), text)
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                error: Some(e.to_string()),
            },
        };
        // The relay's filters are applied again here, in case it ignores one.
        if matches(args, &decoded) {
            entries.push(Entry {
                stream: DLQ_STREAM.to_owned(),
                entry_id: id,
                decoded,
                delivery_count: None,
            });
        }
    }
    entries.truncate(args.limit as usize);
    Ok(entries)
}

/// A dead letter written now, for tests: `task` failed with `error`.
#[cfg(test)]
fn letter_for(task: &cortex_shared::TaskMessage, error: &str) -> DeadLetter {
    DeadLetter {
        original_id: task.id.clone(),
        original_from: task.from.clone(),
        original_to: task.to.clone(),
        original_priority: task.priority.as_str().to_owned(),
        original_type: task.task_type.clone(),
        original_payload: Value::Object(task.payload.clone()).to_string(),
        original_created: task.created.to_string(),
        error: error.to_owned(),
        retry_count: 3,
        dead_at: super::publish::unix_now(),
        original_stream: None,
        original_entry_id: None,
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

    fn list_args(args: &[&str]) -> ListArgs {
        let argv = ["dlq", "list"].into_iter().chain(args.iter().copied());
        match Cli::try_parse_from(argv).unwrap().command {
            DlqCommand::List(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn filters_match_decoded_and_raw_letters() {
        let task = cortex_shared::TaskMessage {
            id: "t1".into(),
            from: "harold".into(),
            to: "pink".into(),
            priority: Priority::High,
            task_type: "coding".into(),
            payload: Default::default(),
            created: 1,
        };
        let letter = Decoded::DeadLetter(letter_for(&task, "processing timeout"));
        assert!(matches(&list_args(&[]), &letter));
        assert!(matches(
            &list_args(&["--to", "pink", "--priority", "high"]),
            &letter
        ));
        assert!(matches(
            &list_args(&["--error", "timeout", "--from", "harold"]),
            &letter
        ));
        assert!(!matches(&list_args(&["--to", "harold"]), &letter));
        assert!(!matches(&list_args(&["--type", "review"]), &letter));
        assert!(!matches(&list_args(&["--error", "crash"]), &letter));
        let raw = Decoded::Raw {
            fields: [("original_to".to_owned(), "pink".to_owned())].into(),
            error: Some("field `retry_count`: missing".into()),
        };
        assert!(matches(&list_args(&["--to", "pink"]), &raw));
        assert!(!matches(&list_args(&["--priority", "low"]), &raw));
    }
}
