//! Reads for watch resume and history (SPEC §3): what a stream holds now, its entries
//! read newest first, and the frames a watcher is sent for them.
//!
//! Read-only, like the live reader: `XINFO STREAM` and `XREVRANGE`, never a group, an
//! ack or a claim. The Redis side sits behind [`StreamSource`] so that the decisions
//! built on it (`ws::watch`) are unit-tested without a server.

use super::codec::{decode_heartbeat, decode_task};
use crate::ws::hub::Audience;
use cortex_shared::{EntryId, ServerFrame, HEARTBEAT_STREAM};
use redis::streams::StreamId;
use redis::{RedisResult, Value};
use std::collections::HashMap;
use std::future::Future;

/// What `XINFO STREAM` says about a stream, as far as resuming needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    /// Entries in the stream now.
    pub length: u64,
    /// The oldest entry still present; `None` when the stream is empty.
    pub first: Option<EntryId>,
    /// The newest entry still present; `None` when the stream is empty.
    pub last: Option<EntryId>,
    /// The newest id ever generated, present or not.
    pub last_generated: EntryId,
    /// The newest id removed by `XDEL` (Redis 7; `None` on older servers). Trimming
    /// (`XTRIM`, `XADD … MAXLEN`) does not move it.
    pub max_deleted: Option<EntryId>,
    /// How many entries were ever added (Redis 7; `None` on older servers). With
    /// `length` it tells whether anything was ever removed.
    pub entries_added: Option<u64>,
}

impl StreamInfo {
    /// How many entries were ever removed (trimmed or deleted), when the server says.
    pub fn removed(&self) -> Option<u64> {
        self.entries_added
            .map(|added| added.saturating_sub(self.length))
    }

    /// Whether entries after `after` may have been removed before a reader that had
    /// read up to `after` could see them.
    ///
    /// Never for a stream nothing was ever removed from (Redis 7 counts). Otherwise yes
    /// when an entry after `after` was deleted (`max-deleted-entry-id`), when `after`
    /// itself is older than every entry still present (the head was trimmed past it),
    /// or when the stream is empty although ids after `after` were generated. The one
    /// false alarm left: trimming that removed `after` and nothing newer, which ids
    /// alone cannot tell from trimming that removed more.
    pub fn lost_after(&self, after: EntryId) -> bool {
        if self.removed() == Some(0) {
            return false;
        }
        let deleted_after = self.max_deleted.is_some_and(|m| m > after);
        let trimmed_past = match self.first {
            Some(first) => first > after,
            None => self.last_generated > after,
        };
        deleted_after || trimmed_past
    }
}

/// The read-only stream commands resume and history need.
pub trait StreamSource {
    /// `XINFO STREAM`; `None` when the stream does not exist.
    fn info(
        &mut self,
        stream: &str,
    ) -> impl Future<Output = RedisResult<Option<StreamInfo>>> + Send;

    /// Up to `count` entries with `after < id <= up_to` (`after` `None`: from the
    /// beginning), newest first.
    fn newest_first(
        &mut self,
        stream: &str,
        up_to: EntryId,
        after: Option<EntryId>,
        count: usize,
    ) -> impl Future<Output = RedisResult<Vec<StreamId>>> + Send;
}

impl StreamSource for redis::aio::ConnectionManager {
    async fn info(&mut self, stream: &str) -> RedisResult<Option<StreamInfo>> {
        let reply: RedisResult<HashMap<String, Value>> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(stream)
            .query_async(self)
            .await;
        match reply {
            Ok(fields) => Ok(Some(parse_info(&fields))),
            Err(e) if is_no_such_key(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn newest_first(
        &mut self,
        stream: &str,
        up_to: EntryId,
        after: Option<EntryId>,
        count: usize,
    ) -> RedisResult<Vec<StreamId>> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let reply = redis::cmd("XREVRANGE")
            .arg(stream)
            .arg(up_to.to_string())
            .arg(start)
            .arg("COUNT")
            .arg(count)
            .query_async(self)
            .await?;
        Ok(super::reply::range(reply)?
            .into_iter()
            .map(super::reply::Entry::into_stream_id)
            .collect())
    }
}

fn is_no_such_key(e: &redis::RedisError) -> bool {
    e.to_string().to_ascii_lowercase().contains("no such key")
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn id_of(value: &Value) -> Option<EntryId> {
    text(value)?.parse().ok()
}

/// The id of `first-entry`/`last-entry`: `[id, [field, value, …]]`, or nil.
fn entry_id_of(value: &Value) -> Option<EntryId> {
    match value {
        Value::Array(items) => items.first().and_then(id_of),
        _ => None,
    }
}

fn number(value: &Value) -> Option<u64> {
    match value {
        Value::Int(i) => u64::try_from(*i).ok(),
        other => text(other)?.parse().ok(),
    }
}

/// `XINFO STREAM`'s reply (RESP2 pairs or a RESP3 map, both as a map here).
pub fn parse_info(fields: &HashMap<String, Value>) -> StreamInfo {
    StreamInfo {
        length: fields.get("length").and_then(number).unwrap_or(0),
        first: fields.get("first-entry").and_then(entry_id_of),
        last: fields.get("last-entry").and_then(entry_id_of),
        last_generated: fields
            .get("last-generated-id")
            .and_then(id_of)
            .unwrap_or_default(),
        max_deleted: fields.get("max-deleted-entry-id").and_then(id_of),
        entries_added: fields.get("entries-added").and_then(number),
    }
}

/// An entry of a watched stream as the frame the live reader sends for it, with who
/// may see it: the same JSON as live. `None` (logged) for an entry that does not
/// decode, which the live reader does not show either.
pub fn watch_frame(stream: &str, entry: &StreamId) -> Option<(EntryId, Audience, ServerFrame)> {
    let Ok(entry_id) = entry.id.parse::<EntryId>() else {
        tracing::warn!(stream, entry_id = %entry.id, "entry id Redis returned does not parse");
        return None;
    };
    if stream == HEARTBEAT_STREAM {
        return match decode_heartbeat(&entry.map) {
            Ok(hb) => Some((
                entry_id,
                Audience::HeartbeatOf(hb.agent.clone()),
                ServerFrame::Heartbeat {
                    agent: hb.agent,
                    status: hb.status,
                    time: hb.time,
                    entry_id: entry.id.clone(),
                },
            )),
            Err(e) => {
                tracing::warn!(stream, entry_id = %entry.id, error = %e, "malformed heartbeat not shown");
                None
            }
        };
    }
    match decode_task(&entry.map) {
        Ok(task) => Some((
            entry_id,
            Audience::TaskFor(task.to.clone()),
            ServerFrame::Task {
                data: task,
                stream: stream.to_owned(),
                entry_id: entry.id.clone(),
                delivery_count: None,
            },
        )),
        Err(e) => {
            tracing::warn!(stream, entry_id = %entry.id, error = %e, "malformed task not shown");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, fields: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: id.to_owned(),
            map: fields
                .iter()
                .map(|(k, v)| (k.to_string(), bulk(v)))
                .collect(),
            ..StreamId::default()
        }
    }

    fn id(s: &str) -> EntryId {
        s.parse().unwrap()
    }

    #[test]
    fn parses_xinfo_stream() {
        let fields: HashMap<String, Value> = [
            ("length", Value::Int(2)),
            ("last-generated-id", bulk("9-0")),
            ("max-deleted-entry-id", bulk("3-0")),
            ("entries-added", Value::Int(9)),
            (
                "first-entry",
                Value::Array(vec![bulk("5-0"), Value::Array(vec![bulk("a"), bulk("1")])]),
            ),
            (
                "last-entry",
                Value::Array(vec![bulk("9-0"), Value::Array(vec![])]),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let info = parse_info(&fields);
        assert_eq!(
            info,
            StreamInfo {
                length: 2,
                first: Some(id("5-0")),
                last: Some(id("9-0")),
                last_generated: id("9-0"),
                max_deleted: Some(id("3-0")),
                entries_added: Some(9),
            }
        );
        assert_eq!(info.removed(), Some(7));

        let empty: HashMap<String, Value> = [
            ("length", Value::Int(0)),
            ("last-generated-id", bulk("3-0")),
            ("first-entry", Value::Nil),
            ("last-entry", Value::Nil),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let info = parse_info(&empty);
        assert_eq!(
            (info.first, info.last, info.max_deleted),
            (None, None, None)
        );
    }

    #[test]
    fn losses_after_a_position() {
        let never_trimmed = StreamInfo {
            length: 3,
            first: Some(id("5-0")),
            last: Some(id("7-0")),
            last_generated: id("7-0"),
            max_deleted: Some(EntryId::ZERO),
            entries_added: Some(3),
        };
        // Whatever the position, nothing was ever removed.
        assert!(!never_trimmed.lost_after(EntryId::ZERO));
        assert!(!never_trimmed.lost_after(id("6-0")));

        let trimmed = StreamInfo {
            entries_added: Some(6),
            ..never_trimmed.clone()
        };
        assert!(
            trimmed.lost_after(id("2-0")),
            "the head was trimmed past it"
        );
        assert!(!trimmed.lost_after(id("5-0")), "still present");
        assert!(
            !trimmed.lost_after(id("7-0")),
            "the newest entry, nothing after"
        );

        let deleted_in_the_middle = StreamInfo {
            max_deleted: Some(id("6-5")),
            ..trimmed.clone()
        };
        assert!(deleted_in_the_middle.lost_after(id("6-0")));
        assert!(!deleted_in_the_middle.lost_after(id("6-5")));

        let emptied = StreamInfo {
            length: 0,
            first: None,
            last: None,
            ..trimmed.clone()
        };
        assert!(emptied.lost_after(id("6-0")));
        assert!(!emptied.lost_after(id("7-0")));

        // Redis 6: no counts; the head test alone.
        let old_server = StreamInfo {
            max_deleted: None,
            entries_added: None,
            ..trimmed
        };
        assert!(old_server.lost_after(id("2-0")));
        assert!(!old_server.lost_after(id("5-0")));
    }

    #[test]
    fn frames_are_the_live_readers() {
        let (entry_id, audience, frame) = watch_frame(
            "cortex:tasks:high",
            &entry(
                "1704556800000-0",
                &[
                    ("id", "task-001"),
                    ("from", "harold"),
                    ("to", "pink"),
                    ("priority", "high"),
                    ("type", "coding"),
                    ("payload", r#"{"description":"Fix auth bug"}"#),
                    ("created", "1704556800"),
                ],
            ),
        )
        .unwrap();
        assert_eq!(entry_id, id("1704556800000-0"));
        assert_eq!(audience, Audience::TaskFor("pink".into()));
        assert_eq!(
            serde_json::to_value(&frame).unwrap(),
            json!({"type":"task",
                   "data":{"id":"task-001","from":"harold","to":"pink","priority":"high",
                           "type":"coding","payload":{"description":"Fix auth bug"},
                           "created":1704556800},
                   "stream":"cortex:tasks:high","entry_id":"1704556800000-0"})
        );

        let (_, audience, frame) = watch_frame(
            HEARTBEAT_STREAM,
            &entry(
                "1704556800000-1",
                &[
                    ("agent", "pink"),
                    ("time", "1704556800"),
                    ("status", r#"{"state":"busy"}"#),
                ],
            ),
        )
        .unwrap();
        assert_eq!(audience, Audience::HeartbeatOf("pink".into()));
        assert_eq!(
            serde_json::to_value(&frame).unwrap(),
            json!({"type":"heartbeat","agent":"pink","status":{"state":"busy"},
                   "time":1704556800,"entry_id":"1704556800000-1"})
        );

        assert!(watch_frame("cortex:tasks:high", &entry("1-0", &[("to", "pink")])).is_none());
        assert!(watch_frame("cortex:tasks:high", &entry("nope", &[])).is_none());
    }
}
