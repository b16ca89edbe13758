//! Redis stream entries (SPEC §2) and their field/value encoding.
//!
//! The layout is the original plan's, kept so that agents written to it in any language
//! interoperate unchanged. Every value is a string in Redis; numbers are decimal text
//! and JSON objects are JSON text. Readers ignore fields they do not know, so writers
//! may add their own (for example `created_ms`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A JSON object, as carried by task payloads and heartbeat statuses.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Stream of heartbeats.
pub const HEARTBEAT_STREAM: &str = "cortex:heartbeats";
/// Stream of dead letters.
pub const DLQ_STREAM: &str = "cortex:tasks:dlq";

/// A task's priority; one stream per priority.
///
/// JSON: `"critical"`, `"high"`, `"normal"`, `"low"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// `cortex:tasks:critical`, delivered first.
    Critical,
    /// `cortex:tasks:high`.
    High,
    /// `cortex:tasks:normal`.
    Normal,
    /// `cortex:tasks:low`, delivered last.
    Low,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 4] = [
        Priority::Critical,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];

    /// The wire name: `critical`, `high`, `normal` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// The stream that carries tasks of this priority, e.g. `cortex:tasks:high`.
    pub fn stream(self) -> &'static str {
        match self {
            Priority::Critical => "cortex:tasks:critical",
            Priority::High => "cortex:tasks:high",
            Priority::Normal => "cortex:tasks:normal",
            Priority::Low => "cortex:tasks:low",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The priority whose stream is `stream`, if it is a task stream.
    pub fn from_stream(stream: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.stream() == stream)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an entry could not be decoded: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {problem}")]
pub struct DecodeError {
    /// The field at fault, as named in Redis.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a field; see [`DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The field is absent.
    #[error("missing")]
    Missing,
    /// The field is present but empty where a value is required.
    #[error("empty")]
    Empty,
    /// The field is not valid JSON.
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// The field is JSON, but not an object.
    #[error("expected a JSON object, found {0}")]
    NotObject(&'static str),
    /// The field is not a decimal integer.
    #[error("expected a decimal integer, found {0:?}")]
    NotInteger(String),
    /// The field is not one of `critical`, `high`, `normal`, `low`.
    #[error("unknown priority {0:?}; expected critical, high, normal or low")]
    UnknownPriority(String),
    /// The value is not UTF-8 text.
    #[error("not UTF-8 text")]
    NotUtf8,
}

impl DecodeError {
    /// A [`DecodeError`] for `field`.
    pub fn new(field: &'static str, problem: Problem) -> Self {
        Self { field, problem }
    }
}

/// The field/value pairs of one entry, looked up by name; the last value wins when a
/// field repeats, and unknown fields are ignored.
struct Fields<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Fields<'a> {
    fn new(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    fn get(&self, field: &'static str) -> Option<&'a str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| *k == field)
            .map(|(_, v)| *v)
    }

    fn required(&self, field: &'static str) -> Result<&'a str, DecodeError> {
        self.get(field)
            .ok_or(DecodeError::new(field, Problem::Missing))
    }

    fn non_empty(&self, field: &'static str) -> Result<&'a str, DecodeError> {
        match self.required(field)? {
            "" => Err(DecodeError::new(field, Problem::Empty)),
            v => Ok(v),
        }
    }

    fn integer(&self, field: &'static str) -> Result<i64, DecodeError> {
        let v = self.required(field)?;
        v.trim()
            .parse()
            .map_err(|_| DecodeError::new(field, Problem::NotInteger(v.to_owned())))
    }

    fn object(&self, field: &'static str) -> Result<JsonObject, DecodeError> {
        parse_object(self.required(field)?).map_err(|p| DecodeError::new(field, p))
    }
}

/// Parses JSON text that must hold an object.
pub fn parse_object(text: &str) -> Result<JsonObject, Problem> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(Problem::NotObject(json_kind(&other))),
        Err(e) => Err(Problem::NotJson(e.to_string())),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A task one agent hands another: an entry of `cortex:tasks:<priority>`.
///
/// JSON (the plan's `TaskMessage`):
/// ```json
/// {"id":"task-001","from":"harold","to":"pink","priority":"high","type":"coding",
///  "payload":{"description":"Fix auth bug"},"created":1704556800}
/// ```
/// In Redis, the same seven fields, each a string: `payload` is JSON text and `created`
/// decimal unix seconds. An empty `to` addresses every agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMessage {
    /// The task's id, chosen by its publisher (a UUID in the plan). Never empty.
    pub id: String,
    /// The agent that sent it.
    pub from: String,
    /// The agent it is for; empty for every agent.
    pub to: String,
    /// Its priority, which also names its stream.
    pub priority: Priority,
    /// What kind of task: `coding`, `review`, `deploy`, `heartbeat` or any other word.
    #[serde(rename = "type")]
    pub task_type: String,
    /// The task's data, a JSON object.
    pub payload: JsonObject,
    /// When it was created, unix seconds.
    pub created: i64,
}

impl TaskMessage {
    /// The fields of a task entry in Redis, in the plan's order.
    pub const FIELDS: [&'static str; 7] =
        ["id", "from", "to", "priority", "type", "payload", "created"];

    /// Whether this task is addressed to `agent` (directly, or to every agent).
    pub fn is_for(&self, agent: &str) -> bool {
        self.to.is_empty() || self.to == agent
    }

    /// The stream field/value pairs, in the plan's order.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", self.id.clone()),
            ("from", self.from.clone()),
            ("to", self.to.clone()),
            ("priority", self.priority.as_str().to_owned()),
            ("type", self.task_type.clone()),
            (
                "payload",
                serde_json::Value::Object(self.payload.clone()).to_string(),
            ),
            ("created", self.created.to_string()),
        ]
    }

    /// Decodes stream field/value pairs. All seven fields must be present; `id` must not
    /// be empty, `priority` must be known, `payload` must be a JSON object and
    /// `created` an integer. Unknown fields are ignored.
    pub fn from_fields<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, DecodeError> {
        let f = Fields::new(pairs);
        let priority = f.required("priority")?;
        Ok(Self {
            id: f.non_empty("id")?.to_owned(),
            from: f.required("from")?.to_owned(),
            to: f.required("to")?.to_owned(),
            priority: Priority::parse(priority).ok_or_else(|| {
                DecodeError::new("priority", Problem::UnknownPriority(priority.to_owned()))
            })?,
            task_type: f.required("type")?.to_owned(),
            payload: f.object("payload")?,
            created: f.integer("created")?,
        })
    }
}

/// An agent's heartbeat: an entry of `cortex:heartbeats`.
///
/// JSON: `{"agent":"pink","time":1704556800,"status":{"load":0.3}}`.
/// In Redis: `agent`, `time` (unix seconds), `status` (a JSON object as text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The agent that is alive.
    pub agent: String,
    /// When it said so, unix seconds.
    pub time: i64,
    /// What it says about itself, a JSON object.
    pub status: JsonObject,
}

impl Heartbeat {
    /// The fields of a heartbeat entry in Redis.
    pub const FIELDS: [&'static str; 3] = ["agent", "time", "status"];

    /// The stream field/value pairs.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("agent", self.agent.clone()),
            ("time", self.time.to_string()),
            (
                "status",
                serde_json::Value::Object(self.status.clone()).to_string(),
            ),
        ]
    }

    /// Decodes stream field/value pairs: `agent` non-empty, `time` an integer, `status`
    /// a JSON object.
    pub fn from_fields<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, DecodeError> {
        let f = Fields::new(pairs);
        Ok(Self {
            agent: f.non_empty("agent")?.to_owned(),
            time: f.integer("time")?,
            status: f.object("status")?,
        })
    }
}

/// A task that failed for good: an entry of `cortex:tasks:dlq`.
///
/// The original task's fields are kept as the text they had, because a dead letter
/// may describe an entry that never decoded (bad JSON, unknown priority, no id).
///
/// JSON:
/// ```json
/// {"original_id":"task-001","original_from":"harold","original_to":"pink",
///  "original_priority":"high","original_type":"coding",
///  "original_payload":"{\"test\":\"data\"}","original_created":"1704556800",
///  "error":"processing timeout","retry_count":3,"dead_at":1704556900,
///  "original_stream":"cortex:tasks:high","original_entry_id":"1704556800000-0"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The task's `id`.
    pub original_id: String,
    /// The task's `from`.
    pub original_from: String,
    /// The task's `to`.
    pub original_to: String,
    /// The task's `priority`, as written.
    pub original_priority: String,
    /// The task's `type`.
    pub original_type: String,
    /// The task's `payload`, as written (JSON text when the task was well formed).
    pub original_payload: String,
    /// The task's `created`, as written.
    pub original_created: String,
    /// Why the task died.
    pub error: String,
    /// How many times it had been delivered or retried.
    pub retry_count: u32,
    /// When it died, unix seconds.
    pub dead_at: i64,
    /// The stream the task was read from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_stream: Option<String>,
    /// The stream entry id the task had, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_entry_id: Option<String>,
}

impl DeadLetter {
    /// The stream field/value pairs, in the plan's order, then the optional extras.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("original_id", self.original_id.clone()),
            ("original_from", self.original_from.clone()),
            ("original_to", self.original_to.clone()),
            ("original_priority", self.original_priority.clone()),
            ("original_type", self.original_type.clone()),
            ("original_payload", self.original_payload.clone()),
            ("original_created", self.original_created.clone()),
            ("error", self.error.clone()),
            ("retry_count", self.retry_count.to_string()),
            ("dead_at", self.dead_at.to_string()),
        ];
        if let Some(stream) = &self.original_stream {
            fields.push(("original_stream", stream.clone()));
        }
        if let Some(id) = &self.original_entry_id {
            fields.push(("original_entry_id", id.clone()));
        }
        fields
    }

    /// Decodes stream field/value pairs. `error`, `retry_count` and `dead_at` are
    /// required; an absent `original_*` text field reads as empty, since a dead letter
    /// may stand for an entry that lacked it.
    pub fn from_fields<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, DecodeError> {
        let f = Fields::new(pairs);
        let text = |field| f.get(field).unwrap_or_default().to_owned();
        let retry_count = f.required("retry_count")?;
        Ok(Self {
            original_id: text("original_id"),
            original_from: text("original_from"),
            original_to: text("original_to"),
            original_priority: text("original_priority"),
            original_type: text("original_type"),
            original_payload: text("original_payload"),
            original_created: text("original_created"),
            error: f.required("error")?.to_owned(),
            retry_count: retry_count.trim().parse().map_err(|_| {
                DecodeError::new("retry_count", Problem::NotInteger(retry_count.to_owned()))
            })?,
            dead_at: f.integer("dead_at")?,
            original_stream: f.get("original_stream").map(str::to_owned),
            original_entry_id: f.get("original_entry_id").map(str::to_owned),
        })
    }

    /// The original task, decoded from the `original_*` fields with the task rules.
    pub fn original_task(&self) -> Result<TaskMessage, DecodeError> {
        TaskMessage::from_fields([
            ("id", self.original_id.as_str()),
            ("from", &self.original_from),
            ("to", &self.original_to),
            ("priority", &self.original_priority),
            ("type", &self.original_type),
            ("payload", &self.original_payload),
            ("created", &self.original_created),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The plan's `TestTaskMessage_FromRedisValues` entry, verbatim.
    const SEED_TASK_FIELDS: [(&str, &str); 7] = [
        ("id", "task-001"),
        ("from", "harold"),
        ("to", "pink"),
        ("priority", "high"),
        ("type", "coding"),
        ("payload", r#"{"description":"Fix auth bug"}"#),
        ("created", "1704556800"),
    ];

    fn seed_task() -> TaskMessage {
        TaskMessage {
            id: "task-001".into(),
            from: "harold".into(),
            to: "pink".into(),
            priority: Priority::High,
            task_type: "coding".into(),
            payload: json!({"description": "Fix auth bug"})
                .as_object()
                .unwrap()
                .clone(),
            created: 1_704_556_800,
        }
    }

    fn with(field: &str, value: &'static str) -> Vec<(&'static str, &'static str)> {
        let mut fields = SEED_TASK_FIELDS.to_vec();
        fields.iter_mut().find(|(k, _)| *k == field).unwrap().1 = value;
        fields
    }

    fn without(field: &str) -> Vec<(&'static str, &'static str)> {
        SEED_TASK_FIELDS
            .into_iter()
            .filter(|(k, _)| *k != field)
            .collect()
    }

    #[test]
    fn priority_streams_are_the_plans() {
        let streams: Vec<_> = Priority::ALL.iter().map(|p| p.stream()).collect();
        assert_eq!(
            streams,
            [
                "cortex:tasks:critical",
                "cortex:tasks:high",
                "cortex:tasks:normal",
                "cortex:tasks:low"
            ]
        );
        assert_eq!(HEARTBEAT_STREAM, "cortex:heartbeats");
        assert_eq!(DLQ_STREAM, "cortex:tasks:dlq");
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(p));
            assert_eq!(Priority::from_stream(p.stream()), Some(p));
        }
        assert_eq!(Priority::parse("urgent"), None);
        assert_eq!(Priority::from_stream(DLQ_STREAM), None);
    }

    #[test]
    fn task_golden_redis_fields() {
        let fields = seed_task().to_fields();
        let owned: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(owned, SEED_TASK_FIELDS);
        assert_eq!(
            TaskMessage::from_fields(SEED_TASK_FIELDS).unwrap(),
            seed_task()
        );
    }

    #[test]
    fn task_golden_json_is_the_plans_task_message() {
        let value = serde_json::to_value(seed_task()).unwrap();
        assert_eq!(
            value,
            json!({"id":"task-001","from":"harold","to":"pink","priority":"high",
                   "type":"coding","payload":{"description":"Fix auth bug"},
                   "created":1704556800})
        );
        let back: TaskMessage = serde_json::from_value(value).unwrap();
        assert_eq!(back, seed_task());
    }

    #[test]
    fn task_ignores_unknown_fields_and_accepts_empty_to() {
        let mut fields = with("to", "");
        fields.push(("created_ms", "1704556800123"));
        let task = TaskMessage::from_fields(fields).unwrap();
        assert_eq!(task.to, "");
        assert!(task.is_for("pink") && task.is_for("harold"));
        assert!(seed_task().is_for("pink") && !seed_task().is_for("harold"));
    }

    #[test]
    fn task_decode_errors_name_the_field() {
        type Case = (Vec<(&'static str, &'static str)>, &'static str, Problem);
        let cases: Vec<Case> = vec![
            (without("id"), "id", Problem::Missing),
            (with("id", ""), "id", Problem::Empty),
            (
                with("priority", "urgent"),
                "priority",
                Problem::UnknownPriority("urgent".into()),
            ),
            (
                with("payload", "[1,2]"),
                "payload",
                Problem::NotObject("an array"),
            ),
            (
                with("created", "yesterday"),
                "created",
                Problem::NotInteger("yesterday".into()),
            ),
            (without("to"), "to", Problem::Missing),
        ];
        for (fields, field, problem) in cases {
            let err = TaskMessage::from_fields(fields).unwrap_err();
            assert_eq!(err, DecodeError::new(field, problem));
        }
        let err = TaskMessage::from_fields(with("payload", "{not json")).unwrap_err();
        assert_eq!(err.field, "payload");
        assert!(
            err.to_string()
                .starts_with("field `payload`: not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn heartbeat_golden_fields_and_json() {
        let fields = [
            ("agent", "pink"),
            ("time", "1704556800"),
            ("status", r#"{"load":0.5,"state":"idle"}"#),
        ];
        let hb = Heartbeat::from_fields(fields).unwrap();
        assert_eq!(hb.agent, "pink");
        assert_eq!(hb.time, 1_704_556_800);
        assert_eq!(hb.status["state"], "idle");
        let encoded = hb.to_fields();
        assert_eq!(
            encoded.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ["agent", "time", "status"]
        );
        assert_eq!(
            Heartbeat::from_fields(encoded.iter().map(|(k, v)| (*k, v.as_str()))).unwrap(),
            hb
        );
        let json = serde_json::to_value(&hb).unwrap();
        assert_eq!(
            json,
            json!({"agent":"pink","time":1704556800,"status":{"load":0.5,"state":"idle"}})
        );
        assert_eq!(serde_json::from_value::<Heartbeat>(json).unwrap(), hb);

        let err = Heartbeat::from_fields([("agent", "pink"), ("time", "1"), ("status", "ok")])
            .unwrap_err();
        assert_eq!(err.field, "status");
        let err = Heartbeat::from_fields([("time", "1"), ("status", "{}")]).unwrap_err();
        assert_eq!(err, DecodeError::new("agent", Problem::Missing));
    }

    #[test]
    fn dead_letter_golden_fields_from_the_plan() {
        // The plan's SendToDeadLetter field set, plus our two optional extras.
        let fields = [
            ("original_id", "failed-001"),
            ("original_from", "harold"),
            ("original_to", "pink"),
            ("original_priority", "high"),
            ("original_type", "coding"),
            ("original_payload", r#"{"test":"data"}"#),
            ("original_created", "1704556800"),
            ("error", "processing timeout"),
            ("retry_count", "3"),
            ("dead_at", "1704556900"),
            ("original_stream", "cortex:tasks:high"),
            ("original_entry_id", "1704556800000-0"),
        ];
        let letter = DeadLetter::from_fields(fields).unwrap();
        assert_eq!(letter.retry_count, 3);
        assert_eq!(letter.original_stream.as_deref(), Some("cortex:tasks:high"));
        let encoded = letter.to_fields();
        let encoded: Vec<(&str, &str)> = encoded.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(encoded, fields);

        let task = letter.original_task().unwrap();
        assert_eq!(task.id, "failed-001");
        assert_eq!(task.priority, Priority::High);

        let json = serde_json::to_value(&letter).unwrap();
        assert_eq!(json["retry_count"], 3);
        assert_eq!(json["original_payload"], r#"{"test":"data"}"#);
        assert_eq!(serde_json::from_value::<DeadLetter>(json).unwrap(), letter);

        // Without the extras (a letter written by a plan-era agent).
        let plain = DeadLetter::from_fields(fields[..10].iter().copied()).unwrap();
        assert_eq!(plain.original_stream, None);
        assert_eq!(plain.to_fields().len(), 10);
        assert!(!serde_json::to_string(&plain)
            .unwrap()
            .contains("original_stream"));
    }

    #[test]
    fn dead_letter_decode_errors_name_the_field() {
        let err =
            DeadLetter::from_fields([("error", "x"), ("retry_count", "many"), ("dead_at", "1")])
                .unwrap_err();
        assert_eq!(
            err,
            DecodeError::new("retry_count", Problem::NotInteger("many".into()))
        );
        let err = DeadLetter::from_fields([("retry_count", "1"), ("dead_at", "1")]).unwrap_err();
        assert_eq!(err, DecodeError::new("error", Problem::Missing));
        // A letter for an entry that never decoded still decodes as a letter.
        let letter = DeadLetter::from_fields([
            ("original_payload", "{broken"),
            ("error", "field `payload`: not valid JSON"),
            ("retry_count", "0"),
            ("dead_at", "1"),
        ])
        .unwrap();
        assert_eq!(letter.original_task().unwrap_err().field, "id");
    }
}
