//! Turns raw stream entries, as redis-rs returns them, into wire types (with
//! cortex-shared's decoders of byte-string fields: a field whose name is not UTF-8, or
//! any other field a decoder does not know, is ignored; a known field whose value is
//! not UTF-8 is [`Problem::NotUtf8`](cortex_shared::entry::Problem::NotUtf8)).

use super::value::map_pairs as pairs;
use cortex_shared::{DecodeError, Heartbeat, TaskMessage};
use redis::Value;
use std::collections::HashMap;

/// Decodes a task entry.
pub(crate) fn decode_task(map: &HashMap<String, Value>) -> Result<TaskMessage, DecodeError> {
    TaskMessage::from_raw_fields(pairs(map))
}

/// Decodes a task from an entry's fields as Redis sent them, without copying them
/// (see [`TaskMessage::from_raw_fields`]).
pub(crate) fn decode_task_fields(fields: &[Value]) -> Result<TaskMessage, DecodeError> {
    TaskMessage::from_raw_fields(super::reply::raw_pairs(fields))
}

/// Decodes a heartbeat entry.
pub(crate) fn decode_heartbeat(map: &HashMap<String, Value>) -> Result<Heartbeat, DecodeError> {
    Heartbeat::from_raw_fields(pairs(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::entry::Problem;

    fn map(fields: &[(&str, &[u8])]) -> HashMap<String, Value> {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::BulkString(v.to_vec())))
            .collect()
    }

    #[test]
    fn decodes_the_original_task_entry() {
        let task = decode_task(&map(&[
            ("id", b"task-001"),
            ("from", b"harold"),
            ("to", b"pink"),
            ("priority", b"high"),
            ("type", b"coding"),
            ("payload", br#"{"description":"Fix auth bug"}"#),
            ("created", b"1704556800"),
            ("extra", b"\xff\xfe"),
        ]))
        .unwrap();
        assert_eq!(task.id, "task-001");
        assert_eq!(task.payload["description"], "Fix auth bug");
    }

    #[test]
    fn non_utf8_in_a_known_field_is_named() {
        let err = decode_heartbeat(&map(&[
            ("agent", b"pink"),
            ("time", b"1"),
            ("status", b"\xff"),
        ]))
        .unwrap_err();
        assert_eq!(err, DecodeError::new("status", Problem::NotUtf8));
    }
}
