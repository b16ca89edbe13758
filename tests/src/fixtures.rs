//! Test data in the README's Redis layout, written straight to Redis and read back: tasks,
//! heartbeats and dead letters; and the tokens of a relay config with one per role.

use crate::redis::{xadd, xadd_at};
use redis::aio::MultiplexedConnection;

/// The task streams, by priority.
pub const CRITICAL: &str = "cortex:tasks:critical";
/// See [`CRITICAL`].
pub const HIGH: &str = "cortex:tasks:high";
/// See [`CRITICAL`].
pub const NORMAL: &str = "cortex:tasks:normal";
/// See [`CRITICAL`].
pub const LOW: &str = "cortex:tasks:low";
/// The dead-letter stream.
pub const DLQ: &str = "cortex:tasks:dlq";
/// The heartbeat stream.
pub const HEARTBEATS: &str = "cortex:heartbeats";

/// The payload of most test tasks and letters.
pub const FIX_AUTH_BUG: &str = r#"{"description":"Fix auth bug"}"#;

/// XADDs a `coding` task from harold (created 1704556800) to `cortex:tasks:<priority>`
/// at entry id `at` (`*`: now); returns its entry id.
pub async fn add_task(
    conn: &mut MultiplexedConnection,
    at: &str,
    id: &str,
    to: &str,
    priority: &str,
    payload: &str,
) -> String {
    add_typed_task(conn, at, id, to, priority, "coding", payload).await
}

/// [`add_task`] with the task type `kind`.
pub async fn add_typed_task(
    conn: &mut MultiplexedConnection,
    at: &str,
    id: &str,
    to: &str,
    priority: &str,
    kind: &str,
    payload: &str,
) -> String {
    xadd_at(
        conn,
        &format!("cortex:tasks:{priority}"),
        at,
        &[
            ("id", id),
            ("from", "harold"),
            ("to", to),
            ("priority", priority),
            ("type", kind),
            ("payload", payload),
            ("created", "1704556800"),
        ],
    )
    .await
}

/// XADDs a `coding` task with [`FIX_AUTH_BUG`] to `stream` (one of [`CRITICAL`] …
/// [`LOW`]) now; returns its entry id.
pub async fn task(conn: &mut MultiplexedConnection, stream: &str, id: &str, to: &str) -> String {
    let priority = stream.rsplit(':').next().unwrap();
    add_task(conn, "*", id, to, priority, FIX_AUTH_BUG).await
}

/// XADDs a heartbeat of `agent` at `time` (status busy); returns its entry id.
pub async fn heartbeat(conn: &mut MultiplexedConnection, agent: &str, time: &str) -> String {
    xadd(
        conn,
        HEARTBEATS,
        &[
            ("agent", agent),
            ("time", time),
            ("status", r#"{"state":"busy"}"#),
        ],
    )
    .await
}

/// XADDs a dead letter of task `id` (harold to pink, high, coding, [`FIX_AUTH_BUG`],
/// three retries) that died of `error`; returns its DLQ id.
pub async fn letter(conn: &mut MultiplexedConnection, id: &str, error: &str) -> String {
    xadd(
        conn,
        DLQ,
        &[
            ("original_id", id),
            ("original_from", "harold"),
            ("original_to", "pink"),
            ("original_priority", "high"),
            ("original_type", "coding"),
            ("original_payload", FIX_AUTH_BUG),
            ("original_created", "1704556800"),
            ("error", error),
            ("retry_count", "3"),
            ("dead_at", "1704556900"),
        ],
    )
    .await
}

/// Stream entries as XRANGE returns them: id and fields.
pub type Entries = Vec<(String, Vec<(String, String)>)>;

/// Every entry of `stream`.
pub async fn xrange(conn: &mut MultiplexedConnection, stream: &str) -> Entries {
    redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .unwrap()
}

/// The value of the field `name` of an entry.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The length of `stream`.
pub async fn xlen(conn: &mut MultiplexedConnection, stream: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(conn)
        .await
        .unwrap()
}

/// The viewer's token in [`tokens_config`].
pub const VIEWER: &str = "viewer-token-000001";
/// The agent's token in [`tokens_config`] (it may act as pink only).
pub const AGENT: &str = "agent-pink-token-01";
/// The admin's token in [`tokens_config`].
pub const ADMIN: &str = "admin-token-0000001";

/// A relay config (for [`crate::relay::Relay::start_with_config`]) with one token per
/// role: [`VIEWER`], [`AGENT`], [`ADMIN`].
pub fn tokens_config() -> String {
    format!(
        "relay:\n  tokens:\n  - {{token: {VIEWER}, role: viewer}}\n  - {{token: {AGENT}, role: \
         agent, agents: [pink]}}\n  - {{token: {ADMIN}, role: admin}}\n"
    )
}

/// The task streams, most urgent first.
pub const TASK_STREAMS: [&str; 4] = [CRITICAL, HIGH, NORMAL, LOW];

/// One consumer group on one task stream, as `XINFO GROUPS` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The stream.
    pub stream: &'static str,
    /// The group, e.g. `agent:pink`.
    pub group: String,
    /// Entries delivered and not acked.
    pub pending: usize,
    /// Entries not yet delivered to the group, as Redis counts them (`None` when it
    /// cannot tell; after restarts Redis 7.0 may report a stale number).
    pub lag: Option<usize>,
    /// The last entry delivered to the group.
    pub last_delivered_id: String,
    /// Whether the stream holds entries after [`GroupState::last_delivered_id`], i.e.
    /// not yet delivered to the group (from the ids, whatever `lag` says).
    pub behind: bool,
}

/// Every consumer group on every task stream (streams that do not exist have none).
pub async fn task_groups(conn: &mut MultiplexedConnection) -> Vec<GroupState> {
    let mut out = Vec::new();
    for stream in TASK_STREAMS {
        let reply: redis::RedisResult<redis::streams::StreamInfoGroupsReply> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(conn)
            .await;
        let Ok(reply) = reply else { continue };
        // Read as a map of values: the first and last entries in it may hold field
        // names that are not UTF-8.
        let info: std::collections::HashMap<String, redis::Value> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(stream)
            .query_async(conn)
            .await
            .expect("XINFO STREAM");
        let last: Option<cortex_shared::EntryId> = info
            .get("last-generated-id")
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
            .and_then(|id| id.parse().ok());
        out.extend(reply.groups.into_iter().map(|g| GroupState {
            stream,
            behind: g.last_delivered_id.parse::<cortex_shared::EntryId>().ok() < last,
            group: g.name,
            pending: g.pending,
            lag: g.lag,
            last_delivered_id: g.last_delivered_id,
        }));
    }
    out
}

/// How many times Redis counts entry `entry_id` of `stream` as delivered to `group`
/// (`XPENDING`); `None` when it is not pending there.
pub async fn times_delivered(
    conn: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
    entry_id: &str,
) -> Option<usize> {
    let reply: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg(entry_id)
        .arg(entry_id)
        .arg(1)
        .query_async(conn)
        .await
        .expect("XPENDING");
    reply.ids.first().map(|p| p.times_delivered)
}
