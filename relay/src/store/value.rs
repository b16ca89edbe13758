//! Reply values as bytes, text and numbers: the one place the relay turns a Redis
//! [`Value`] into something else (every reader of replies uses these).

use redis::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

/// A reply value's bytes, if it is a string.
pub(crate) fn bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

/// A reply value as text: a string (each invalid UTF-8 sequence replaced by U+FFFD;
/// borrowed when there is none), or an integer in decimal; `None` for anything else
/// (nil, arrays, maps, …).
pub(crate) fn text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Int(i) => Some(Cow::Owned(i.to_string())),
        other => bytes(other).map(String::from_utf8_lossy),
    }
}

/// An integer reply value, or text holding one.
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

/// The elements of an array (or set) reply; anything else has none.
pub(crate) fn items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => Vec::new(),
    }
}

/// An entry's fields, from a map of them, as byte strings (values that are not strings,
/// which stream replies never hold, are left out).
pub(crate) fn map_pairs(map: &HashMap<String, Value>) -> impl Iterator<Item = (&[u8], &[u8])> {
    map.iter()
        .filter_map(|(name, value)| Some((name.as_bytes(), bytes(value)?)))
}

/// An entry's fields, from a map of them, as text, to show them raw.
pub(crate) fn text_map(map: &HashMap<String, Value>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(name, value)| (name.clone(), text(value).unwrap_or_default().into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_read_as_text_others_do_not() {
        let bulk = Value::BulkString(b"pink".to_vec());
        assert!(matches!(text(&bulk), Some(Cow::Borrowed("pink"))));
        assert_eq!(
            text(&Value::SimpleString("OK".into())).as_deref(),
            Some("OK")
        );
        let verbatim = Value::VerbatimString {
            format: redis::VerbatimFormat::Text,
            text: "v".into(),
        };
        assert_eq!(text(&verbatim).as_deref(), Some("v"));
        assert_eq!(text(&Value::Int(-3)).as_deref(), Some("-3"));
        assert_eq!(
            text(&Value::BulkString(b"a\xffb".to_vec())).as_deref(),
            Some("a\u{fffd}b")
        );
        assert_eq!(text(&Value::Nil), None);
        assert_eq!(text(&Value::Array(vec![])), None);
        assert_eq!(bytes(&Value::BulkString(vec![0xff])), Some(&[0xff][..]));
        assert_eq!(bytes(&Value::Int(1)), None);
        assert_eq!(int(&Value::BulkString(b"12".to_vec())), Some(12));
        assert_eq!(int(&Value::Int(7)), Some(7));
        assert_eq!(int(&Value::Nil), None);
        assert_eq!(items(Value::Array(vec![Value::Nil])).len(), 1);
        assert!(items(Value::Nil).is_empty());
    }
}
