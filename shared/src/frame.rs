//! The `/ws` WebSocket protocol (SPEC §4): JSON text frames tagged by `type`.
//!
//! The plan's frames keep their shape: `subscribe`/`subscribed`, `unsubscribe`,
//! `ping`/`pong`, `task` (`{"type":"task","data":{…TaskMessage}}`) and `heartbeat`
//! (`{"type":"heartbeat","agent":…,"status":{…}}`). Ours add fields beside them (the
//! stream and entry id a task came from) and an `error` frame.

use crate::agent::{AgentName, AgentNameError};
use crate::entry::{JsonObject, TaskMessage};
use serde::{Deserialize, Serialize};
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
}

/// A frame from a client to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Watch an agent's tasks and heartbeats: `{"type":"subscribe","agent":"pink"}`.
    /// `"agent":"*"` watches every agent. Replied with [`ServerFrame::Subscribed`].
    Subscribe {
        /// The agent to watch, or `*`.
        agent: String,
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
}

/// A frame from the relay to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// `{"type":"subscribed","agent":"pink","status":"ok"}`.
    Subscribed {
        /// The agent now watched, or `*`.
        agent: String,
        /// Always `ok` (the plan's field).
        status: String,
    },
    /// `{"type":"unsubscribed","agent":"pink"}`; `agent` is `*` when all were dropped.
    Unsubscribed {
        /// The agent no longer watched.
        agent: String,
    },
    /// `{"type":"pong"}`.
    Pong,
    /// A task for a watched agent:
    /// `{"type":"task","data":{…},"stream":"cortex:tasks:high","entry_id":"1704556800000-0"}`.
    Task {
        /// The task, in the plan's `TaskMessage` shape.
        data: TaskMessage,
        /// The stream it was read from.
        stream: String,
        /// Its stream entry id.
        entry_id: String,
    },
    /// A heartbeat of a watched agent:
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
    /// A frame the relay could not take, and why. The connection stays open.
    /// `{"type":"error","code":"bad_frame","message":"…"}`.
    Error {
        /// A stable, machine-readable code.
        code: ErrorCode,
        /// A human-readable explanation.
        message: String,
    },
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
    /// The frame is larger than the relay accepts.
    FrameTooLarge,
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
            ErrorCode::FrameTooLarge => "frame_too_large",
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
            ClientFrame::Subscribe {
                agent: "pink".into(),
            },
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
    }

    #[test]
    fn server_frames_have_the_plans_shape() {
        round_trip_server(
            ServerFrame::Subscribed {
                agent: "pink".into(),
                status: "ok".into(),
            },
            json!({"type":"subscribed","agent":"pink","status":"ok"}),
        );
        round_trip_server(
            ServerFrame::Unsubscribed { agent: "*".into() },
            json!({"type":"unsubscribed","agent":"*"}),
        );
        round_trip_server(ServerFrame::Pong, json!({"type":"pong"}));
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
                },
                stream: "cortex:tasks:high".into(),
                entry_id: "1704556800000-0".into(),
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
    fn error_codes_are_stable_and_unknown_ones_decode() {
        for code in [
            ErrorCode::BadFrame,
            ErrorCode::BinaryFrame,
            ErrorCode::InvalidAgent,
            ErrorCode::FrameTooLarge,
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
