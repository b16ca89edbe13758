//! The `/ws` WebSocket protocol (README, WebSocket protocol): JSON text frames tagged by `type`.
//!
//! The plan's frames keep their shape: `subscribe`/`subscribed`, `unsubscribe`,
//! `ping`/`pong`, `task` (`{"type":"task","data":{…TaskMessage}}`) and `heartbeat`
//! (`{"type":"heartbeat","agent":…,"status":{…}}`). Ours add fields beside them (the
//! stream and entry id a task came from) and an `error` frame. Any client frame may
//! also carry a `ref`, echoed in its replies (see [`crate::reference`]).

use crate::agent::{AgentName, AgentNameError};
use crate::entry::{DeadLetter, JsonObject, TaskMessage};
use crate::rest::{DlqAction, Presence};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The agent name that subscribes to every agent's tasks and heartbeats.
pub const ALL_AGENTS: &str = "*";

/// WebSocket close codes the relay uses. Both ask the client to reconnect and resume
/// from the last entry it saw.
pub mod close_code {
    /// The relay is shutting down or restarting (RFC 6455 "Service Restart").
    pub const SERVICE_RESTART: u16 = 1012;
    /// The client did not read fast enough and its send queue filled up.
    pub const TOO_SLOW: u16 = 4001;
    /// The client stopped answering pings.
    pub const UNRESPONSIVE: u16 = 4002;
    /// No valid token: missing, wrong, or not sent first. Do not retry unchanged.
    pub const UNAUTHORIZED: u16 = 4401;
}

/// A frame from a client to the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Subscribe to an agent: `{"type":"subscribe","agent":"pink"}` (the original agents' frame)
    /// watches it. Replied with [`ServerFrame::Subscribed`].
    ///
    /// Watch (the default): tasks addressed to the agent (or to all) and its
    /// heartbeats, read-only; `"agent":"*"` watches every agent. With `resume`, entries
    /// after the given ids are sent first; with `history`, the last N per stream.
    /// `{"type":"subscribe","agent":"pink","resume":{"cortex:tasks:high":"1704556800000-0"}}`
    ///
    /// Consume: `{"type":"subscribe","agent":"pink","mode":"consume","consumer":"pink-1"}`
    /// takes the agent's tasks as a member of its consumer group; each must be acked.
    Subscribe {
        /// The agent, or `*` (watch only).
        agent: String,
        /// `watch` (default) or `consume`.
        #[serde(default, skip_serializing_if = "SubscribeMode::is_watch")]
        mode: SubscribeMode,
        /// Consume: this consumer's name within the agent's group, so that a reconnect
        /// gets back its own pending tasks first. Default: a name unique to the
        /// connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consumer: Option<String>,
        /// Watch: the last entry id seen per stream; what came after is sent first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<BTreeMap<String, String>>,
        /// Watch: how many of the newest entries per stream to send first, when a
        /// stream is not in `resume`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        history: Option<u32>,
    },
    /// Stop watching: `{"type":"unsubscribe","agent":"pink"}`; without `agent`, stop
    /// watching everything. Replied with [`ServerFrame::Unsubscribed`].
    Unsubscribe {
        /// The agent to stop watching; all when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// `{"type":"ping"}`, replied with `{"type":"pong"}`.
    Ping,
    /// The bearer token, as the first frame, when the relay requires one and the
    /// handshake had no `Authorization` header (browsers cannot send one):
    /// `{"type":"auth","token":"…"}`. Replied with [`ServerFrame::Authenticated`], or
    /// the connection is closed with [`close_code::UNAUTHORIZED`].
    Auth {
        /// The token.
        token: String,
    },
    /// Send a heartbeat for `agent` (it is written to `cortex:heartbeats`):
    /// `{"type":"heartbeat","agent":"pink","status":{"state":"idle"}}`. Replied with
    /// [`ServerFrame::Published`] (its `task_id` empty).
    Heartbeat {
        /// The agent that is alive.
        agent: String,
        /// What it says about itself.
        #[serde(default)]
        status: JsonObject,
    },
    /// Publish a task (admin): `{"type":"publish","to":"pink","priority":"high",
    /// "task_type":"coding","payload":{…}}` (`from` defaults to `relay`). The relay gives
    /// it a new id and `created`. Replied with [`ServerFrame::Published`].
    Publish {
        /// The agent it is for; empty for every agent.
        #[serde(default)]
        to: String,
        /// The sender; default `relay`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// Its priority.
        priority: crate::entry::Priority,
        /// Its type, e.g. `coding`.
        task_type: String,
        /// Its data.
        #[serde(default)]
        payload: JsonObject,
        /// The task that spawned this one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_id: Option<String>,
        /// The trace it belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        correlation_id: Option<String>,
    },
    /// Consume: the task is done.
    /// `{"type":"ack","stream":"cortex:tasks:high","entry_id":"1704556800000-0"}`.
    /// Replied with [`ServerFrame::Acked`].
    Ack {
        /// The stream of the delivered task.
        stream: String,
        /// Its entry id.
        entry_id: String,
    },
    /// Consume: the task failed. It is delivered again while deliveries are left, else
    /// dead-lettered with `error`. Replied with [`ServerFrame::Nacked`].
    /// `{"type":"nack","stream":"cortex:tasks:high","entry_id":"…","error":"timeout"}`.
    Nack {
        /// The stream of the delivered task.
        stream: String,
        /// Its entry id.
        entry_id: String,
        /// Why it failed; kept in the dead letter.
        error: String,
    },
}

impl ClientFrame {
    /// The plan's `subscribe`: watch `agent`, no options.
    pub fn watch(agent: impl Into<String>) -> Self {
        Self::Subscribe {
            agent: agent.into(),
            mode: SubscribeMode::Watch,
            consumer: None,
            resume: None,
            history: None,
        }
    }

    /// Consume `agent`'s tasks as `consumer` (a generated name when `None`).
    pub fn consume(agent: impl Into<String>, consumer: Option<String>) -> Self {
        Self::Subscribe {
            agent: agent.into(),
            mode: SubscribeMode::Consume,
            consumer,
            resume: None,
            history: None,
        }
    }
}

/// How a `subscribe` takes an agent's tasks (README, Delivery).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscribeMode {
    /// Read-only live view; never acks, never changes what agents receive.
    #[default]
    Watch,
    /// As a member of the agent's consumer group, at least once, acked.
    Consume,
}

impl SubscribeMode {
    /// Whether this is [`SubscribeMode::Watch`].
    pub fn is_watch(&self) -> bool {
        *self == Self::Watch
    }
}

/// A frame from the relay to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// `{"type":"subscribed","agent":"pink","status":"ok"}`; in consume mode also
    /// `"mode":"consume","consumer":"pink-1"`.
    Subscribed {
        /// The agent now watched, or `*`.
        agent: String,
        /// Always `ok` (the original agents' field).
        status: String,
        /// `consume` for a consumer; absent for a watcher.
        #[serde(default, skip_serializing_if = "SubscribeMode::is_watch")]
        mode: SubscribeMode,
        /// The consumer name, in consume mode.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consumer: Option<String>,
    },
    /// `{"type":"unsubscribed","agent":"pink"}`; `agent` is `*` when all were dropped.
    Unsubscribed {
        /// The agent no longer watched.
        agent: String,
    },
    /// `{"type":"pong"}`.
    Pong,
    /// A `publish` or `heartbeat` was written:
    /// `{"type":"published","task_id":"…","stream":"cortex:tasks:high","entry_id":"…"}`.
    Published {
        /// The new task's id (empty for a heartbeat).
        task_id: String,
        /// The stream written to.
        stream: String,
        /// The new entry's id.
        entry_id: String,
    },
    /// The token was accepted: `{"type":"authenticated","role":"viewer"}`.
    Authenticated {
        /// `viewer`, `agent` or `admin`.
        role: String,
    },
    /// A task for a watched agent:
    /// `{"type":"task","data":{…},"stream":"cortex:tasks:high","entry_id":"1704556800000-0"}`.
    Task {
        /// The task, in the original agents' `TaskMessage` shape.
        data: TaskMessage,
        /// The stream it was read from.
        stream: String,
        /// Its stream entry id.
        entry_id: String,
        /// Consume mode: how many times the task has been delivered, this time
        /// included. Absent for a watcher.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery_count: Option<u64>,
    },
    /// Consume: the ack is recorded in Redis; the task will not come back.
    /// `{"type":"acked","stream":"cortex:tasks:high","entry_id":"…"}`.
    Acked {
        /// The task's stream.
        stream: String,
        /// Its entry id.
        entry_id: String,
    },
    /// Consume: the nack is recorded; the task is either delivered again or, with no
    /// deliveries left, in the dead letter queue.
    /// `{"type":"nacked","stream":"…","entry_id":"…","dead_lettered":false}`.
    Nacked {
        /// The task's stream.
        stream: String,
        /// Its entry id.
        entry_id: String,
        /// Whether it went to `cortex:tasks:dlq`.
        dead_lettered: bool,
    },
    /// Watch resume: entries of `stream` after `after` were trimmed from Redis before
    /// they could be sent; what follows starts at `resumed_from`.
    /// `{"type":"gap","stream":"cortex:tasks:high","after":"5-0","resumed_from":"9-0"}`.
    Gap {
        /// The stream with missing entries.
        stream: String,
        /// The last entry id the client had.
        after: String,
        /// The oldest entry id still in the stream.
        resumed_from: String,
    },
    /// `{"type":"heartbeat","agent":"pink","status":{…},"time":1704556800,"entry_id":"…"}`.
    Heartbeat {
        /// The agent that is alive.
        agent: String,
        /// What it says about itself.
        status: JsonObject,
        /// When, unix seconds.
        time: i64,
        /// Its entry id in `cortex:heartbeats`.
        entry_id: String,
    },
    /// Something the relay (any relay) did to a task of a watched agent (README, Task
    /// lifecycle):
    /// `{"type":"lifecycle","task_id":"task-001","stream":"cortex:tasks:high",
    /// "entry_id":"1704556800000-0","agent":"pink","state":"done","event":"acked",
    /// "consumer":"pink-1","at_ms":1704556800300,"detail":{"ms":300}}`. `agent` and
    /// `consumer` are absent where they do not apply (`published`); `detail` is the
    /// record's (`acked`: `ms`, `nacked`: `error`, `delivered`: `delivery`, …), absent
    /// when empty.
    Lifecycle {
        /// The task's `id`.
        task_id: String,
        /// Its stream.
        stream: String,
        /// Its entry id.
        entry_id: String,
        /// The agent (group) it happened for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        /// The task's state for that agent right after.
        state: crate::lifecycle::TaskState,
        /// What happened.
        event: crate::lifecycle::LifecycleEvent,
        /// The consumer it happened on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consumer: Option<String>,
        /// When, unix milliseconds.
        at_ms: u64,
        /// What else the record says (see `LifecycleEvent`): a dashboard row shows
        /// "done in 340 ms" or "attempt 2 failed: timeout" without asking for more.
        #[serde(default, skip_serializing_if = "crate::JsonObject::is_empty")]
        detail: crate::JsonObject,
    },
    /// Dead letters changed (on any relay): written, retried or deleted. Sent to every
    /// watcher, whatever agents it watches.
    /// `{"type":"dlq","action":"added","dlq_ids":["1704556900000-0"],"letter":{…}}`;
    /// `letter` comes with `added` only; `retried` and `deleted` list the ids acted on
    /// (a bulk action sends a few frames of up to 500 ids each).
    Dlq {
        /// What happened.
        action: DlqAction,
        /// The letters' ids in `cortex:tasks:dlq`.
        dlq_ids: Vec<String>,
        /// With `added`: the letter.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        letter: Option<Box<DeadLetter>>,
    },
    /// An agent's presence changed, from its heartbeats' age. Sent to every watcher.
    /// `{"type":"presence","agent":"pink","presence":"stale","last_heartbeat_ms":1704556800000}`.
    Presence {
        /// The agent.
        agent: String,
        /// Its presence now.
        presence: Presence,
        /// When Redis added its last heartbeat (unix milliseconds).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_heartbeat_ms: Option<u64>,
    },
    /// A frame the relay could not take, and why. The connection stays open.
    /// `{"type":"error","code":"bad_frame","message":"…"}`.
    Error {
        /// A stable, machine-readable code.
        code: ErrorCode,
        /// A human-readable explanation.
        message: String,
    },
    /// A frame type this client does not know (sent by a newer relay); ignore it.
    #[serde(other)]
    Unknown,
}

/// Stable codes of [`ServerFrame::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON, has no known `type`, or lacks a field.
    BadFrame,
    /// The frame was binary; the protocol is JSON text.
    BinaryFrame,
    /// An agent name is not `[A-Za-z0-9_.-]{1,64}`.
    InvalidAgent,
    /// A task type is not a word (`[A-Za-z0-9_-]{1,64}`; see [`crate::publish`]).
    InvalidType,
    /// A `parent_id` or `correlation_id` is not an id (see [`crate::publish`]).
    InvalidTrace,
    /// The frame is larger than the relay accepts.
    FrameTooLarge,
    /// An `ack`/`nack` for a task not delivered to this connection, or already acked.
    UnknownDelivery,
    /// The request needs Redis, which does not answer; retry later.
    RedisUnavailable,
    /// The frame is valid but not allowed here (e.g. consuming `*`).
    NotAllowed,
    /// The token's role does not allow this.
    Forbidden,
    /// Too many frames too fast; this one was dropped.
    RateLimited,
    /// The connection holds as many subscriptions as it may.
    TooManySubscriptions,
    /// The relay failed; details are in its log.
    Internal,
    /// A code this client does not know (sent by a newer relay).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The wire name, e.g. `bad_frame`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::BinaryFrame => "binary_frame",
            ErrorCode::InvalidAgent => "invalid_agent",
            ErrorCode::InvalidType => "invalid_type",
            ErrorCode::InvalidTrace => "invalid_trace",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::UnknownDelivery => "unknown_delivery",
            ErrorCode::RedisUnavailable => "redis_unavailable",
            ErrorCode::NotAllowed => "not_allowed",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a `subscribe` names: one agent, or every agent (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubscribeTarget {
    /// Every agent: all tasks, all heartbeats.
    All,
    /// One agent: tasks addressed to it or to every agent, and its heartbeats.
    Agent(AgentName),
}

impl SubscribeTarget {
    /// Parses `*` or a valid agent name.
    pub fn parse(agent: &str) -> Result<Self, AgentNameError> {
        if agent == ALL_AGENTS {
            Ok(Self::All)
        } else {
            AgentName::parse(agent).map(Self::Agent)
        }
    }

    /// The wire form: `*` or the agent name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::All => ALL_AGENTS,
            Self::Agent(name) => name.as_str(),
        }
    }

    /// Whether a task addressed to `to` (empty: every agent) is visible to this target.
    pub fn sees_task_for(&self, to: &str) -> bool {
        match self {
            Self::All => true,
            Self::Agent(name) => to.is_empty() || to == name.as_str(),
        }
    }

    /// Whether a heartbeat from `agent` is visible to this target.
    pub fn sees_heartbeat_of(&self, agent: &str) -> bool {
        match self {
            Self::All => true,
            Self::Agent(name) => agent == name.as_str(),
        }
    }
}

impl ServerFrame {
    /// An [`ServerFrame::Error`] frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_string(self).expect("server frames serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Priority;
    use serde_json::{json, Value};

    fn round_trip_client(frame: ClientFrame, golden: Value) {
        assert_eq!(serde_json::to_value(&frame).unwrap(), golden);
        assert_eq!(
            serde_json::from_value::<ClientFrame>(golden).unwrap(),
            frame
        );
    }

    fn round_trip_server(frame: ServerFrame, golden: Value) {
        assert_eq!(serde_json::to_value(&frame).unwrap(), golden);
        assert_eq!(
            serde_json::from_value::<ServerFrame>(golden).unwrap(),
            frame
        );
    }

    #[test]
    fn client_frames_have_the_plans_shape() {
        round_trip_client(
            ClientFrame::watch("pink"),
            json!({"type":"subscribe","agent":"pink"}),
        );
        round_trip_client(
            ClientFrame::Unsubscribe { agent: None },
            json!({"type":"unsubscribe"}),
        );
        round_trip_client(
            ClientFrame::Unsubscribe {
                agent: Some("pink".into()),
            },
            json!({"type":"unsubscribe","agent":"pink"}),
        );
        round_trip_client(ClientFrame::Ping, json!({"type":"ping"}));
        round_trip_client(
            ClientFrame::Publish {
                to: "pink".into(),
                from: None,
                priority: Priority::High,
                task_type: "coding".into(),
                payload: json!({"a":1}).as_object().unwrap().clone(),
                parent_id: None,
                correlation_id: None,
            },
            json!({"type":"publish","to":"pink","priority":"high","task_type":"coding",
                   "payload":{"a":1}}),
        );
        round_trip_client(
            ClientFrame::Heartbeat {
                agent: "pink".into(),
                status: json!({"state":"idle"}).as_object().unwrap().clone(),
            },
            json!({"type":"heartbeat","agent":"pink","status":{"state":"idle"}}),
        );
        round_trip_client(
            ClientFrame::Auth { token: "t".into() },
            json!({"type":"auth","token":"t"}),
        );
    }

    #[test]
    fn server_frames_have_the_plans_shape() {
        round_trip_server(
            ServerFrame::Subscribed {
                agent: "pink".into(),
                status: "ok".into(),
                mode: SubscribeMode::Watch,
                consumer: None,
            },
            json!({"type":"subscribed","agent":"pink","status":"ok"}),
        );
        round_trip_server(
            ServerFrame::Unsubscribed { agent: "*".into() },
            json!({"type":"unsubscribed","agent":"*"}),
        );
        round_trip_server(ServerFrame::Pong, json!({"type":"pong"}));
        round_trip_server(
            ServerFrame::Authenticated {
                role: "viewer".into(),
            },
            json!({"type":"authenticated","role":"viewer"}),
        );
        round_trip_server(
            ServerFrame::Task {
                data: TaskMessage {
                    id: "task-001".into(),
                    from: "harold".into(),
                    to: "pink".into(),
                    priority: Priority::High,
                    task_type: "coding".into(),
                    payload: json!({"test":"websocket"}).as_object().unwrap().clone(),
                    created: 1_704_556_800,
                    parent_id: None,
                    correlation_id: None,
                },
                stream: "cortex:tasks:high".into(),
                entry_id: "1704556800000-0".into(),
                delivery_count: None,
            },
            json!({"type":"task",
                   "data":{"id":"task-001","from":"harold","to":"pink","priority":"high",
                           "type":"coding","payload":{"test":"websocket"},"created":1704556800},
                   "stream":"cortex:tasks:high","entry_id":"1704556800000-0"}),
        );
        round_trip_server(
            ServerFrame::Heartbeat {
                agent: "pink".into(),
                status: json!({"state":"idle"}).as_object().unwrap().clone(),
                time: 1_704_556_800,
                entry_id: "1704556800000-1".into(),
            },
            json!({"type":"heartbeat","agent":"pink","status":{"state":"idle"},
                   "time":1704556800,"entry_id":"1704556800000-1"}),
        );
        round_trip_server(
            ServerFrame::error(ErrorCode::BadFrame, "missing field `agent`"),
            json!({"type":"error","code":"bad_frame","message":"missing field `agent`"}),
        );
    }

    #[test]
    fn delivery_frames() {
        round_trip_client(
            ClientFrame::consume("pink", Some("pink-1".into())),
            json!({"type":"subscribe","agent":"pink","mode":"consume","consumer":"pink-1"}),
        );
        round_trip_client(
            ClientFrame::Subscribe {
                agent: "pink".into(),
                mode: SubscribeMode::Watch,
                consumer: None,
                resume: Some([("cortex:tasks:high".to_owned(), "5-0".to_owned())].into()),
                history: Some(50),
            },
            json!({"type":"subscribe","agent":"pink",
                   "resume":{"cortex:tasks:high":"5-0"},"history":50}),
        );
        round_trip_client(
            ClientFrame::Ack {
                stream: "cortex:tasks:high".into(),
                entry_id: "5-0".into(),
            },
            json!({"type":"ack","stream":"cortex:tasks:high","entry_id":"5-0"}),
        );
        round_trip_client(
            ClientFrame::Nack {
                stream: "cortex:tasks:high".into(),
                entry_id: "5-0".into(),
                error: "timeout".into(),
            },
            json!({"type":"nack","stream":"cortex:tasks:high","entry_id":"5-0","error":"timeout"}),
        );
        round_trip_server(
            ServerFrame::Subscribed {
                agent: "pink".into(),
                status: "ok".into(),
                mode: SubscribeMode::Consume,
                consumer: Some("pink-1".into()),
            },
            json!({"type":"subscribed","agent":"pink","status":"ok","mode":"consume",
                   "consumer":"pink-1"}),
        );
        round_trip_server(
            ServerFrame::Acked {
                stream: "s".into(),
                entry_id: "1-0".into(),
            },
            json!({"type":"acked","stream":"s","entry_id":"1-0"}),
        );
        round_trip_server(
            ServerFrame::Nacked {
                stream: "s".into(),
                entry_id: "1-0".into(),
                dead_lettered: true,
            },
            json!({"type":"nacked","stream":"s","entry_id":"1-0","dead_lettered":true}),
        );
        round_trip_server(
            ServerFrame::Gap {
                stream: "s".into(),
                after: "1-0".into(),
                resumed_from: "9-0".into(),
            },
            json!({"type":"gap","stream":"s","after":"1-0","resumed_from":"9-0"}),
        );
        let unknown: ServerFrame =
            serde_json::from_value(json!({"type":"teleport","agent":"pink"})).unwrap();
        assert_eq!(unknown, ServerFrame::Unknown);
    }

    #[test]
    fn dlq_and_presence_frames() {
        let letter = crate::entry::DeadLetter {
            original_id: "task-001".into(),
            original_from: "harold".into(),
            original_to: "pink".into(),
            original_priority: "high".into(),
            original_type: "coding".into(),
            original_payload: "{}".into(),
            original_created: "1704556800".into(),
            error: "timeout".into(),
            retry_count: 3,
            dead_at: 1_704_556_900,
            original_stream: None,
            original_entry_id: None,
            ..Default::default()
        };
        round_trip_server(
            ServerFrame::Dlq {
                action: DlqAction::Added,
                dlq_ids: vec!["1704556900000-0".into()],
                letter: Some(Box::new(letter)),
            },
            json!({"type":"dlq","action":"added","dlq_ids":["1704556900000-0"],
                   "letter":{"original_id":"task-001","original_from":"harold",
                     "original_to":"pink","original_priority":"high","original_type":"coding",
                     "original_payload":"{}","original_created":"1704556800",
                     "error":"timeout","retry_count":3,"dead_at":1704556900}}),
        );
        round_trip_server(
            ServerFrame::Dlq {
                action: DlqAction::Retried,
                dlq_ids: vec!["1-0".into(), "2-0".into()],
                letter: None,
            },
            json!({"type":"dlq","action":"retried","dlq_ids":["1-0","2-0"]}),
        );
        round_trip_server(
            ServerFrame::Presence {
                agent: "pink".into(),
                presence: Presence::Stale,
                last_heartbeat_ms: Some(1_704_556_800_000),
            },
            json!({"type":"presence","agent":"pink","presence":"stale",
                   "last_heartbeat_ms":1704556800000u64}),
        );
    }

    #[test]
    fn error_codes_are_stable_and_unknown_ones_decode() {
        for code in [
            ErrorCode::BadFrame,
            ErrorCode::BinaryFrame,
            ErrorCode::InvalidAgent,
            ErrorCode::FrameTooLarge,
            ErrorCode::UnknownDelivery,
            ErrorCode::RedisUnavailable,
            ErrorCode::NotAllowed,
            ErrorCode::Forbidden,
            ErrorCode::RateLimited,
            ErrorCode::TooManySubscriptions,
            ErrorCode::Internal,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
        }
        let frame: ServerFrame =
            serde_json::from_value(json!({"type":"error","code":"from_the_future","message":""}))
                .unwrap();
        assert!(matches!(
            frame,
            ServerFrame::Error {
                code: ErrorCode::Unknown,
                ..
            }
        ));
    }

    #[test]
    fn malformed_client_frames_are_refused() {
        for text in [
            "not json",
            r#"{"agent":"pink"}"#,
            r#"{"type":"subscribe"}"#,
            r#"{"type":"teleport"}"#,
            r#"{"type":"subscribe","agent":7}"#,
        ] {
            assert!(serde_json::from_str::<ClientFrame>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn subscribe_targets() {
        assert_eq!(SubscribeTarget::parse("*").unwrap(), SubscribeTarget::All);
        let pink = SubscribeTarget::parse("pink").unwrap();
        assert_eq!(pink.as_str(), "pink");
        assert!(pink.sees_task_for("pink") && pink.sees_task_for(""));
        assert!(!pink.sees_task_for("harold"));
        assert!(pink.sees_heartbeat_of("pink") && !pink.sees_heartbeat_of("harold"));
        assert!(SubscribeTarget::All.sees_task_for("harold"));
        assert!(SubscribeTarget::parse("no/slash").is_err());
    }
}
