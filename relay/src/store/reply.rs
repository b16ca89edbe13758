//! Stream replies (`XREAD`, `XREADGROUP`, `XRANGE`, `XREVRANGE`, `XCLAIM`,
//! `XAUTOCLAIM`) taken apart as Redis sent them.
//!
//! redis-rs's typed replies (`StreamReadReply`, `StreamRangeReply`,
//! `StreamAutoClaimReply`, …) fail as a whole when one field *name* of one entry is not
//! UTF-8, so one such entry would stall every read that returns it. Every reader of
//! entries in the relay walks the reply as [`Value`]s instead: field names and values
//! stay bytes, and each decoder ignores the fields it does not know whatever bytes they
//! hold. It also spares a map per entry (a third of the relay's work per consumed task
//! went to those maps); one is built only for an entry somebody will be shown.

pub(crate) use super::value::{bytes, text};
use redis::streams::StreamId;
use redis::Value;
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
            .find(|pair| bytes(&pair[0]) == Some(name.as_bytes()))
            .map(|pair| &pair[1])
    }

    /// Its fields as byte strings, in the order Redis sent them (values that are not
    /// strings, which stream replies never hold, are left out).
    pub(crate) fn raw_fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        raw_pairs(self.fields.as_deref().unwrap_or_default())
    }

    /// The entry as redis-rs's `StreamId` (its fields in a map; those whose name is not
    /// UTF-8, which no decoder reads, are left out), for code shared with the other
    /// reads.
    pub(crate) fn into_stream_id(self) -> StreamId {
        let mut map = HashMap::new();
        let mut fields = self.fields.unwrap_or_default().into_iter();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            if let Some(name) = bytes(&name).and_then(|name| std::str::from_utf8(name).ok()) {
                map.insert(name.to_owned(), value);
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
/// RESP3), each with what `stream_of` makes of its stream's name (its static name, or
/// its priority); streams it does not know are skipped.
pub(crate) fn entries<S: Copy>(
    reply: Value,
    stream_of: impl Fn(&str) -> Option<S>,
) -> redis::RedisResult<Vec<(S, Entry)>> {
    let bad = || unexpected("unexpected stream read reply");
    let streams: Vec<(Value, Value)> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(streams) => streams,
        Value::Array(streams) => streams
            .into_iter()
            .map(|stream| match stream {
                Value::Array(pair) => two(pair).ok_or_else(bad),
                _ => Err(bad()),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    let mut out = Vec::new();
    for (name, ids) in streams {
        let Some(stream) = text(&name).and_then(|name| stream_of(&name)) else {
            continue;
        };
        let ids = match ids {
            Value::Array(ids) => ids,
            Value::Nil => continue,
            _ => return Err(bad()),
        };
        out.reserve(ids.len());
        for entry in ids {
            if let Some(entry) = entry_of(entry)? {
                out.push((stream, entry));
            }
        }
    }
    Ok(out)
}

/// The entries of an `XRANGE`, `XREVRANGE` or `XCLAIM` reply (`[[id, [field, value,
/// …]], …]`), in its order. A nil in place of an entry (what `XCLAIM` before Redis 7
/// returned for an entry deleted while pending) is skipped.
pub(crate) fn range(reply: Value) -> redis::RedisResult<Vec<Entry>> {
    let entries = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(entries) => entries,
        _ => return Err(unexpected("unexpected stream range reply")),
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        if let Some(entry) = entry_of(entry)? {
            out.push(entry);
        }
    }
    Ok(out)
}

/// An `XAUTOCLAIM` reply: the cursor to go on from (`0-0` when the scan is done), and
/// the entries claimed. (Redis 7 adds the ids of entries deleted while pending, which
/// it has dropped from the pending list itself: nothing is left to do for them.)
#[derive(Debug)]
pub(crate) struct AutoClaim {
    pub(crate) next: String,
    pub(crate) claimed: Vec<Entry>,
    /// Entry id → the consumer that held it before the claim, where known.
    pub(crate) from: HashMap<String, String>,
}

/// Takes an `XAUTOCLAIM` reply apart (see [`AutoClaim`]).
pub(crate) fn autoclaim(reply: Value) -> redis::RedisResult<AutoClaim> {
    let Value::Array(parts) = reply else {
        return Err(unexpected("unexpected XAUTOCLAIM reply"));
    };
    let mut parts = parts.into_iter();
    let next = parts
        .next()
        .as_ref()
        .and_then(text)
        .ok_or_else(|| unexpected("XAUTOCLAIM reply without a cursor"))?
        .into_owned();
    let claimed = range(parts.next().unwrap_or(Value::Nil))?;
    Ok(AutoClaim {
        next,
        claimed,
        from: HashMap::new(),
    })
}

/// The owners in an extended `XPENDING` reply (`[[id, consumer, idle, deliveries],
/// …]`): entry id → consumer. Anything else in it is skipped.
pub(crate) fn pending_owners(reply: &Value) -> HashMap<String, String> {
    let Value::Array(items) = reply else {
        return HashMap::new();
    };
    items
        .iter()
        .filter_map(|item| match item {
            Value::Array(parts) if parts.len() >= 2 => {
                Some((text(&parts[0])?.into_owned(), text(&parts[1])?.into_owned()))
            }
            _ => None,
        })
        .collect()
}

fn unexpected(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, what))
}

/// One entry of a reply: `[id, fields]` (fields nil: deleted while pending); `None`
/// for a nil in its place.
fn entry_of(entry: Value) -> redis::RedisResult<Option<Entry>> {
    let bad = || unexpected("unexpected stream entry");
    let pair = match entry {
        Value::Array(pair) => pair,
        Value::Nil => return Ok(None),
        _ => return Err(bad()),
    };
    let (id, fields) = two(pair).ok_or_else(bad)?;
    let id = text(&id).ok_or_else(bad)?.into_owned();
    let fields = match fields {
        Value::Array(fields) => Some(fields),
        Value::Map(fields) => Some(fields.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Value::Nil => None,
        _ => return Err(bad()),
    };
    Ok(Some(Entry { id, fields }))
}

/// Field/value pairs (`[name, value, name, value, …]`) as byte strings; a pair whose
/// name or value is not a string is left out.
pub(crate) fn raw_pairs(fields: &[Value]) -> impl Iterator<Item = (&[u8], &[u8])> {
    fields
        .chunks_exact(2)
        .filter_map(|pair| Some((bytes(&pair[0])?, bytes(&pair[1])?)))
}

/// The two items of a two-item array.
fn two(pair: Vec<Value>) -> Option<(Value, Value)> {
    let mut pair = pair.into_iter();
    match (pair.next(), pair.next(), pair.next()) {
        (Some(a), Some(b), None) => Some((a, b)),
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

    /// Property tests of the walker and the codec: any reply never panics; entries
    /// come out as they went in, field names and values as bytes; decoding through
    /// the walker, through a map, or by cortex-shared gives the same answer.
    mod properties {
        use super::*;
        use crate::store::codec::decode_task;
        use cortex_shared::TaskMessage;
        use proptest::collection::vec;
        use proptest::prelude::*;

        fn any_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Nil),
                any::<i64>().prop_map(Value::Int),
                vec(any::<u8>(), 0..16).prop_map(Value::BulkString),
                "[ -~]{0,8}".prop_map(Value::SimpleString),
                Just(Value::Okay),
            ];
            leaf.prop_recursive(4, 64, 8, |inner| {
                prop_oneof![
                    vec(inner.clone(), 0..8).prop_map(Value::Array),
                    vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
                ]
            })
        }

        fn field_name() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                proptest::sample::select(TaskMessage::FIELDS.to_vec())
                    .prop_map(|f| f.as_bytes().to_vec()),
                vec(any::<u8>(), 0..10),
            ]
        }

        fn field_value() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                Just(b"pink".to_vec()),
                Just(b"high".to_vec()),
                Just(b"{}".to_vec()),
                Just(b"17".to_vec()),
                vec(any::<u8>(), 0..10),
            ]
        }

        type Fields = Vec<(Vec<u8>, Vec<u8>)>;

        fn entries_in() -> impl Strategy<Value = Vec<(u64, Option<Fields>)>> {
            vec(
                (
                    any::<u64>(),
                    proptest::option::of(vec((field_name(), field_value()), 0..12)),
                ),
                0..8,
            )
        }

        fn reply_of(entries: &[(u64, Option<Fields>)]) -> Value {
            Value::Array(
                entries
                    .iter()
                    .map(|(ms, fields)| {
                        let fields = match fields {
                            Some(fields) => Value::Array(
                                fields
                                    .iter()
                                    .flat_map(|(k, v)| {
                                        [Value::BulkString(k.clone()), Value::BulkString(v.clone())]
                                    })
                                    .collect(),
                            ),
                            None => Value::Nil,
                        };
                        Value::Array(vec![bulk(&format!("{ms}-0")), fields])
                    })
                    .collect(),
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_reply_is_walked_or_refused_without_a_panic(reply in any_value()) {
                let _ = range(reply.clone());
                let _ = autoclaim(reply.clone());
                let _ = entries(reply, |name| (name == "s").then_some("s"));
            }

            #[test]
            fn range_entries_come_out_as_they_went_in(input in entries_in()) {
                let got = range(reply_of(&input)).unwrap();
                prop_assert_eq!(got.len(), input.len());
                for (entry, (ms, fields)) in got.iter().zip(&input) {
                    prop_assert_eq!(&entry.id, &format!("{ms}-0"));
                    let raw: Option<Fields> = entry
                        .fields
                        .as_ref()
                        .map(|_| entry.raw_fields().map(|(k, v)| (k.to_vec(), v.to_vec())).collect());
                    prop_assert_eq!(&raw, fields);
                }
                // XAUTOCLAIM's reply holds the same entries after its cursor (and, from
                // Redis 7, the ids of deleted ones).
                let claim = Value::Array(vec![bulk("0-0"), reply_of(&input), Value::Array(vec![])]);
                let claim = autoclaim(claim).unwrap();
                prop_assert_eq!(claim.next, "0-0");
                prop_assert_eq!(claim.claimed.len(), input.len());
            }

            #[test]
            fn a_task_decodes_the_same_by_walker_map_and_cortex_shared(
                fields in vec((field_name(), field_value()), 0..16),
            ) {
                let values: Vec<Value> = fields
                    .iter()
                    .flat_map(|(k, v)| [Value::BulkString(k.clone()), Value::BulkString(v.clone())])
                    .collect();
                let entry = Entry { id: "1-0".into(), fields: Some(values) };
                let by_shared = TaskMessage::from_raw_fields(
                    fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
                );
                let by_walker = TaskMessage::from_raw_fields(entry.raw_fields());
                let by_map = decode_task(&entry.into_stream_id().map);
                prop_assert_eq!(&by_walker, &by_shared);
                prop_assert_eq!(&by_map, &by_shared);
            }
        }
    }
}
