//! Stream read replies (`XREAD`, `XREADGROUP`) taken apart as Redis sent them.
//!
//! redis-rs's `StreamReadReply` clones the reply and builds a map per entry; the
//! consumer and the watch reader walk the reply they own instead, and build a map
//! only for an entry somebody will be shown (a third of the relay's work per consumed
//! task went to those maps).

use redis::streams::StreamId;
use redis::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// One entry of a read: its id and its fields as Redis sent them (name, value, name,
/// value, …); `None` when it was deleted from the stream while pending.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) fields: Option<Vec<Value>>,
}

impl Entry {
    /// The value of field `name` (the last, if repeated, as in a map built from them).
    pub(crate) fn field(&self, name: &str) -> Option<&Value> {
        self.fields
            .as_deref()
            .unwrap_or_default()
            .chunks_exact(2)
            .rev()
            .find(|pair| text(&pair[0]).is_some_and(|n| n == name))
            .map(|pair| &pair[1])
    }

    /// The entry as redis-rs's `StreamId` (its fields in a map), for code shared with
    /// the other reads.
    pub(crate) fn into_stream_id(self) -> StreamId {
        let mut map = HashMap::new();
        let mut fields = self.fields.unwrap_or_default().into_iter();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            if let Some(name) = text(&name) {
                map.insert(name.into_owned(), value);
            }
        }
        StreamId {
            id: self.id,
            map,
            ..StreamId::default()
        }
    }
}

impl From<StreamId> for Entry {
    fn from(entry: StreamId) -> Self {
        let fields = (!entry.map.is_empty()).then(|| {
            entry
                .map
                .into_iter()
                .flat_map(|(name, value)| [Value::BulkString(name.into_bytes()), value])
                .collect()
        });
        Self {
            id: entry.id,
            fields,
        }
    }
}

/// The entries of a read reply (`nil`, or per stream its name and entries; a map under
/// RESP3), each with its stream's static name from `stream_of`; streams it does not
/// know are skipped.
pub(crate) fn entries(
    reply: Value,
    stream_of: impl Fn(&str) -> Option<&'static str>,
) -> redis::RedisResult<Vec<(&'static str, Entry)>> {
    let unexpected = || {
        redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "unexpected stream read reply",
        ))
    };
    let streams: Vec<(Value, Value)> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(streams) => streams,
        Value::Array(streams) => streams
            .into_iter()
            .map(|stream| match stream {
                Value::Array(pair) => two(pair).ok_or_else(unexpected),
                _ => Err(unexpected()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(unexpected()),
    };
    let mut out = Vec::new();
    for (name, ids) in streams {
        let Some(stream) = text(&name).and_then(|name| stream_of(&name)) else {
            continue;
        };
        let ids = match ids {
            Value::Array(ids) => ids,
            Value::Nil => continue,
            _ => return Err(unexpected()),
        };
        out.reserve(ids.len());
        for entry in ids {
            let Value::Array(pair) = entry else {
                return Err(unexpected());
            };
            let (id, fields) = two(pair).ok_or_else(unexpected)?;
            let id = text(&id).ok_or_else(unexpected)?.into_owned();
            let fields = match fields {
                Value::Array(fields) => Some(fields),
                Value::Map(fields) => Some(fields.into_iter().flat_map(|(k, v)| [k, v]).collect()),
                Value::Nil => None,
                _ => return Err(unexpected()),
            };
            out.push((stream, Entry { id, fields }));
        }
    }
    Ok(out)
}

/// The two items of a two-item array.
fn two(pair: Vec<Value>) -> Option<(Value, Value)> {
    let mut pair = pair.into_iter();
    match (pair.next(), pair.next(), pair.next()) {
        (Some(a), Some(b), None) => Some((a, b)),
        _ => None,
    }
}

/// A reply value as text, borrowed where it can be; `None` if it is not text.
pub(crate) fn text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok().map(Cow::Borrowed),
        Value::SimpleString(s) => Some(Cow::Borrowed(s)),
        Value::Int(i) => Some(Cow::Owned(i.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn fields_read_as_a_map_of_them_would() {
        let entry = Entry {
            id: "5-0".into(),
            fields: Some(vec![
                bulk("to"),
                bulk("pink"),
                Value::BulkString(vec![0xff]),
                bulk("odd name"),
                bulk("to"),
                bulk("harold"),
            ]),
        };
        assert_eq!(entry.field("to"), Some(&bulk("harold")));
        assert_eq!(entry.field("from"), None);
        let id = entry.into_stream_id();
        assert_eq!(id.id, "5-0");
        assert_eq!(id.map.len(), 1, "{:?}", id.map);
        assert_eq!(id.get::<String>("to").as_deref(), Some("harold"));
        let gone = Entry {
            id: "6-0".into(),
            fields: None,
        };
        assert_eq!(gone.field("to"), None);
        assert!(gone.into_stream_id().map.is_empty());
    }

    #[test]
    fn unknown_streams_are_skipped() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("known"),
                Value::Array(vec![Value::Array(vec![bulk("1-0"), Value::Array(vec![])])]),
            ]),
            Value::Array(vec![
                bulk("unknown"),
                Value::Array(vec![Value::Array(vec![bulk("2-0"), Value::Array(vec![])])]),
            ]),
        ]);
        let got = entries(reply, |name| (name == "known").then_some("known")).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1.id.as_str()), ("known", "1-0"));
    }
}
