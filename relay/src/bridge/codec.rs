//! Turns raw stream entries, as redis-rs returns them, into wire types.

use cortex_shared::entry::Problem;
use cortex_shared::{DecodeError, Heartbeat, TaskMessage};
use redis::Value;
use std::collections::HashMap;

/// An entry's fields as text. A value that is not UTF-8 text is an error when the field
/// is one the entry type reads (`known`), and is skipped otherwise, since readers ignore
/// fields they do not know.
fn text_fields(
    map: &HashMap<String, Value>,
    known: &[&'static str],
) -> Result<Vec<(String, String)>, DecodeError> {
    let mut fields = Vec::with_capacity(map.len());
    for (name, value) in map {
        let text = match value {
            Value::BulkString(bytes) => std::str::from_utf8(bytes).map(str::to_owned).ok(),
            Value::SimpleString(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        };
        match (text, known.iter().find(|k| **k == name)) {
            (Some(text), _) => fields.push((name.clone(), text)),
            (None, Some(field)) => return Err(DecodeError::new(field, Problem::NotUtf8)),
            (None, None) => {}
        }
    }
    Ok(fields)
}

fn pairs(fields: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

/// Decodes a task entry.
pub fn decode_task(map: &HashMap<String, Value>) -> Result<TaskMessage, DecodeError> {
    TaskMessage::from_fields(pairs(&text_fields(map, &TaskMessage::FIELDS)?))
}

/// Decodes a heartbeat entry.
pub fn decode_heartbeat(map: &HashMap<String, Value>) -> Result<Heartbeat, DecodeError> {
    Heartbeat::from_fields(pairs(&text_fields(map, &Heartbeat::FIELDS)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(fields: &[(&str, &[u8])]) -> HashMap<String, Value> {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::BulkString(v.to_vec())))
            .collect()
    }

    #[test]
    fn decodes_the_plans_task_entry() {
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
