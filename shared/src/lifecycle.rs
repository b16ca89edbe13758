//! Where every task is: its state for each agent it is addressed to, and the
//! lifecycle record the relay writes of what it does to it (README, "Task lifecycle").
//!
//! - [`TaskState`]: a task's state for one agent, derived from that agent's consumer
//!   group (last delivered id, pending entries) and the lifecycle record.
//! - [`LifecycleEvent`] and [`LifecycleRecord`]: one thing the relay did to a task, as
//!   kept in Redis (`cortex:lifecycle`, and the task's own list `cortex:task:<id>`).
//! - [`TaskReply`], [`TaskAgentState`], [`TimelineItem`]: `GET /api/v1/tasks/{id}`.
//! - [`TaskListReply`]: `GET /api/v1/tasks?agent=…&state=…`.
//! - [`TraceReply`]: `GET /api/v1/traces/{correlation_id}`.
//! - [`AgentOutcomes`]: `GET /api/v1/agents/{name}/outcomes`.
//!
//! Every type here round-trips through the JSON shown on it.

use crate::{JsonObject, TaskMessage};
use serde::{Deserialize, Serialize};

/// A task's state for one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Not yet delivered to the agent's group (after its last delivered id, or the
    /// group does not exist yet).
    Waiting,
    /// Pending on a consumer of the group: delivered, not acked.
    InProgress,
    /// Pending, but failed (nacked) or idle past the visibility timeout: it will be
    /// delivered again.
    Retrying,
    /// Delivered and acked.
    Done,
    /// In the dead letter queue.
    Dead,
    /// Revived from the dead letter queue as a new entry.
    Retried,
}

impl TaskState {
    /// Every state, in the order a task moves through them.
    pub const ALL: [TaskState; 6] = [
        TaskState::Waiting,
        TaskState::InProgress,
        TaskState::Retrying,
        TaskState::Done,
        TaskState::Dead,
        TaskState::Retried,
    ];

    /// Its name on the wire: `waiting`, `in_progress`, …
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Waiting => "waiting",
            TaskState::InProgress => "in_progress",
            TaskState::Retrying => "retrying",
            TaskState::Done => "done",
            TaskState::Dead => "dead",
            TaskState::Retried => "retried",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Something the relay did to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleEvent {
    /// Written to its stream through the relay (HTTP, WebSocket, CLI).
    Published,
    /// Sent to a consumer (`detail.delivery`: the delivery count).
    Delivered,
    /// Acked by the consumer (`detail.ms`: milliseconds since its delivery).
    Acked,
    /// Nacked by the consumer (`detail.error`).
    Nacked,
    /// Claimed from one consumer by another (`detail.from`: the consumer it was
    /// taken from).
    Reclaimed,
    /// Written to the DLQ (`detail.dlq_id`, `detail.error`).
    DeadLettered,
    /// Revived from the DLQ (`detail.dlq_id`, and the new entry's `detail.stream` and
    /// `detail.entry_id`).
    Retried,
    /// Its dead letter was deleted (`detail.dlq_id`).
    Deleted,
}

impl LifecycleEvent {
    /// Every event.
    pub const ALL: [LifecycleEvent; 8] = [
        LifecycleEvent::Published,
        LifecycleEvent::Delivered,
        LifecycleEvent::Acked,
        LifecycleEvent::Nacked,
        LifecycleEvent::Reclaimed,
        LifecycleEvent::DeadLettered,
        LifecycleEvent::Retried,
        LifecycleEvent::Deleted,
    ];

    /// Its name on the wire: `published`, `delivered`, …
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleEvent::Published => "published",
            LifecycleEvent::Delivered => "delivered",
            LifecycleEvent::Acked => "acked",
            LifecycleEvent::Nacked => "nacked",
            LifecycleEvent::Reclaimed => "reclaimed",
            LifecycleEvent::DeadLettered => "dead_lettered",
            LifecycleEvent::Retried => "retried",
            LifecycleEvent::Deleted => "deleted",
        }
    }

    /// The event named `name`.
    pub fn parse(name: &str) -> Option<LifecycleEvent> {
        LifecycleEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// The state the task is in for the event's agent right after it.
    pub fn state_after(self) -> TaskState {
        match self {
            LifecycleEvent::Published => TaskState::Waiting,
            LifecycleEvent::Delivered | LifecycleEvent::Reclaimed => TaskState::InProgress,
            LifecycleEvent::Acked => TaskState::Done,
            LifecycleEvent::Nacked => TaskState::Retrying,
            LifecycleEvent::DeadLettered | LifecycleEvent::Deleted => TaskState::Dead,
            LifecycleEvent::Retried => TaskState::Retried,
        }
    }
}

/// One record of the lifecycle: what the relay did to a task, when, for which agent.
///
/// JSON (also the text of each item of `cortex:task:<id>`):
/// ```json
/// {"at_ms":1704556800300,"event":"acked","task_id":"task-001",
///  "stream":"cortex:tasks:high","entry_id":"1704556800000-0","agent":"pink",
///  "consumer":"pink-1","detail":{"ms":300}}
/// ```
/// `agent` and `consumer` are absent where they do not apply (`published`: the task's
/// `to`, empty for every agent, is the agent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleRecord {
    /// When, unix milliseconds.
    pub at_ms: u64,
    /// What.
    pub event: LifecycleEvent,
    /// The task's `id`.
    pub task_id: String,
    /// Its stream.
    pub stream: String,
    /// Its entry id there.
    pub entry_id: String,
    /// The agent (group) it happened for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The consumer it happened on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// What else is known, by event (see [`LifecycleEvent`]).
    #[serde(default, skip_serializing_if = "JsonObject::is_empty")]
    pub detail: JsonObject,
}

impl LifecycleRecord {
    /// The `lifecycle` frame watchers get for this record.
    pub fn frame(&self) -> crate::ServerFrame {
        crate::ServerFrame::Lifecycle {
            task_id: self.task_id.clone(),
            stream: self.stream.clone(),
            entry_id: self.entry_id.clone(),
            agent: self.agent.clone(),
            state: self.event.state_after(),
            event: self.event,
            consumer: self.consumer.clone(),
            at_ms: self.at_ms,
            detail: self.detail.clone(),
        }
    }
}

/// A task as the task API shows it: its fields, where it is, and its optional trace
/// fields.
///
/// JSON: the task's fields (`id`, `from`, `to`, …) and `"stream"`, `"entry_id"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// The task.
    #[serde(flatten)]
    pub task: TaskMessage,
    /// Its stream.
    pub stream: String,
    /// Its entry id.
    pub entry_id: String,
}

/// A task's state for one agent (or a group on its stream that is not an agent's).
///
/// JSON: `{"agent":"pink","state":"in_progress","consumer":"pink-1","deliveries":2,
/// "since_ms":1704556800300,"dlq_id":null,"last_error":"timeout"}`; for a group that
/// is not `agent:<name>`, `"group":"workers"` and `"agent"` the group's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskAgentState {
    /// The agent (or the group's name, for a group that is not an agent's).
    pub agent: String,
    /// A group that is not `agent:<name>`: its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The state.
    pub state: TaskState,
    /// In progress or retrying: the consumer holding it.
    pub consumer: Option<String>,
    /// Deliveries Redis counted (0 when never delivered).
    pub deliveries: u64,
    /// When it entered this state, unix milliseconds, when known.
    pub since_ms: Option<u64>,
    /// Dead or retried: the letter's id.
    pub dlq_id: Option<String>,
    /// The last error a consumer gave (a nack, or the letter's).
    pub last_error: Option<String>,
    /// Retried: the new entry (`stream` and `entry_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_as: Option<EntryRef>,
}

/// A stream entry: `{"stream":"cortex:tasks:high","entry_id":"1704556800000-0"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    /// The stream.
    pub stream: String,
    /// The entry id.
    pub entry_id: String,
}

/// One step of a task's timeline, oldest first.
///
/// JSON: `{"at_ms":1704556800300,"event":"delivered","agent":"pink",
/// "consumer":"pink-1","detail":{"delivery":1}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineItem {
    /// When, unix milliseconds.
    pub at_ms: u64,
    /// What.
    pub event: LifecycleEvent,
    /// For which agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// On which consumer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// What else is known.
    #[serde(default, skip_serializing_if = "JsonObject::is_empty")]
    pub detail: JsonObject,
}

impl From<LifecycleRecord> for TimelineItem {
    fn from(r: LifecycleRecord) -> Self {
        TimelineItem {
            at_ms: r.at_ms,
            event: r.event,
            agent: r.agent,
            consumer: r.consumer,
            detail: r.detail,
        }
    }
}

/// `GET /api/v1/tasks/{task_id}` and `GET /api/v1/tasks/by-entry/{stream}/{entry_id}`.
///
/// JSON: `{"task":{…,"stream":…,"entry_id":…},"agents":[…],"timeline":[…]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReply {
    /// The task.
    pub task: TaskView,
    /// Its state for every agent it is addressed to, by name.
    pub agents: Vec<TaskAgentState>,
    /// What happened to it, oldest first.
    pub timeline: Vec<TimelineItem>,
}

/// One task of a list: the task and its state for the agent asked about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskListItem {
    /// The task.
    pub task: TaskView,
    /// Its state for the agent.
    pub state: TaskAgentState,
}

/// `GET /api/v1/tasks?agent=pink&state=in_progress`: oldest first, paged.
///
/// JSON: `{"items":[{"task":{…},"state":{…}}],"next":"1704556800000-0"}`; pass `next`
/// back as `after` for the next page; `null` at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskListReply {
    /// This page.
    pub items: Vec<TaskListItem>,
    /// The cursor of the next page, if there is one.
    pub next: Option<String>,
}

/// One task of a trace and the tasks it spawned (`parent_id` its `id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceNode {
    /// The task.
    pub task: TaskView,
    /// Its state for every agent it is addressed to.
    pub agents: Vec<TaskAgentState>,
    /// The tasks whose `parent_id` is this task's `id`, oldest first.
    pub children: Vec<TraceNode>,
}

/// `GET /api/v1/traces/{correlation_id}`: the trace's tasks as a tree.
///
/// JSON: `{"correlation_id":"c-1","roots":[{"task":{…},"agents":[…],"children":[…]}]}`;
/// a task whose parent is not in the trace is a root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceReply {
    /// The trace.
    pub correlation_id: String,
    /// Its tasks without a parent in it, oldest first.
    pub roots: Vec<TraceNode>,
}

/// How many of an agent's tasks ended each way: counted from the relay's lifecycle
/// records (`acked` is done, `nacked` failed, `dead_lettered` dead, `reclaimed` timed
/// out: taken from a consumer that held it past the visibility timeout, or went).
///
/// JSON: `{"done":120,"failed":3,"dead":1,"timed_out":2}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Acked.
    pub done: u64,
    /// Nacked, to be delivered again.
    pub failed: u64,
    /// Dead-lettered.
    pub dead: u64,
    /// Reclaimed from a consumer that did not ack in time.
    pub timed_out: u64,
}

impl OutcomeCounts {
    /// The sum of `self` and `other`, member by member.
    pub fn plus(self, other: Self) -> Self {
        Self {
            done: self.done + other.done,
            failed: self.failed + other.failed,
            dead: self.dead + other.dead,
            timed_out: self.timed_out + other.timed_out,
        }
    }
}

/// One minute of an agent's outcomes.
///
/// JSON: `{"minute_ms":1704556800000,"done":120,"failed":3,"dead":1,"timed_out":2}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteOutcomes {
    /// The minute's start (unix ms, a multiple of 60,000).
    pub minute_ms: u64,
    /// Its counts.
    #[serde(flatten)]
    pub counts: OutcomeCounts,
}

/// `GET /api/v1/agents/{name}/outcomes`: the agent's outcomes per minute over the last
/// hour, and their sums over the last 5 minutes and the last hour (whole minutes: the
/// current one and the 4, or 59, before it).
///
/// JSON: `{"agent":"pink","now_ms":1704556830000,"last_5_min":{"done":120,…},
/// "last_hour":{…},"minutes":[{"minute_ms":1704556800000,"done":120,…}]}`; `minutes`
/// oldest first, only minutes with a count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOutcomes {
    /// The agent.
    pub agent: String,
    /// When the relay read the counters (unix ms).
    pub now_ms: u64,
    /// The current minute and the 4 before it.
    pub last_5_min: OutcomeCounts,
    /// The current minute and the 59 before it.
    pub last_hour: OutcomeCounts,
    /// The minutes with a count, oldest first.
    pub minutes: Vec<MinuteOutcomes>,
}

impl AgentOutcomes {
    /// The outcomes of `agent` at `now_ms`, from its `minutes` (any order; those
    /// outside the last hour left out).
    pub fn new(agent: &str, now_ms: u64, mut minutes: Vec<MinuteOutcomes>) -> Self {
        let current = now_ms / 60_000 * 60_000;
        let from = |n: u64| current.saturating_sub((n - 1) * 60_000);
        minutes.retain(|m| m.minute_ms >= from(60) && m.minute_ms <= current);
        minutes.sort_by_key(|m| m.minute_ms);
        let sum = |n: u64| {
            minutes
                .iter()
                .filter(|m| m.minute_ms >= from(n))
                .fold(OutcomeCounts::default(), |total, m| total.plus(m.counts))
        };
        Self {
            agent: agent.to_owned(),
            now_ms,
            last_5_min: sum(5),
            last_hour: sum(60),
            minutes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Priority;
    use serde_json::json;

    #[test]
    fn names_round_trip() {
        for s in TaskState::ALL {
            assert_eq!(TaskState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        for e in LifecycleEvent::ALL {
            assert_eq!(LifecycleEvent::parse(e.as_str()), Some(e));
            assert_eq!(serde_json::to_value(e).unwrap(), json!(e.as_str()));
        }
        assert_eq!(TaskState::parse("running"), None);
        assert_eq!(LifecycleEvent::parse(""), None);
    }

    #[test]
    fn a_record_is_the_json_on_it() {
        let golden = json!({"at_ms":1704556800300u64,"event":"acked","task_id":"task-001",
            "stream":"cortex:tasks:high","entry_id":"1704556800000-0","agent":"pink",
            "consumer":"pink-1","detail":{"ms":300}});
        let record: LifecycleRecord = serde_json::from_value(golden.clone()).unwrap();
        assert_eq!(record.event, LifecycleEvent::Acked);
        assert_eq!(record.agent.as_deref(), Some("pink"));
        assert_eq!(serde_json::to_value(&record).unwrap(), golden);
        assert_eq!(
            serde_json::to_value(record.frame()).unwrap(),
            json!({"type":"lifecycle","task_id":"task-001","stream":"cortex:tasks:high",
                "entry_id":"1704556800000-0","agent":"pink","state":"done","event":"acked",
                "consumer":"pink-1","at_ms":1704556800300u64,"detail":{"ms":300}})
        );
        let bare =
            json!({"at_ms":1,"event":"published","task_id":"t","stream":"s","entry_id":"1-0"});
        let record: LifecycleRecord = serde_json::from_value(bare.clone()).unwrap();
        assert_eq!(serde_json::to_value(record).unwrap(), bare);
    }

    #[test]
    fn a_task_reply_flattens_the_task() {
        let task = TaskMessage {
            id: "task-001".into(),
            from: "harold".into(),
            to: "pink".into(),
            priority: Priority::High,
            task_type: "coding".into(),
            payload: JsonObject::new(),
            created: 1_704_556_800,
            parent_id: None,
            correlation_id: None,
        };
        let reply = TaskReply {
            task: TaskView {
                task,
                stream: "cortex:tasks:high".into(),
                entry_id: "1704556800000-0".into(),
            },
            agents: vec![TaskAgentState {
                agent: "pink".into(),
                group: None,
                state: TaskState::InProgress,
                consumer: Some("pink-1".into()),
                deliveries: 2,
                since_ms: Some(1_704_556_800_300),
                dlq_id: None,
                last_error: Some("timeout".into()),
                retried_as: None,
            }],
            timeline: vec![],
        };
        let value = serde_json::to_value(&reply).unwrap();
        assert_eq!(value["task"]["id"], "task-001");
        assert_eq!(value["task"]["stream"], "cortex:tasks:high");
        assert_eq!(value["agents"][0]["state"], "in_progress");
        assert_eq!(value["agents"][0]["dlq_id"], json!(null));
        assert_eq!(serde_json::from_value::<TaskReply>(value).unwrap(), reply);
    }

    #[test]
    fn outcomes_sum_whole_minutes_and_are_the_json_on_them() {
        let minute = |m: u64, done: u64| MinuteOutcomes {
            minute_ms: m * 60_000,
            counts: OutcomeCounts {
                done,
                ..OutcomeCounts::default()
            },
        };
        // Now is 30 s into minute 100: 5 minutes are 96..=100, the hour 41..=100.
        let now = 100 * 60_000 + 30_000;
        let got = AgentOutcomes::new(
            "pink",
            now,
            vec![
                minute(100, 1),
                minute(96, 2),
                minute(95, 4),
                minute(41, 8),
                minute(40, 16),
            ],
        );
        assert_eq!(got.last_5_min.done, 3);
        assert_eq!(got.last_hour.done, 15);
        assert_eq!(
            got.minutes
                .iter()
                .map(|m| m.minute_ms / 60_000)
                .collect::<Vec<_>>(),
            [41, 95, 96, 100]
        );
        let golden = json!({"minute_ms":1704556800000u64,"done":120,"failed":3,"dead":1,
            "timed_out":2});
        let one: MinuteOutcomes = serde_json::from_value(golden.clone()).unwrap();
        assert_eq!(one.counts.failed, 3);
        assert_eq!(serde_json::to_value(one).unwrap(), golden);
        let reply = AgentOutcomes::new("pink", 1_704_556_830_000, vec![one]);
        let value = serde_json::to_value(&reply).unwrap();
        assert_eq!(
            value["last_hour"],
            json!({"done":120,"failed":3,"dead":1,"timed_out":2})
        );
        assert_eq!(
            serde_json::from_value::<AgentOutcomes>(value).unwrap(),
            reply
        );
    }
}
