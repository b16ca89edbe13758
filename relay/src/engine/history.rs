//! Watch resume and history (README, "WebSocket protocol"): the frames a watcher is
//! sent for the entries a read returns, the same as the live reader's.
//!
//! The reads themselves are read-only, like the live reader (`XINFO STREAM` and
//! `XREVRANGE`, never a group, an ack or a claim), behind
//! [`StreamSource`](crate::store::streams::StreamSource) so that the decisions built on
//! them (`ws::watch`) are unit-tested without a server.

use crate::engine::hub::Audience;
use crate::store::codec::{decode_heartbeat, decode_task};
use cortex_shared::{EntryId, ServerFrame, HEARTBEAT_STREAM};
use redis::streams::StreamId;

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

    fn bulk(s: &str) -> redis::Value {
        redis::Value::BulkString(s.as_bytes().to_vec())
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
