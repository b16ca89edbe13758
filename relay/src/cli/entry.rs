//! A stream entry as the CLI shows it: decoded with cortex-shared according to its
//! stream (task, heartbeat, dead letter), or raw when it does not decode, with the
//! reason. One JSON shape for every command that prints entries (`replay`, `tail`,
//! `dlq list`):
//!
//! ```json
//! {"stream":"cortex:tasks:high","entry_id":"1704556800000-0","kind":"task",
//!  "data":{"id":"task-001","from":"harold","to":"pink","priority":"high",
//!          "type":"coding","payload":{"a":1},"created":1704556800}}
//! ```
//!
//! `kind` is `task`, `heartbeat`, `dead_letter` or `raw`; `data` is the decoded entry
//! (the wire types' JSON) or, for `raw`, its fields as text, with an `error` naming
//! what did not decode. A task received by `tail --consume` adds `delivery_count`.

use super::output::{entry_time, pad, shorten, utc};
use crate::store::value::{map_pairs, text_map};
use cortex_shared::{DeadLetter, Heartbeat, Priority, TaskMessage, DLQ_STREAM, HEARTBEAT_STREAM};
use redis::streams::StreamId;
use redis::Value;
use serde_json::json;
use std::collections::BTreeMap;

/// The longest payload or status shown on a human line.
const SHOWN_JSON: usize = 120;

/// What an entry decoded to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A task (from a priority stream).
    Task(TaskMessage),
    /// A heartbeat (from `cortex:heartbeats`).
    Heartbeat(Heartbeat),
    /// A dead letter (from `cortex:tasks:dlq`).
    DeadLetter(Box<DeadLetter>),
    /// An entry that does not decode, or of a stream the CLI does not know.
    Raw {
        /// Its fields, as text (bytes that are not UTF-8 are replaced).
        fields: BTreeMap<String, String>,
        /// Why it did not decode; `None` for a stream of unknown kind.
        error: Option<String>,
    },
}

/// One entry of one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The stream's key.
    pub stream: String,
    /// The entry id.
    pub entry_id: String,
    /// Its content.
    pub decoded: Decoded,
    /// Deliveries so far, for a task being consumed.
    pub delivery_count: Option<u64>,
}

impl Entry {
    /// Decodes `entry` of `stream` by the stream's kind.
    pub fn decode(stream: &str, entry: &StreamId) -> Self {
        Self {
            stream: stream.to_owned(),
            entry_id: entry.id.clone(),
            decoded: decode_fields(stream, &entry.map),
            delivery_count: None,
        }
    }

    /// A task that was delivered as a wire type already.
    pub fn task(stream: &str, entry_id: &str, task: TaskMessage) -> Self {
        Self {
            stream: stream.to_owned(),
            entry_id: entry_id.to_owned(),
            decoded: Decoded::Task(task),
            delivery_count: None,
        }
    }

    /// Its JSON object (see the module's documentation).
    pub fn json(&self) -> serde_json::Value {
        let (kind, data) = match &self.decoded {
            Decoded::Task(task) => ("task", json!(task)),
            Decoded::Heartbeat(heartbeat) => ("heartbeat", json!(heartbeat)),
            Decoded::DeadLetter(letter) => ("dead_letter", json!(letter)),
            Decoded::Raw { fields, .. } => ("raw", json!(fields)),
        };
        let mut value = json!({
            "stream": self.stream,
            "entry_id": self.entry_id,
            "kind": kind,
            "data": data,
        });
        if let Decoded::Raw {
            error: Some(error), ..
        } = &self.decoded
        {
            value["error"] = json!(error);
        }
        if let Some(count) = self.delivery_count {
            value["delivery_count"] = json!(count);
        }
        value
    }

    /// One line for people: entry id, time, then the entry's own columns.
    pub fn human(&self) -> String {
        let id = pad(&self.entry_id, 15);
        match &self.decoded {
            Decoded::Task(task) => {
                let mut line = format!(
                    "{id}  {}  {}  {}  {}  {}  {}",
                    utc(task.created),
                    pad(task.priority.as_str(), 8),
                    pad(&route(&task.from, &task.to), 20),
                    pad(&task.task_type, 8),
                    task.id,
                    shorten(
                        &serde_json::Value::Object(task.payload.clone()).to_string(),
                        SHOWN_JSON
                    ),
                );
                if let Some(count) = self.delivery_count.filter(|n| *n > 1) {
                    line.push_str(&format!("  (delivery {count})"));
                }
                line
            }
            Decoded::Heartbeat(hb) => format!(
                "{id}  {}  heartbeat  {}  {}",
                utc(hb.time),
                pad(&hb.agent, 20),
                shorten(
                    &serde_json::Value::Object(hb.status.clone()).to_string(),
                    SHOWN_JSON
                ),
            ),
            Decoded::DeadLetter(letter) => format!(
                "{id}  {}  {}  {}  {}  {}  retries {}  error: {}",
                utc(letter.dead_at),
                pad(&letter.original_priority, 8),
                pad(&route(&letter.original_from, &letter.original_to), 20),
                pad(&letter.original_type, 8),
                letter.original_id,
                letter.retry_count,
                letter.error,
            ),
            Decoded::Raw { fields, error } => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("{k}={}", shorten(v, SHOWN_JSON)))
                    .collect();
                let what = match error {
                    Some(error) => format!("undecodable ({error})"),
                    None => "raw".to_owned(),
                };
                format!(
                    "{id}  {}  {what}: {}",
                    entry_time(&self.entry_id),
                    fields.join(" ")
                )
            }
        }
    }
}

/// `from -> to`, `*` standing for every agent.
pub fn route(from: &str, to: &str) -> String {
    format!("{from} -> {}", if to.is_empty() { "*" } else { to })
}

/// The kind of entries `stream` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// A priority stream of tasks.
    Tasks,
    /// `cortex:heartbeats`.
    Heartbeats,
    /// `cortex:tasks:dlq`.
    DeadLetters,
    /// Any other stream: shown raw.
    Other,
}

impl StreamKind {
    /// The kind of `stream`.
    pub fn of(stream: &str) -> Self {
        if Priority::from_stream(stream).is_some() {
            StreamKind::Tasks
        } else if stream == HEARTBEAT_STREAM {
            StreamKind::Heartbeats
        } else if stream == DLQ_STREAM {
            StreamKind::DeadLetters
        } else {
            StreamKind::Other
        }
    }
}

/// Decodes an entry's fields by its stream's kind, with cortex-shared's decoders of
/// byte-string fields (fields a decoder does not know are ignored, whatever bytes they
/// hold).
pub fn decode_fields(stream: &str, map: &std::collections::HashMap<String, Value>) -> Decoded {
    let pairs = || map_pairs(map);
    let decoded = match StreamKind::of(stream) {
        StreamKind::Tasks => TaskMessage::from_raw_fields(pairs()).map(Decoded::Task),
        StreamKind::Heartbeats => Heartbeat::from_raw_fields(pairs()).map(Decoded::Heartbeat),
        StreamKind::DeadLetters => {
            DeadLetter::from_raw_fields(pairs()).map(|l| Decoded::DeadLetter(Box::new(l)))
        }
        StreamKind::Other => {
            return Decoded::Raw {
                fields: text_map(map),
                error: None,
            }
        }
    };
    decoded.unwrap_or_else(|e| Decoded::Raw {
        fields: text_map(map),
        error: Some(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_id(id: &str, fields: &[(&str, &[u8])]) -> StreamId {
        StreamId {
            id: id.into(),
            map: fields
                .iter()
                .map(|(k, v)| (k.to_string(), Value::BulkString(v.to_vec())))
                .collect(),
            ..Default::default()
        }
    }

    const TASK: [(&str, &[u8]); 7] = [
        ("id", b"task-001"),
        ("from", b"harold"),
        ("to", b"pink"),
        ("priority", b"high"),
        ("type", b"coding"),
        ("payload", br#"{"description":"Fix auth bug"}"#),
        ("created", b"1704556800"),
    ];

    #[test]
    fn a_task_has_one_json_shape_and_one_line() {
        let entry = Entry::decode("cortex:tasks:high", &stream_id("1704556800000-0", &TASK));
        assert_eq!(
            entry.json(),
            json!({"stream":"cortex:tasks:high","entry_id":"1704556800000-0","kind":"task",
                   "data":{"id":"task-001","from":"harold","to":"pink","priority":"high",
                           "type":"coding","payload":{"description":"Fix auth bug"},
                           "created":1704556800}})
        );
        let line = entry.human();
        assert!(
            line.starts_with("1704556800000-0  2024-01-06 16:00:00  high "),
            "{line}"
        );
        assert!(line.contains("harold -> pink"), "{line}");
        assert!(
            line.ends_with(r#"task-001  {"description":"Fix auth bug"}"#),
            "{line}"
        );
    }

    #[test]
    fn an_undecodable_entry_is_raw_with_the_reason() {
        let mut fields = TASK.to_vec();
        fields[5] = ("payload", b"{broken");
        let entry = Entry::decode("cortex:tasks:high", &stream_id("5-0", &fields));
        let value = entry.json();
        assert_eq!(value["kind"], "raw");
        assert_eq!(value["data"]["payload"], "{broken");
        assert!(value["error"]
            .as_str()
            .unwrap()
            .starts_with("field `payload`: not valid JSON"));
        assert!(entry.human().contains("undecodable (field `payload`"));

        fields[5] = ("payload", b"\xff");
        let entry = Entry::decode("cortex:tasks:high", &stream_id("5-1", &fields));
        assert!(
            matches!(entry.decoded, Decoded::Raw { error: Some(ref e), .. }
            if e == "field `payload`: not UTF-8 text")
        );

        let other = Entry::decode("mystream", &stream_id("5-2", &[("k", b"v")]));
        assert_eq!(other.json()["kind"], "raw");
        assert!(other.json().get("error").is_none());
        assert!(other.human().ends_with("raw: k=v"));
    }

    #[test]
    fn heartbeats_and_dead_letters_decode_by_stream() {
        let hb = Entry::decode(
            HEARTBEAT_STREAM,
            &stream_id(
                "1-0",
                &[
                    ("agent", b"pink"),
                    ("time", b"1704556800"),
                    ("status", b"{}"),
                ],
            ),
        );
        assert_eq!(hb.json()["kind"], "heartbeat");
        assert_eq!(hb.json()["data"]["agent"], "pink");
        let letter = Entry::decode(
            DLQ_STREAM,
            &stream_id(
                "2-0",
                &[
                    ("original_id", b"failed-001"),
                    ("original_from", b"harold"),
                    ("original_to", b""),
                    ("original_priority", b"high"),
                    ("original_type", b"coding"),
                    ("original_payload", b"{}"),
                    ("original_created", b"1704556800"),
                    ("error", b"processing timeout"),
                    ("retry_count", b"3"),
                    ("dead_at", b"1704556900"),
                ],
            ),
        );
        assert_eq!(letter.json()["kind"], "dead_letter");
        assert_eq!(letter.json()["data"]["retry_count"], 3);
        let line = letter.human();
        assert!(line.contains("harold -> *"), "{line}");
        assert!(
            line.ends_with("retries 3  error: processing timeout"),
            "{line}"
        );
    }
}
