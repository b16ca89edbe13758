//! The one rule for a task someone publishes, whichever way it comes: `POST
//! /api/v1/tasks`, the WebSocket `publish` frame, the edits of a DLQ retry, the CLI,
//! the agent API. `to` is empty or `*` (every agent, written empty) or an agent name;
//! `from` an agent name; `type` a word (`[A-Za-z0-9_-]`, 1 to [`MAX_TYPE_LEN`]);
//! `payload` a JSON object; `parent_id` and `correlation_id`, when given, an id
//! ([`MAX_TRACE_LEN`] bytes at most, no whitespace or control characters). A refusal carries the stable code both the HTTP API and
//! the WebSocket protocol answer with ([`PublishError::code`]).

use crate::rest::PublishRequest;
use crate::{AgentName, AgentNameError, JsonObject, TaskMessage, ALL_AGENTS};

/// The longest task type accepted.
pub const MAX_TYPE_LEN: usize = 64;

/// The longest `parent_id` or `correlation_id` accepted, in bytes.
pub const MAX_TRACE_LEN: usize = 128;

/// Why a task was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// `to` or `from` is not an agent name (`to` may also be empty or `*`).
    #[error("{field}: {error}")]
    InvalidAgent {
        /// `to` or `from`.
        field: &'static str,
        /// What is wrong with it.
        error: AgentNameError,
    },
    /// The type is not a word.
    #[error("type {0:?} is not a word ([A-Za-z0-9_-], 1 to {MAX_TYPE_LEN} characters)")]
    InvalidType(String),
    /// The payload is not a JSON object (its JSON text).
    #[error("payload must be a JSON object, not {0}")]
    InvalidPayload(String),
    /// `parent_id` or `correlation_id` is not an id.
    #[error("{0}: an id of 1 to {MAX_TRACE_LEN} bytes without whitespace or control characters")]
    InvalidTrace(&'static str),
}

impl PublishError {
    /// The stable code: `invalid_agent`, `invalid_type`, `invalid_payload` or
    /// `invalid_trace`.
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::InvalidAgent { .. } => "invalid_agent",
            PublishError::InvalidType(_) => "invalid_type",
            PublishError::InvalidPayload(_) => "invalid_payload",
            PublishError::InvalidTrace(_) => "invalid_trace",
        }
    }
}

/// A task's `to`, checked: empty or `*` (every agent, written empty) or an agent name.
pub fn checked_to(to: &str) -> Result<String, PublishError> {
    match to {
        "" | ALL_AGENTS => Ok(String::new()),
        to => agent("to", to),
    }
}

/// A task's `from`, checked: an agent name.
pub fn checked_from(from: &str) -> Result<String, PublishError> {
    agent("from", from)
}

fn agent(field: &'static str, name: &str) -> Result<String, PublishError> {
    AgentName::parse(name)
        .map(|name| name.to_string())
        .map_err(|error| PublishError::InvalidAgent { field, error })
}

/// A task's type, checked: a word of `[A-Za-z0-9_-]`, 1 to [`MAX_TYPE_LEN`] characters.
pub fn checked_type(task_type: &str) -> Result<(), PublishError> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if task_type.is_empty() || task_type.len() > MAX_TYPE_LEN || !task_type.chars().all(word) {
        return Err(PublishError::InvalidType(task_type.to_owned()));
    }
    Ok(())
}

/// A task's `parent_id` or `correlation_id` (`field`), checked: absent, or an id of 1
/// to [`MAX_TRACE_LEN`] bytes without whitespace or control characters.
pub fn checked_trace(
    field: &'static str,
    id: Option<&str>,
) -> Result<Option<String>, PublishError> {
    match id {
        None => Ok(None),
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_TRACE_LEN
                && !id.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(Some(id.to_owned()))
        }
        Some(_) => Err(PublishError::InvalidTrace(field)),
    }
}

/// A task's payload, checked: a JSON object; none is `{}`.
pub fn checked_payload(payload: Option<serde_json::Value>) -> Result<JsonObject, PublishError> {
    match payload {
        None => Ok(JsonObject::new()),
        Some(serde_json::Value::Object(map)) => Ok(map),
        Some(other) => Err(PublishError::InvalidPayload(other.to_string())),
    }
}

impl TaskMessage {
    /// Checks a task about to be published as every publisher must: `to` empty or an
    /// agent name, `from` an agent name, `type` a word, the trace fields ids. (Its `id`
    /// is the publisher's choice; its payload is an object by its type.)
    pub fn check(&self) -> Result<(), PublishError> {
        if !self.to.is_empty() {
            agent("to", &self.to)?;
        }
        checked_from(&self.from)?;
        checked_type(&self.task_type)?;
        checked_trace("parent_id", self.parent_id.as_deref())?;
        checked_trace("correlation_id", self.correlation_id.as_deref())?;
        Ok(())
    }
}

impl PublishRequest {
    /// The task this request describes, checked, with the publisher's `id` and
    /// `created`; `from` defaults to `default_from` (each way in documents its own).
    pub fn into_task(
        self,
        default_from: &str,
        id: String,
        created: i64,
    ) -> Result<TaskMessage, PublishError> {
        let to = checked_to(&self.to)?;
        let from = checked_from(self.from.as_deref().unwrap_or(default_from))?;
        checked_type(&self.task_type)?;
        let payload = checked_payload(self.payload)?;
        let parent_id = checked_trace("parent_id", self.parent_id.as_deref())?;
        let correlation_id = checked_trace("correlation_id", self.correlation_id.as_deref())?;
        Ok(TaskMessage {
            id,
            from,
            to,
            priority: self.priority,
            task_type: self.task_type,
            payload,
            created,
            parent_id,
            correlation_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Priority;
    use serde_json::json;

    fn request(f: impl FnOnce(&mut PublishRequest)) -> PublishRequest {
        let mut r = PublishRequest {
            to: "pink".into(),
            priority: Priority::High,
            task_type: "coding".into(),
            payload: Some(json!({"description":"Fix auth bug"})),
            from: None,
            parent_id: None,
            correlation_id: None,
        };
        f(&mut r);
        r
    }

    fn task(r: PublishRequest) -> Result<TaskMessage, PublishError> {
        r.into_task("operator", "t-1".into(), 7)
    }

    #[test]
    fn a_valid_request_becomes_the_plans_task() {
        let t = task(request(|_| {})).unwrap();
        assert_eq!(
            (t.id.as_str(), t.from.as_str(), t.to.as_str(), t.created),
            ("t-1", "operator", "pink", 7)
        );
        assert_eq!(t.payload["description"], "Fix auth bug");
        assert_eq!(t.check(), Ok(()));
        for every in ["*", ""] {
            assert_eq!(task(request(|r| r.to = every.into())).unwrap().to, "");
        }
        assert!(task(request(|r| r.payload = None))
            .unwrap()
            .payload
            .is_empty());
        let t = task(request(|r| r.from = Some("harold".into()))).unwrap();
        assert_eq!(t.from, "harold");
        assert_eq!((t.parent_id, t.correlation_id), (None, None));
        let t = task(request(|r| {
            r.parent_id = Some("task-0".into());
            r.correlation_id = Some("c".repeat(MAX_TRACE_LEN));
        }))
        .unwrap();
        assert_eq!(t.parent_id.as_deref(), Some("task-0"));
        assert_eq!(
            t.correlation_id.as_deref().map(str::len),
            Some(MAX_TRACE_LEN)
        );
        assert_eq!(t.check(), Ok(()));
        assert!(checked_type(&"x".repeat(MAX_TYPE_LEN)).is_ok());
    }

    #[test]
    fn bad_requests_name_the_field_with_one_code_each() {
        for (r, code, needle) in [
            (request(|r| r.to = "pi nk".into()), "invalid_agent", "to: "),
            (
                request(|r| r.from = Some("a/b".into())),
                "invalid_agent",
                "from: ",
            ),
            (
                request(|r| r.from = Some(String::new())),
                "invalid_agent",
                "from: ",
            ),
            (
                request(|r| r.task_type = "two words".into()),
                "invalid_type",
                "two words",
            ),
            (
                request(|r| r.task_type = String::new()),
                "invalid_type",
                "type \"\"",
            ),
            (
                request(|r| r.task_type = "x".repeat(65)),
                "invalid_type",
                "1 to 64",
            ),
            (
                request(|r| r.task_type = "é".into()),
                "invalid_type",
                "word",
            ),
            (
                request(|r| r.payload = Some(json!([1]))),
                "invalid_payload",
                "[1]",
            ),
            (
                request(|r| r.payload = Some(json!("text"))),
                "invalid_payload",
                "object",
            ),
            (
                request(|r| r.parent_id = Some(String::new())),
                "invalid_trace",
                "parent_id: ",
            ),
            (
                request(|r| r.correlation_id = Some("a b".into())),
                "invalid_trace",
                "correlation_id: ",
            ),
            (
                request(|r| r.correlation_id = Some("c".repeat(MAX_TRACE_LEN + 1))),
                "invalid_trace",
                "1 to 128 bytes",
            ),
        ] {
            let e = task(r).unwrap_err();
            assert_eq!(e.code(), code, "{e}");
            assert!(e.to_string().contains(needle), "{e} lacks {needle:?}");
        }
    }

    /// The WebSocket protocol answers with the same codes as the HTTP API.
    #[test]
    fn the_codes_are_the_protocols() {
        use crate::ErrorCode;
        let invalid_type = PublishError::InvalidType("a b".into());
        assert_eq!(ErrorCode::InvalidType.as_str(), invalid_type.code());
        assert_eq!(
            serde_json::to_value(ErrorCode::InvalidType).unwrap(),
            json!(invalid_type.code())
        );
        let invalid_agent = checked_from("").unwrap_err();
        assert_eq!(ErrorCode::InvalidAgent.as_str(), invalid_agent.code());
        let invalid_trace = checked_trace("parent_id", Some("")).unwrap_err();
        assert_eq!(ErrorCode::InvalidTrace.as_str(), invalid_trace.code());
    }

    #[test]
    fn a_task_built_by_hand_is_checked_by_the_same_rule() {
        let good = task(request(|_| {})).unwrap();
        let every = TaskMessage {
            to: String::new(),
            ..good.clone()
        };
        assert_eq!(every.check(), Ok(()));
        for (bad, code) in [
            (
                TaskMessage {
                    to: "*".into(),
                    ..good.clone()
                },
                "invalid_agent",
            ),
            (
                TaskMessage {
                    from: String::new(),
                    ..good.clone()
                },
                "invalid_agent",
            ),
            (
                TaskMessage {
                    task_type: "has space".into(),
                    ..good
                },
                "invalid_type",
            ),
        ] {
            assert_eq!(bad.check().unwrap_err().code(), code, "{bad:?}");
        }
    }
}
