//! Bodies of the HTTP API under `/api/v1` (README, "HTTP API"): JSON, snake_case.
//!
//! Requests refuse fields they do not know (a misspelt filter must not widen a bulk
//! delete to every letter); responses may grow fields, which clients ignore.

use crate::entry::{DeadLetter, Heartbeat, JsonObject, Priority, TaskMessage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every API error: `{"code":"not_found","message":"no dead letter 1704556900000-0"}`.
/// `code` is stable and machine-readable; `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code, e.g. `invalid_filter`, `not_found`, `already_retried`,
    /// `redis_unavailable`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

/// Whether an agent is alive, from the age of its last heartbeat.
///
/// JSON: `"online"`, `"stale"`, `"offline"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// A heartbeat younger than the stale threshold.
    Online,
    /// A heartbeat older than the stale threshold, younger than the offline one.
    Stale,
    /// No heartbeat within the offline threshold (or none ever seen).
    Offline,
}

impl Presence {
    /// The presence of an agent whose last heartbeat is `age_ms` old.
    pub fn of_age(age_ms: u64, stale_after_ms: u64, offline_after_ms: u64) -> Self {
        if age_ms >= offline_after_ms.max(stale_after_ms) {
            Presence::Offline
        } else if age_ms >= stale_after_ms {
            Presence::Stale
        } else {
            Presence::Online
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Stale => "stale",
            Presence::Offline => "offline",
        }
    }
}

/// What happened to dead letters, in a `dlq` WebSocket frame.
///
/// JSON: `"added"`, `"retried"`, `"deleted"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DlqAction {
    /// Written to `cortex:tasks:dlq`.
    Added,
    /// Republished to a task stream and removed from the DLQ.
    Retried,
    /// Removed from the DLQ.
    Deleted,
}

impl DlqAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DlqAction::Added => "added",
            DlqAction::Retried => "retried",
            DlqAction::Deleted => "deleted",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Self> {
        [DlqAction::Added, DlqAction::Retried, DlqAction::Deleted]
            .into_iter()
            .find(|a| a.as_str() == name)
    }
}

/// Which dead letters: the body of bulk actions (`"filter":{…}`). Every field narrows
/// the selection; absent (or empty text) fields do not. The listing's query parameters
/// have the same names.
///
/// JSON: `{"agent":"pink","priority":"high","type":"coding","error":"timeout",
/// "payload":"auth","since_ms":1704556800000,"until_ms":1704643200000}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqFilter {
    /// The letter's `original_to` or `original_from` is this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The letter's `original_priority` (critical, high, normal, low).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// The letter's `original_type`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    /// Text in the letter's `error`, ignoring case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Text in the letter's `original_payload`, ignoring case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// Written to the DLQ at or after this time (unix milliseconds; its DLQ id's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// Written to the DLQ at or before this time (unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

/// The query of `GET /api/v1/messaging/dlq`: a [`DlqFilter`]'s fields, plus paging.
///
/// `?agent=pink&error=timeout&limit=50&cursor=1704556900000-0`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqListQuery {
    /// See [`DlqFilter::agent`].
    pub agent: Option<String>,
    /// See [`DlqFilter::priority`].
    pub priority: Option<String>,
    /// See [`DlqFilter::task_type`].
    #[serde(rename = "type")]
    pub task_type: Option<String>,
    /// See [`DlqFilter::error`].
    pub error: Option<String>,
    /// See [`DlqFilter::payload`].
    pub payload: Option<String>,
    /// See [`DlqFilter::since_ms`].
    pub since_ms: Option<u64>,
    /// See [`DlqFilter::until_ms`].
    pub until_ms: Option<u64>,
    /// The previous page's `next_cursor`: continue with letters older than it.
    pub cursor: Option<String>,
    /// Letters per page, 1 to 1000; default 50.
    pub limit: Option<usize>,
}

impl DlqListQuery {
    /// The filter part.
    pub fn filter(&self) -> DlqFilter {
        DlqFilter {
            agent: self.agent.clone(),
            priority: self.priority.clone(),
            task_type: self.task_type.clone(),
            error: self.error.clone(),
            payload: self.payload.clone(),
            since_ms: self.since_ms,
            until_ms: self.until_ms,
        }
    }
}

/// One dead letter with its DLQ id: the letter's fields, flattened.
///
/// JSON: `{"dlq_id":"1704556900000-0","original_id":"task-001",…,"error":"timeout",
/// "retry_count":3,"dead_at":1704556900}` (every [`DeadLetter`] field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqItem {
    /// Its entry id in `cortex:tasks:dlq`.
    pub dlq_id: String,
    /// The letter.
    #[serde(flatten)]
    pub letter: DeadLetter,
}

/// A page of `GET /api/v1/messaging/dlq`, newest first.
///
/// JSON: `{"items":[{"dlq_id":…},…],"next_cursor":"1704556900000-0","scanned":120}`;
/// `next_cursor` is `null` on the last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqPage {
    /// The letters, newest first.
    pub items: Vec<DlqItem>,
    /// Pass as `cursor` for the next page; `null` when there is none.
    pub next_cursor: Option<String>,
    /// Letters read to fill this page.
    pub scanned: u64,
}

/// The optional body of `POST /api/v1/messaging/dlq/retry/{dlq_id}`.
///
/// JSON: `{"priority":"critical","payload":{"description":"Fix auth bug, take 2"}}`;
/// every field optional. Without `priority` the task goes back to its own priority.
/// The task fields `id`, `from`, `to`, `type`, `created` and `payload` replace the
/// letter's (say for an entry that lacked `to`, or whose payload was not UTF-8); any
/// of them marks the task `edited`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Republish at this priority instead of the original one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Replace the payload (must be a JSON object); the task is marked `edited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// Replace the task's `id` (not empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Replace the task's sender (an agent name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Replace the task's addressee (an agent name; `""` or `"*"`: every agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Replace the task's type (a word).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    /// Replace the task's creation time (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
}

/// A letter retried: the task is back in a task stream, with its own id.
///
/// JSON: `{"dlq_id":"1704556900000-0","task_id":"task-001","stream":"cortex:tasks:high",
/// "entry_id":"1704557000000-0","retry_count":1,"edited":false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retried {
    /// The letter, now gone from the DLQ.
    pub dlq_id: String,
    /// The task's `id`, unchanged.
    pub task_id: String,
    /// The stream it was republished to.
    pub stream: String,
    /// Its new entry id there.
    pub entry_id: String,
    /// How many times this task has been retried from the DLQ, this time included.
    pub retry_count: u64,
    /// Whether its payload was replaced.
    pub edited: bool,
}

/// A letter deleted. JSON: `{"dlq_id":"1704556900000-0","deleted":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// The letter, now gone.
    pub dlq_id: String,
    /// Always true.
    pub deleted: bool,
}

/// The body of `POST /api/v1/messaging/dlq/retry` and `…/dlq/delete`: either `ids` or
/// `filter` (`{}` selects every letter). Retry also takes `priority`.
///
/// JSON: `{"ids":["1704556900000-0","1704556900001-0"]}`,
/// `{"filter":{"agent":"pink","error":"timeout"},"priority":"high"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// These letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
    /// The letters matching this filter (when the request is handled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<DlqFilter>,
    /// Retry only: republish at this priority instead of each letter's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
}

/// What a bulk action did. Every selected letter is counted once: `acted` (retried or
/// deleted), `gone` (not in the DLQ: already acted on, or never there), or `failed`
/// (left in the DLQ, e.g. a letter whose task does not decode cannot be retried).
///
/// JSON: `{"matched":1000,"acted":998,"gone":1,"failed":1,
/// "failures":[{"dlq_id":"…","code":"not_retryable","message":"field `payload`: …"}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkResult {
    /// Letters selected (ids given, or letters matching the filter).
    pub matched: u64,
    /// Letters retried or deleted.
    pub acted: u64,
    /// Letters that were not in the DLQ.
    pub gone: u64,
    /// Letters left in the DLQ.
    pub failed: u64,
    /// Why, for the first 100 failures.
    pub failures: Vec<BulkFailure>,
}

/// One letter a bulk action left in the DLQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkFailure {
    /// The letter.
    pub dlq_id: String,
    /// A stable code, e.g. `not_retryable`.
    pub code: String,
    /// Why, for people.
    pub message: String,
}

/// `GET /api/v1/messaging/dlq/stats`.
///
/// JSON: `{"length":3,"oldest_id":"1704556900000-0","oldest_age_ms":86400000,
/// "newest_id":"…","by_error":[{"error":"timeout","count":2}],"by_agent":{"pink":3},
/// "by_priority":{"high":3},"warn_length":1000,"over_warn_length":false}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqStats {
    /// Letters in the DLQ.
    pub length: u64,
    /// The oldest letter's DLQ id.
    pub oldest_id: Option<String>,
    /// How long ago the oldest letter was written, in milliseconds.
    pub oldest_age_ms: Option<u64>,
    /// The newest letter's DLQ id.
    pub newest_id: Option<String>,
    /// Letters per error text, most frequent first (the first 50).
    pub by_error: Vec<ErrorCount>,
    /// Letters per addressee (`original_to`; `*` for tasks to every agent).
    pub by_agent: BTreeMap<String, u64>,
    /// Letters per original priority (as written).
    pub by_priority: BTreeMap<String, u64>,
    /// The length above which the DLQ needs attention (`--dlq-warn-length`).
    pub warn_length: u64,
    /// Whether `length` is above `warn_length`.
    pub over_warn_length: bool,
}

/// Letters with one error text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// The error text (at most 200 characters).
    pub error: String,
    /// How many letters have it.
    pub count: u64,
}

/// The query of `GET /api/v1/streams/{stream}/entries`: one of an id range
/// (`start`, `end`, `count`), a time range (`since_ms`, `until_ms`, `count`), or the
/// newest `last` entries. Nothing: the first `count` entries.
///
/// `?since_ms=1704556800000&until_ms=1704560400000&count=500`, `?last=20`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    /// First entry id, inclusive (default: the oldest).
    pub start: Option<String>,
    /// Last entry id, inclusive (default: the newest).
    pub end: Option<String>,
    /// Entries at most, 1 to 1000; default 100.
    pub count: Option<usize>,
    /// Entries added at or after this time (unix milliseconds).
    pub since_ms: Option<u64>,
    /// Entries added at or before this time (unix milliseconds).
    pub until_ms: Option<u64>,
    /// The newest this many entries (1 to 1000), oldest first.
    pub last: Option<usize>,
}

/// One replayed entry: decoded (`task`, `heartbeat` or `letter`, by stream) or, when it
/// does not decode, its `raw` fields and the decode `error`.
///
/// JSON: `{"entry_id":"1704556800000-0","task":{"id":"task-001",…}}`,
/// `{"entry_id":"…","raw":{"id":"x","payload":"{broken"},"error":"field `payload`: …"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayEntry {
    /// Its stream entry id.
    pub entry_id: String,
    /// A task stream's entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskMessage>,
    /// A heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<Heartbeat>,
    /// A dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub letter: Option<DeadLetter>,
    /// The fields as they are, for an entry that does not decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<BTreeMap<String, String>>,
    /// Why it does not decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /api/v1/streams/{stream}/entries`, oldest first.
///
/// JSON: `{"stream":"cortex:tasks:high","entries":[…],"next_start":"1704556800001-0"}`;
/// `next_start` (pass it as `start` with the same `end`) is `null` when the range is
/// exhausted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayPage {
    /// The stream.
    pub stream: String,
    /// Its entries in the range, oldest first.
    pub entries: Vec<ReplayEntry>,
    /// Where the next page starts, if the range holds more.
    pub next_start: Option<String>,
}

/// `GET /api/v1/messaging/metrics`.
///
/// JSON: `{"streams":[…],"latency":{…},"relay":{…},"dlq":{…},"at_ms":1704556800000}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagingMetrics {
    /// Every `cortex:*` stream.
    pub streams: Vec<StreamMetrics>,
    /// Delivery latency over the relay's recent window.
    pub latency: LatencyMetrics,
    /// This relay's own counters.
    pub relay: RelayCounters,
    /// The DLQ's length and warning threshold.
    pub dlq: DlqSummary,
    /// When this was measured (unix milliseconds).
    pub at_ms: u64,
}

/// One stream, as `XINFO STREAM` and `XINFO GROUPS` report it.
///
/// JSON: `{"stream":"cortex:tasks:high","length":3,"first_id":"…","last_id":"…",
/// "last_generated_id":"…","entries_added":5,"groups":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamMetrics {
    /// The key.
    pub stream: String,
    /// Entries in it.
    pub length: u64,
    /// Its oldest entry.
    pub first_id: Option<String>,
    /// Its newest entry.
    pub last_id: Option<String>,
    /// The newest id it ever generated.
    pub last_generated_id: String,
    /// Entries ever added (Redis 7).
    pub entries_added: Option<u64>,
    /// Its consumer groups.
    pub groups: Vec<GroupMetrics>,
}

/// One consumer group.
///
/// JSON: `{"name":"agent:pink","pending":1,"lag":0,"last_delivered_id":"…",
/// "entries_read":5,"consumers":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMetrics {
    /// The group's name (`agent:<name>` for an agent's group).
    pub name: String,
    /// Entries delivered and not acked.
    pub pending: u64,
    /// Entries not yet delivered to the group (Redis 7; `null` when Redis cannot tell).
    pub lag: Option<u64>,
    /// The newest entry delivered to the group.
    pub last_delivered_id: String,
    /// Entries the group has read (Redis 7).
    pub entries_read: Option<u64>,
    /// Its consumers.
    pub consumers: Vec<ConsumerMetrics>,
}

/// One consumer of a group.
///
/// JSON: `{"name":"pink-1","pending":1,"idle_ms":120,"inactive_ms":120}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMetrics {
    /// Its name.
    pub name: String,
    /// Entries it holds, not acked.
    pub pending: u64,
    /// Since its last read or claim attempt, in milliseconds.
    pub idle_ms: u64,
    /// Since its last successful read or claim (Redis 7.2; `null` before, or never).
    pub inactive_ms: Option<u64>,
}

/// Latency distributions over the relay's recent window.
///
/// JSON: `{"window_seconds":300,"publish_to_delivery":{…},"delivery_to_ack":{…}}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyMetrics {
    /// How far back samples count.
    pub window_seconds: u64,
    /// From a task's XADD to its delivery to a consumer.
    pub publish_to_delivery: LatencySummary,
    /// From delivery to the consumer's ack.
    pub delivery_to_ack: LatencySummary,
}

/// Percentiles of one latency, in milliseconds.
///
/// JSON: `{"count":120,"p50_ms":1.2,"p90_ms":2.5,"p99_ms":8.0,"max_ms":12.3}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples in the window.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// The relay's own counters (since it started) and gauges.
///
/// JSON: `{"connections":2,"frames_in":10,"frames_out":40,"slow_client_disconnects":0,
/// "redis_reconnects":0,"deliveries":5,"acks":5,"nacks":0,"dead_letters":0}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayCounters {
    /// WebSocket connections open now.
    pub connections: u64,
    /// Client frames received.
    pub frames_in: u64,
    /// Frames queued to clients.
    pub frames_out: u64,
    /// Clients closed because they could not keep up.
    pub slow_client_disconnects: u64,
    /// Times a reader or consumer lost Redis and connected again.
    pub redis_reconnects: u64,
    /// Tasks delivered to consumers.
    pub deliveries: u64,
    /// Tasks acked.
    pub acks: u64,
    /// Tasks nacked.
    pub nacks: u64,
    /// Tasks the relay moved to the DLQ.
    pub dead_letters: u64,
}

/// The DLQ's size against its warning threshold.
///
/// JSON: `{"length":3,"warn_length":1000,"over_warn_length":false}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlqSummary {
    /// Letters in the DLQ.
    pub length: u64,
    /// `--dlq-warn-length`.
    pub warn_length: u64,
    /// Whether `length` is above it.
    pub over_warn_length: bool,
}

/// `GET /api/v1/agents`.
///
/// JSON: `{"agents":[…],"stale_after_ms":30000,"offline_after_ms":120000,
/// "consumer_dead_after_ms":60000}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentsReply {
    /// Every agent seen in recent heartbeats or with a consumer group, by name.
    pub agents: Vec<AgentInfo>,
    /// A heartbeat older than this makes an agent stale.
    pub stale_after_ms: u64,
    /// A heartbeat older than this makes an agent offline.
    pub offline_after_ms: u64,
    /// A consumer idle longer than this counts as dead.
    pub consumer_dead_after_ms: u64,
}

/// One agent.
///
/// JSON: `{"name":"pink","presence":"online","last_heartbeat_ms":1704556800000,
/// "last_heartbeat_time":1704556800,"status":{"state":"busy"},"pending":2,
/// "consumers":[{"name":"pink-1","pending":2,"idle_ms":300,"alive":true}],
/// "consumer_alive":true,"pending_on_dead_consumers":0,"stuck":false}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The agent's name.
    pub name: String,
    /// From its last heartbeat's age.
    pub presence: Presence,
    /// When Redis added its last heartbeat (unix milliseconds, the entry id's time).
    pub last_heartbeat_ms: Option<u64>,
    /// The `time` its last heartbeat carried (unix seconds, the agent's clock).
    pub last_heartbeat_time: Option<i64>,
    /// The `status` its last heartbeat carried.
    pub status: Option<JsonObject>,
    /// Tasks delivered to its consumers and not acked, over every task stream.
    pub pending: u64,
    /// Its group's consumers (merged over the task streams).
    pub consumers: Vec<AgentConsumer>,
    /// Whether any of its consumers is alive.
    pub consumer_alive: bool,
    /// Pending tasks held by dead consumers.
    pub pending_on_dead_consumers: u64,
    /// Online, yet some of its pending tasks sit with a dead consumer.
    pub stuck: bool,
}

/// One consumer of an agent's group.
///
/// JSON: `{"name":"pink-1","pending":2,"idle_ms":300,"alive":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentConsumer {
    /// Its name.
    pub name: String,
    /// Tasks it holds, not acked.
    pub pending: u64,
    /// Since its last read or claim on any task stream, in milliseconds (`XINFO
    /// CONSUMERS` `idle`: every attempt on Redis 7.2 and later; before 7.2 only reads
    /// that returned entries, so a quiet consumer looks idle there).
    pub idle_ms: u64,
    /// Whether `idle_ms` is below `consumer_dead_after_ms`.
    pub alive: bool,
}

/// The body of `POST /api/v1/tasks`.
///
/// JSON: `{"to":"pink","priority":"high","type":"coding",
/// "payload":{"description":"Fix auth bug"},"from":"operator"}`. `to` empty (or `*`)
/// addresses every agent; `payload` defaults to `{}`; `from` to `operator`;
/// `parent_id` and `correlation_id` are optional (a trace).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The agent it is for; empty or `*` for every agent.
    pub to: String,
    /// Its priority.
    pub priority: Priority,
    /// Its type: a word (`[A-Za-z0-9_-]`, 1 to 64 characters).
    #[serde(rename = "type")]
    pub task_type: String,
    /// Its data: a JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// The sender (an agent name); default `operator`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The task that spawned this one (its `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The trace it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// A published task.
///
/// JSON: `{"task_id":"6f1c…","stream":"cortex:tasks:high","entry_id":"1704556800000-0"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// Its `id`, a new UUID.
    pub task_id: String,
    /// Its stream.
    pub stream: String,
    /// Its entry id there.
    pub entry_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::{json, Value};
    use std::fmt::Debug;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T, golden: Value) {
        assert_eq!(serde_json::to_value(&value).unwrap(), golden);
        assert_eq!(serde_json::from_value::<T>(golden).unwrap(), value);
    }

    fn letter() -> DeadLetter {
        DeadLetter {
            original_id: "task-001".into(),
            original_from: "harold".into(),
            original_to: "pink".into(),
            original_priority: "high".into(),
            original_type: "coding".into(),
            original_payload: r#"{"test":"data"}"#.into(),
            original_created: "1704556800".into(),
            error: "processing timeout".into(),
            retry_count: 3,
            dead_at: 1_704_556_900,
            original_stream: Some("cortex:tasks:high".into()),
            original_entry_id: Some("1704556800000-0".into()),
            ..Default::default()
        }
    }

    #[test]
    fn presence_and_actions() {
        round_trip(Presence::Stale, json!("stale"));
        round_trip(DlqAction::Retried, json!("retried"));
        assert_eq!(Presence::of_age(0, 30, 120), Presence::Online);
        assert_eq!(Presence::of_age(30, 30, 120), Presence::Stale);
        assert_eq!(Presence::of_age(120, 30, 120), Presence::Offline);
        // An offline threshold below the stale one means "straight to offline".
        assert_eq!(Presence::of_age(50, 30, 10), Presence::Offline);
        for a in [DlqAction::Added, DlqAction::Retried, DlqAction::Deleted] {
            assert_eq!(DlqAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(DlqAction::parse("moved"), None);
    }

    #[test]
    fn dlq_item_flattens_the_letter() {
        round_trip(
            DlqItem {
                dlq_id: "1704556900000-0".into(),
                letter: letter(),
            },
            json!({"dlq_id":"1704556900000-0","original_id":"task-001",
                   "original_from":"harold","original_to":"pink","original_priority":"high",
                   "original_type":"coding","original_payload":"{\"test\":\"data\"}",
                   "original_created":"1704556800","error":"processing timeout",
                   "retry_count":3,"dead_at":1704556900,"original_stream":"cortex:tasks:high",
                   "original_entry_id":"1704556800000-0"}),
        );
        round_trip(
            DlqPage {
                items: vec![],
                next_cursor: None,
                scanned: 0,
            },
            json!({"items":[],"next_cursor":null,"scanned":0}),
        );
    }

    #[test]
    fn filters_refuse_unknown_fields() {
        round_trip(
            DlqFilter {
                agent: Some("pink".into()),
                task_type: Some("coding".into()),
                since_ms: Some(5),
                ..DlqFilter::default()
            },
            json!({"agent":"pink","type":"coding","since_ms":5}),
        );
        round_trip(DlqFilter::default(), json!({}));
        let err = serde_json::from_value::<DlqFilter>(json!({"agnet":"pink"})).unwrap_err();
        assert!(err.to_string().contains("agnet"), "{err}");
        let err = serde_json::from_value::<BulkRequest>(json!({"filters":{}})).unwrap_err();
        assert!(err.to_string().contains("filters"), "{err}");
        let query = DlqListQuery {
            agent: Some("pink".into()),
            limit: Some(10),
            ..DlqListQuery::default()
        };
        assert_eq!(query.filter().agent.as_deref(), Some("pink"));
    }

    #[test]
    fn retry_and_bulk_bodies() {
        round_trip(RetryRequest::default(), json!({}));
        round_trip(
            RetryRequest {
                priority: Some(Priority::Critical),
                payload: Some(json!({"description":"again"})),
                ..RetryRequest::default()
            },
            json!({"priority":"critical","payload":{"description":"again"}}),
        );
        assert!(serde_json::from_value::<RetryRequest>(json!({"priority":"urgent"})).is_err());
        round_trip(
            Retried {
                dlq_id: "1-0".into(),
                task_id: "task-001".into(),
                stream: "cortex:tasks:high".into(),
                entry_id: "2-0".into(),
                retry_count: 1,
                edited: false,
            },
            json!({"dlq_id":"1-0","task_id":"task-001","stream":"cortex:tasks:high",
                   "entry_id":"2-0","retry_count":1,"edited":false}),
        );
        round_trip(
            Deleted {
                dlq_id: "1-0".into(),
                deleted: true,
            },
            json!({"dlq_id":"1-0","deleted":true}),
        );
        round_trip(
            BulkRequest {
                ids: Some(vec!["1-0".into()]),
                ..BulkRequest::default()
            },
            json!({"ids":["1-0"]}),
        );
        round_trip(
            BulkRequest {
                filter: Some(DlqFilter::default()),
                priority: Some(Priority::High),
                ..BulkRequest::default()
            },
            json!({"filter":{},"priority":"high"}),
        );
        round_trip(
            BulkResult {
                matched: 3,
                acted: 1,
                gone: 1,
                failed: 1,
                failures: vec![BulkFailure {
                    dlq_id: "1-0".into(),
                    code: "not_retryable".into(),
                    message: "bad".into(),
                }],
            },
            json!({"matched":3,"acted":1,"gone":1,"failed":1,
                   "failures":[{"dlq_id":"1-0","code":"not_retryable","message":"bad"}]}),
        );
    }

    #[test]
    fn stats_and_metrics() {
        round_trip(
            DlqStats {
                length: 3,
                oldest_id: Some("1-0".into()),
                oldest_age_ms: Some(10),
                newest_id: Some("3-0".into()),
                by_error: vec![ErrorCount {
                    error: "timeout".into(),
                    count: 3,
                }],
                by_agent: [("pink".to_owned(), 3)].into(),
                by_priority: [("high".to_owned(), 3)].into(),
                warn_length: 1000,
                over_warn_length: false,
            },
            json!({"length":3,"oldest_id":"1-0","oldest_age_ms":10,"newest_id":"3-0",
                   "by_error":[{"error":"timeout","count":3}],"by_agent":{"pink":3},
                   "by_priority":{"high":3},"warn_length":1000,"over_warn_length":false}),
        );
        round_trip(
            MessagingMetrics {
                streams: vec![StreamMetrics {
                    stream: "cortex:tasks:high".into(),
                    length: 1,
                    first_id: Some("1-0".into()),
                    last_id: Some("1-0".into()),
                    last_generated_id: "1-0".into(),
                    entries_added: Some(1),
                    groups: vec![GroupMetrics {
                        name: "agent:pink".into(),
                        pending: 1,
                        lag: Some(0),
                        last_delivered_id: "1-0".into(),
                        entries_read: Some(1),
                        consumers: vec![ConsumerMetrics {
                            name: "pink-1".into(),
                            pending: 1,
                            idle_ms: 5,
                            inactive_ms: None,
                        }],
                    }],
                }],
                latency: LatencyMetrics {
                    window_seconds: 300,
                    publish_to_delivery: LatencySummary {
                        count: 1,
                        p50_ms: 1.5,
                        p90_ms: 1.5,
                        p99_ms: 1.5,
                        max_ms: 1.5,
                    },
                    delivery_to_ack: LatencySummary::default(),
                },
                relay: RelayCounters::default(),
                dlq: DlqSummary {
                    length: 0,
                    warn_length: 1000,
                    over_warn_length: false,
                },
                at_ms: 7,
            },
            json!({"streams":[{"stream":"cortex:tasks:high","length":1,"first_id":"1-0",
                    "last_id":"1-0","last_generated_id":"1-0","entries_added":1,
                    "groups":[{"name":"agent:pink","pending":1,"lag":0,
                      "last_delivered_id":"1-0","entries_read":1,
                      "consumers":[{"name":"pink-1","pending":1,"idle_ms":5,
                                    "inactive_ms":null}]}]}],
                   "latency":{"window_seconds":300,
                     "publish_to_delivery":{"count":1,"p50_ms":1.5,"p90_ms":1.5,
                                            "p99_ms":1.5,"max_ms":1.5},
                     "delivery_to_ack":{"count":0,"p50_ms":0.0,"p90_ms":0.0,"p99_ms":0.0,
                                        "max_ms":0.0}},
                   "relay":{"connections":0,"frames_in":0,"frames_out":0,
                            "slow_client_disconnects":0,"redis_reconnects":0,
                            "deliveries":0,"acks":0,"nacks":0,"dead_letters":0},
                   "dlq":{"length":0,"warn_length":1000,"over_warn_length":false},
                   "at_ms":7}),
        );
    }

    #[test]
    fn replay_entries_decoded_or_raw() {
        round_trip(
            ReplayEntry {
                entry_id: "1-0".into(),
                task: None,
                heartbeat: Some(Heartbeat {
                    agent: "pink".into(),
                    time: 1,
                    status: JsonObject::new(),
                }),
                letter: None,
                raw: None,
                error: None,
            },
            json!({"entry_id":"1-0","heartbeat":{"agent":"pink","time":1,"status":{}}}),
        );
        round_trip(
            ReplayPage {
                stream: "cortex:tasks:low".into(),
                entries: vec![ReplayEntry {
                    entry_id: "2-0".into(),
                    task: None,
                    heartbeat: None,
                    letter: None,
                    raw: Some([("payload".to_owned(), "{broken".to_owned())].into()),
                    error: Some("field `id`: missing".into()),
                }],
                next_start: Some("2-1".into()),
            },
            json!({"stream":"cortex:tasks:low","entries":[{"entry_id":"2-0",
                    "raw":{"payload":"{broken"},"error":"field `id`: missing"}],
                   "next_start":"2-1"}),
        );
        let err = serde_json::from_value::<ReplayQuery>(json!({"begin":"1"})).unwrap_err();
        assert!(err.to_string().contains("begin"), "{err}");
    }

    #[test]
    fn agents_and_publish() {
        round_trip(
            AgentsReply {
                agents: vec![AgentInfo {
                    name: "pink".into(),
                    presence: Presence::Online,
                    last_heartbeat_ms: Some(1_704_556_800_000),
                    last_heartbeat_time: Some(1_704_556_800),
                    status: Some(json!({"state":"busy"}).as_object().unwrap().clone()),
                    pending: 2,
                    consumers: vec![AgentConsumer {
                        name: "pink-1".into(),
                        pending: 2,
                        idle_ms: 300,
                        alive: true,
                    }],
                    consumer_alive: true,
                    pending_on_dead_consumers: 0,
                    stuck: false,
                }],
                stale_after_ms: 30_000,
                offline_after_ms: 120_000,
                consumer_dead_after_ms: 60_000,
            },
            json!({"agents":[{"name":"pink","presence":"online",
                    "last_heartbeat_ms":1704556800000u64,"last_heartbeat_time":1704556800,
                    "status":{"state":"busy"},"pending":2,
                    "consumers":[{"name":"pink-1","pending":2,"idle_ms":300,"alive":true}],
                    "consumer_alive":true,"pending_on_dead_consumers":0,"stuck":false}],
                   "stale_after_ms":30000,"offline_after_ms":120000,
                   "consumer_dead_after_ms":60000}),
        );
        round_trip(
            PublishRequest {
                to: "pink".into(),
                priority: Priority::High,
                task_type: "coding".into(),
                payload: Some(json!({"description":"Fix auth bug"})),
                from: None,
                parent_id: None,
                correlation_id: None,
            },
            json!({"to":"pink","priority":"high","type":"coding",
                   "payload":{"description":"Fix auth bug"}}),
        );
        assert!(serde_json::from_value::<PublishRequest>(
            json!({"to":"pink","priority":"high","type":"coding","prio":"x"})
        )
        .is_err());
        round_trip(
            Published {
                task_id: "t".into(),
                stream: "cortex:tasks:high".into(),
                entry_id: "1-0".into(),
            },
            json!({"task_id":"t","stream":"cortex:tasks:high","entry_id":"1-0"}),
        );
        round_trip(
            ErrorBody {
                code: "not_found".into(),
                message: "no dead letter 1-0".into(),
            },
            json!({"code":"not_found","message":"no dead letter 1-0"}),
        );
    }
}
