//! Redis stream entries (README, Redis layout) and their field/value encoding.
//!
//! The layout is the README's "Redis layout", kept so that agents written to it in any language
//! interoperate unchanged. Every value is a string in Redis; numbers are decimal text
//! and JSON objects are JSON text. Readers ignore fields they do not know, so writers
//! may add their own (for example `created_ms`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The value is not base64 (RFC 4648, standard alphabet, padded).
    #[error("not base64")]
    NotBase64,
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

    fn optional(&self, field: &'static str) -> Option<String> {
        self.get(field).filter(|v| !v.is_empty()).map(str::to_owned)
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

/// The fields of an entry as Redis holds them (byte strings), reduced to the text of
/// the fields a decoder reads (`known`), for [`Fields`].
///
/// A field whose name is not UTF-8 is not one the decoder knows and is ignored, as is
/// any other field it does not know, whatever its value. The last of a repeated field
/// wins; when the value of one of the first `strict` of `known` is not UTF-8 the entry
/// does not decode ([`Problem::NotUtf8`], the first such field in `known`'s order); a
/// later (optional) field whose value is not UTF-8 is left out.
fn text_fields<'a>(
    pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    known: &[&'static str],
    strict: usize,
) -> Result<Vec<(&'static str, &'a str)>, DecodeError> {
    let mut last: Vec<Option<&'a [u8]>> = vec![None; known.len()];
    for (name, value) in pairs {
        if let Some(at) = known.iter().position(|k| k.as_bytes() == name) {
            last[at] = Some(value);
        }
    }
    let mut fields = Vec::with_capacity(known.len());
    for (at, (field, value)) in known.iter().zip(last).enumerate() {
        if let Some(value) = value {
            match std::str::from_utf8(value) {
                Ok(text) => fields.push((*field, text)),
                Err(_) if at >= strict => {}
                Err(_) => return Err(DecodeError::new(field, Problem::NotUtf8)),
            }
        }
    }
    Ok(fields)
}

/// A task one agent hands another: an entry of `cortex:tasks:<priority>`.
///
/// JSON (the original agents' `TaskMessage`):
/// ```json
/// {"id":"task-001","from":"harold","to":"pink","priority":"high","type":"coding",
///  "payload":{"description":"Fix auth bug"},"created":1704556800}
/// ```
/// In Redis, the same seven fields, each a string: `payload` is JSON text and `created`
/// decimal unix seconds. An empty `to` addresses every agent.
///
/// A task may also carry `parent_id` (the task that spawned it) and `correlation_id`
/// (the trace it belongs to): in JSON and in Redis only when set, so readers that do
/// not know them are unaffected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMessage {
    /// The task's id, chosen by its publisher (a UUID from the relay and the original agents). Never empty.
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
    /// The `id` of the task that spawned this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The trace this task belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl TaskMessage {
    /// The fields of a task entry in Redis, in the README's Redis layout order.
    pub const FIELDS: [&'static str; 7] =
        ["id", "from", "to", "priority", "type", "payload", "created"];

    /// The optional fields a task entry may also have (only when set).
    pub const TRACE_FIELDS: [&'static str; 2] = ["parent_id", "correlation_id"];

    /// A task with no trace fields.
    pub fn new(
        id: String,
        from: String,
        to: String,
        priority: Priority,
        task_type: String,
        payload: JsonObject,
        created: i64,
    ) -> Self {
        Self {
            id,
            from,
            to,
            priority,
            task_type,
            payload,
            created,
            parent_id: None,
            correlation_id: None,
        }
    }

    /// Whether this task is addressed to `agent` (directly, or to every agent).
    pub fn is_for(&self, agent: &str) -> bool {
        self.to.is_empty() || self.to == agent
    }

    /// The stream field/value pairs, in the README's Redis layout order, then the trace
    /// fields that are set.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
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
        ];
        if let Some(parent) = &self.parent_id {
            fields.push(("parent_id", parent.clone()));
        }
        if let Some(correlation) = &self.correlation_id {
            fields.push(("correlation_id", correlation.clone()));
        }
        fields
    }

    /// Decodes stream field/value pairs. All seven fields must be present; `id` must not
    /// be empty, `priority` must be known, `payload` must be a JSON object and
    /// `created` an integer. An empty trace field is as good as none. Unknown fields are
    /// ignored.
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
            parent_id: f.optional("parent_id"),
            correlation_id: f.optional("correlation_id"),
        })
    }

    /// Decodes an entry's fields as Redis holds them, byte strings: as
    /// [`TaskMessage::from_fields`], after [`Problem::NotUtf8`] for one of the seven
    /// fields whose value is not UTF-8 (a trace field that is not UTF-8 is left out).
    /// Other fields are ignored, whatever bytes their names and values hold.
    pub fn from_raw_fields<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Self, DecodeError> {
        const KNOWN: [&str; 9] = [
            "id",
            "from",
            "to",
            "priority",
            "type",
            "payload",
            "created",
            "parent_id",
            "correlation_id",
        ];
        Self::from_fields(text_fields(pairs, &KNOWN, TaskMessage::FIELDS.len())?)
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

    /// Decodes an entry's fields as Redis holds them, byte strings (see
    /// [`TaskMessage::from_raw_fields`]).
    pub fn from_raw_fields<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Self, DecodeError> {
        Self::from_fields(text_fields(pairs, &Self::FIELDS, Self::FIELDS.len())?)
    }
}

/// A task that failed for good: an entry of `cortex:tasks:dlq`.
///
/// The original task's fields are kept as the text they had, because a dead letter
/// may describe an entry that never decoded (bad JSON, unknown priority, no id). What
/// text cannot say is said beside it: the task fields the entry did not have at all
/// ([`DeadLetter::original_missing`]; their `original_*` text is empty), and the exact
/// bytes of those whose value was not UTF-8 ([`DeadLetter::original_bytes`]; their
/// `original_*` text has each invalid sequence replaced by U+FFFD, for display only).
/// Such a letter's task is not retried as it is ([`DeadLetter::original_task`]).
///
/// JSON:
/// ```json
/// {"original_id":"task-001","original_from":"harold","original_to":"pink",
///  "original_priority":"high","original_type":"coding",
///  "original_payload":"{\"test\":\"data\"}","original_created":"1704556800",
///  "error":"processing timeout","retry_count":3,"dead_at":1704556900,
///  "original_stream":"cortex:tasks:high","original_entry_id":"1704556800000-0"}
/// ```
/// and, for an entry without `to` whose payload was not UTF-8, also
/// `"original_missing":["to"],"original_bytes":{"payload":"/3sifQ=="}` (base64).
/// A letter a relay consumer wrote also names who gave up and every attempt:
/// `"failed_agent":"pink","failed_consumer":"pink-1",
/// "attempts":[{"at_ms":1704556830000,"consumer":"pink-1","error":"timeout"}]`; and a
/// task's trace fields are kept as `original_parent_id`, `original_correlation_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The task fields (of [`TaskMessage::FIELDS`], in that order) the entry did not
    /// have. In Redis: `original_missing`, the names separated by spaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub original_missing: Vec<String>,
    /// The exact bytes of the task fields whose value was not UTF-8 text, by task field
    /// name. In JSON each value is base64 (RFC 4648, standard alphabet, padded); in
    /// Redis, field `original_<name>_base64` holds the same text.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "base64_map"
    )]
    pub original_bytes: BTreeMap<String, Vec<u8>>,
    /// The agent whose group gave up on the task (its letters from 0.2 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_agent: Option<String>,
    /// The consumer that held it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_consumer: Option<String>,
    /// Every failed attempt known, oldest first, the last one included. In Redis:
    /// `attempts`, a JSON array as text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
    /// The task's `parent_id`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_parent_id: Option<String>,
    /// The task's `correlation_id`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_correlation_id: Option<String>,
}

/// One failed attempt at a task: `{"at_ms":1704556830000,"consumer":"pink-1","error":"timeout"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// When it failed, unix milliseconds.
    pub at_ms: u64,
    /// The consumer it failed on.
    pub consumer: String,
    /// Why (a nack's error, or that it was not acked in time).
    pub error: String,
}

/// Each task field's `original_<name>_base64` field in a dead letter.
const BASE64_FIELDS: [(&str, &str); 7] = [
    ("id", "original_id_base64"),
    ("from", "original_from_base64"),
    ("to", "original_to_base64"),
    ("priority", "original_priority_base64"),
    ("type", "original_type_base64"),
    ("payload", "original_payload_base64"),
    ("created", "original_created_base64"),
];

/// Byte strings as base64 text (RFC 4648, standard alphabet, padded).
mod base64_map {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub(super) fn serialize<S: Serializer>(
        map: &BTreeMap<String, Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text: BTreeMap<&str, String> = map
            .iter()
            .map(|(k, v)| (k.as_str(), STANDARD.encode(v)))
            .collect();
        text.serialize(serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer)?
            .into_iter()
            .map(|(k, v)| {
                STANDARD
                    .decode(v)
                    .map(|bytes| (k, bytes))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

impl DeadLetter {
    /// The fields of a dead letter in Redis: the README's ten, then the optional extras.
    pub const FIELDS: [&'static str; 25] = [
        "original_id",
        "original_from",
        "original_to",
        "original_priority",
        "original_type",
        "original_payload",
        "original_created",
        "error",
        "retry_count",
        "dead_at",
        "original_stream",
        "original_entry_id",
        "original_missing",
        BASE64_FIELDS[0].1,
        BASE64_FIELDS[1].1,
        BASE64_FIELDS[2].1,
        BASE64_FIELDS[3].1,
        BASE64_FIELDS[4].1,
        BASE64_FIELDS[5].1,
        BASE64_FIELDS[6].1,
        "failed_agent",
        "failed_consumer",
        "attempts",
        "original_parent_id",
        "original_correlation_id",
    ];

    /// The stream field/value pairs, in the README's Redis layout order, then the optional extras.
    pub fn to_fields(&self) -> Vec<(&'static str, String)> {
        use base64::Engine;
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
        if !self.original_missing.is_empty() {
            fields.push(("original_missing", self.original_missing.join(" ")));
        }
        for (task_field, field) in BASE64_FIELDS {
            if let Some(bytes) = self.original_bytes.get(task_field) {
                let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                fields.push((field, text));
            }
        }
        if let Some(agent) = &self.failed_agent {
            fields.push(("failed_agent", agent.clone()));
        }
        if let Some(consumer) = &self.failed_consumer {
            fields.push(("failed_consumer", consumer.clone()));
        }
        if !self.attempts.is_empty() {
            let text = serde_json::to_string(&self.attempts).unwrap_or_default();
            fields.push(("attempts", text));
        }
        if let Some(parent) = &self.original_parent_id {
            fields.push(("original_parent_id", parent.clone()));
        }
        if let Some(correlation) = &self.original_correlation_id {
            fields.push(("original_correlation_id", correlation.clone()));
        }
        fields
    }

    /// Decodes stream field/value pairs. `error`, `retry_count` and `dead_at` are
    /// required; an absent `original_*` text field reads as empty, since a dead letter
    /// may stand for an entry that lacked it. `original_missing` keeps the task field
    /// names it knows; an `original_<name>_base64` that is not base64 is an error
    /// ([`Problem::NotBase64`]), as is `attempts` that is not a JSON array of attempts.
    pub fn from_fields<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, DecodeError> {
        use base64::Engine;
        let f = Fields::new(pairs);
        let text = |field| f.get(field).unwrap_or_default().to_owned();
        let retry_count = f.required("retry_count")?;
        let missing = f.get("original_missing").unwrap_or_default();
        let mut original_bytes = BTreeMap::new();
        for (task_field, field) in BASE64_FIELDS {
            if let Some(encoded) = f.get(field) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| DecodeError::new(field, Problem::NotBase64))?;
                original_bytes.insert(task_field.to_owned(), bytes);
            }
        }
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
            failed_agent: f.optional("failed_agent"),
            failed_consumer: f.optional("failed_consumer"),
            attempts: match f.get("attempts") {
                None | Some("") => Vec::new(),
                Some(text) => serde_json::from_str(text)
                    .map_err(|e| DecodeError::new("attempts", Problem::NotJson(e.to_string())))?,
            },
            original_parent_id: f.optional("original_parent_id"),
            original_correlation_id: f.optional("original_correlation_id"),
            original_missing: TaskMessage::FIELDS
                .into_iter()
                .filter(|name| missing.split_ascii_whitespace().any(|m| m == *name))
                .map(str::to_owned)
                .collect(),
            original_bytes,
        })
    }

    /// Decodes a DLQ entry's fields as Redis holds them, byte strings (see
    /// [`TaskMessage::from_raw_fields`]).
    pub fn from_raw_fields<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<Self, DecodeError> {
        Self::from_fields(text_fields(pairs, &Self::FIELDS, Self::FIELDS.len())?)
    }

    /// A DLQ entry's fields as Redis holds them, read as the relay shows a letter: never
    /// refused. A required field that is absent or unreadable reads as empty, zero, or
    /// `dead_at` (the caller passes the DLQ id's time); the last of a repeated field
    /// wins. Nothing is altered silently: an `original_*` task field whose value is not
    /// UTF-8 is kept exactly in [`DeadLetter::original_bytes`] (as an
    /// `original_<name>_base64` field is), and one whose `original_<name>_base64` is
    /// not base64 is listed in [`DeadLetter::original_missing`], its bytes being lost.
    /// Either way the letter's task is not retried as it is.
    pub fn from_raw_fields_leniently<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        dead_at: i64,
    ) -> Self {
        use base64::Engine;
        let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let mut letter = DeadLetter {
            dead_at,
            ..DeadLetter::default()
        };
        let mut original: [Option<&[u8]>; 7] = [None; 7];
        let mut encoded: [Option<&[u8]>; 7] = [None; 7];
        let mut missing: Option<&[u8]> = None;
        for (name, value) in pairs {
            match name {
                b"error" => letter.error = lossy(value),
                b"retry_count" => {
                    letter.retry_count = lossy(value).trim().parse().unwrap_or(0);
                }
                b"dead_at" => letter.dead_at = lossy(value).trim().parse().unwrap_or(dead_at),
                b"original_stream" => letter.original_stream = Some(lossy(value)),
                b"original_entry_id" => letter.original_entry_id = Some(lossy(value)),
                b"failed_agent" => letter.failed_agent = Some(lossy(value)),
                b"failed_consumer" => letter.failed_consumer = Some(lossy(value)),
                // Shown as far as it reads; a letter is never refused for it.
                b"attempts" => letter.attempts = serde_json::from_slice(value).unwrap_or_default(),
                b"original_parent_id" => letter.original_parent_id = Some(lossy(value)),
                b"original_correlation_id" => {
                    letter.original_correlation_id = Some(lossy(value));
                }
                b"original_missing" => missing = Some(value),
                name => {
                    for (at, (task_field, base64_field)) in BASE64_FIELDS.iter().enumerate() {
                        if name.strip_prefix(b"original_") == Some(task_field.as_bytes()) {
                            original[at] = Some(value);
                        } else if name == base64_field.as_bytes() {
                            encoded[at] = Some(value);
                        }
                    }
                }
            }
        }
        let missing = missing.map(lossy).unwrap_or_default();
        for (at, field) in TaskMessage::FIELDS.into_iter().enumerate() {
            if missing.split_ascii_whitespace().any(|m| m == field) {
                letter.original_missing.push(field.to_owned());
            }
            if let Some(bytes) = original[at] {
                let text = match std::str::from_utf8(bytes) {
                    Ok(text) => text.to_owned(),
                    Err(_) => {
                        letter
                            .original_bytes
                            .insert(field.to_owned(), bytes.to_vec());
                        lossy(bytes)
                    }
                };
                *letter.original_text_mut(field) = text;
            }
            if let Some(text) = encoded[at] {
                match base64::engine::general_purpose::STANDARD.decode(text) {
                    Ok(bytes) => {
                        letter.original_bytes.insert(field.to_owned(), bytes);
                    }
                    Err(_) => {
                        letter.original_bytes.remove(field);
                        if !letter.original_missing.iter().any(|m| m == field) {
                            letter.original_missing.push(field.to_owned());
                        }
                    }
                }
            }
        }
        letter
    }

    /// This letter with its `original_*` fields taken from a task entry's fields as
    /// Redis holds them (the last of a repeated field wins; names that are not UTF-8
    /// are no task field's): a task field the entry lacks is listed in
    /// [`DeadLetter::original_missing`] and one whose value is not UTF-8 is kept
    /// exactly in [`DeadLetter::original_bytes`], so that nothing is altered silently.
    pub fn with_original_fields<'a>(
        mut self,
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Self {
        let mut last: [Option<&[u8]>; 7] = [None; 7];
        for (name, value) in pairs {
            if let Some(at) = TaskMessage::FIELDS
                .iter()
                .position(|k| k.as_bytes() == name)
            {
                last[at] = Some(value);
            }
        }
        self.original_missing.clear();
        self.original_bytes.clear();
        for (field, value) in TaskMessage::FIELDS.into_iter().zip(last) {
            let text = match value {
                None => {
                    self.original_missing.push(field.to_owned());
                    String::new()
                }
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => text.to_owned(),
                    Err(_) => {
                        self.original_bytes.insert(field.to_owned(), bytes.to_vec());
                        String::from_utf8_lossy(bytes).into_owned()
                    }
                },
            };
            *self.original_text_mut(field) = text;
        }
        self
    }

    /// The `original_*` text of task field `field` (one of [`TaskMessage::FIELDS`]).
    fn original_text_mut(&mut self, field: &str) -> &mut String {
        match field {
            "id" => &mut self.original_id,
            "from" => &mut self.original_from,
            "to" => &mut self.original_to,
            "priority" => &mut self.original_priority,
            "type" => &mut self.original_type,
            "payload" => &mut self.original_payload,
            _ => &mut self.original_created,
        }
    }

    /// Replaces task field `field` (one of [`TaskMessage::FIELDS`]) with `text`: it is
    /// then neither missing nor undecoded.
    pub fn set_original(&mut self, field: &str, text: String) {
        *self.original_text_mut(field) = text;
        self.original_missing.retain(|m| m != field);
        self.original_bytes.remove(field);
    }

    /// The original task, decoded from the `original_*` fields with the task rules. A
    /// field the entry lacked is [`Problem::Missing`] and one that was not UTF-8 is
    /// [`Problem::NotUtf8`] (their text stands for nothing the task had).
    pub fn original_task(&self) -> Result<TaskMessage, DecodeError> {
        for field in TaskMessage::FIELDS {
            if self.original_missing.iter().any(|m| m == field) {
                return Err(DecodeError::new(field, Problem::Missing));
            }
            if self.original_bytes.contains_key(field) {
                return Err(DecodeError::new(field, Problem::NotUtf8));
            }
        }
        TaskMessage::from_fields([
            ("id", self.original_id.as_str()),
            ("from", &self.original_from),
            ("to", &self.original_to),
            ("priority", &self.original_priority),
            ("type", &self.original_type),
            ("payload", &self.original_payload),
            ("created", &self.original_created),
            (
                "parent_id",
                self.original_parent_id.as_deref().unwrap_or_default(),
            ),
            (
                "correlation_id",
                self.original_correlation_id.as_deref().unwrap_or_default(),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The original Go agents' `TestTaskMessage_FromRedisValues` entry, verbatim.
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
            parent_id: None,
            correlation_id: None,
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
    fn task_golden_json_is_the_original_task_message() {
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
    fn a_letter_names_who_failed_it_every_attempt_and_the_trace() {
        let attempts = r#"[{"at_ms":5,"consumer":"pink-1","error":"timeout"},{"at_ms":9,"consumer":"pink-2","error":"boom"}]"#;
        let fields = [
            ("original_id", "t-1"),
            ("original_from", "harold"),
            ("original_to", ""),
            ("original_priority", "high"),
            ("original_type", "coding"),
            ("original_payload", "{}"),
            ("original_created", "1704556800"),
            ("error", "boom"),
            ("retry_count", "2"),
            ("dead_at", "1704556900"),
            ("failed_agent", "pink"),
            ("failed_consumer", "pink-2"),
            ("attempts", attempts),
            ("original_parent_id", "t-0"),
            ("original_correlation_id", "c-1"),
        ];
        let letter = DeadLetter::from_fields(fields).unwrap();
        assert_eq!(letter.failed_agent.as_deref(), Some("pink"));
        assert_eq!(letter.attempts.len(), 2);
        assert_eq!(letter.attempts[1].error, "boom");
        let encoded = letter.to_fields();
        let encoded: Vec<(&str, &str)> = encoded.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(encoded, fields);
        let raw: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        assert_eq!(DeadLetter::from_raw_fields(raw.clone()).unwrap(), letter);
        assert_eq!(DeadLetter::from_raw_fields_leniently(raw, 0), letter);
        let task = letter.original_task().unwrap();
        assert_eq!(task.parent_id.as_deref(), Some("t-0"));
        assert_eq!(task.correlation_id.as_deref(), Some("c-1"));
        let json = serde_json::to_value(&letter).unwrap();
        assert_eq!(json["attempts"][0]["consumer"], "pink-1");
        assert_eq!(json["failed_consumer"], "pink-2");
        assert_eq!(serde_json::from_value::<DeadLetter>(json).unwrap(), letter);

        // Attempts that are not JSON: refused strictly, shown as none leniently.
        let mut bad = fields;
        bad[12].1 = "[{";
        assert_eq!(DeadLetter::from_fields(bad).unwrap_err().field, "attempts");
        let raw: Vec<(&[u8], &[u8])> = bad
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        let shown = DeadLetter::from_raw_fields_leniently(raw, 0);
        assert!(shown.attempts.is_empty());
        assert_eq!(shown.failed_agent.as_deref(), Some("pink"));
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
