//! Reading `XINFO STREAM`, `XINFO GROUPS` and `XINFO CONSUMERS` replies (RESP2 flat
//! arrays or RESP3 maps), and stream entries' fields as text. Fields a server does
//! not send (Redis 7.2's `inactive`, Redis 7's `lag`) read as `None`.

use cortex_shared::rest::{ConsumerMetrics, GroupMetrics, StreamMetrics};
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};
use std::collections::{BTreeMap, HashMap};

/// The text of a reply value, if it is text or a number.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// An integer reply value (or text holding one).
pub(crate) fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        other => text(other)?.parse().ok(),
    }
}

/// A reply of name/value pairs (a flat array in RESP2, a map in RESP3), by name.
#[derive(Debug, Default)]
pub(crate) struct Pairs(HashMap<String, Value>);

impl Pairs {
    /// Reads `value` as pairs; anything else reads as no pairs.
    pub(crate) fn of(value: Value) -> Self {
        let mut map = HashMap::new();
        match value {
            Value::Array(items) => {
                let mut items = items.into_iter();
                while let (Some(k), Some(v)) = (items.next(), items.next()) {
                    if let Some(k) = text(&k) {
                        map.insert(k, v);
                    }
                }
            }
            Value::Map(pairs) => {
                for (k, v) in pairs {
                    if let Some(k) = text(&k) {
                        map.insert(k, v);
                    }
                }
            }
            _ => {}
        }
        Self(map)
    }

    pub(crate) fn text(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(text)
    }

    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        self.0.get(key).and_then(int)
    }

    /// A non-negative integer (`None` for absent, nil or negative: "never").
    pub(crate) fn count(&self, key: &str) -> Option<u64> {
        self.int(key).and_then(|i| u64::try_from(i).ok())
    }

    /// The id of an entry field such as `first-entry` (`[id, [fields…]]` or nil).
    pub(crate) fn entry_id(&self, key: &str) -> Option<String> {
        match self.0.get(key)? {
            Value::Array(items) => items.first().and_then(text),
            _ => None,
        }
    }
}

/// A stream entry's fields as text (values that are not UTF-8 are shown lossily).
pub(crate) fn entry_fields(map: &HashMap<String, Value>) -> BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| (k.clone(), text(v).unwrap_or_default()))
        .collect()
}

/// The list elements of an array reply.
pub(crate) fn items(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) | Value::Set(items) => items,
        _ => Vec::new(),
    }
}

/// The metrics of `streams`: `XINFO STREAM` and `XINFO GROUPS` for each, then `XINFO
/// CONSUMERS` per group, in two pipelines. A stream that does not exist (or is not a
/// stream) is left out.
pub(crate) async fn stream_metrics<C: ConnectionLike>(
    conn: &mut C,
    streams: &[String],
) -> RedisResult<Vec<StreamMetrics>> {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for stream in streams {
        pipe.cmd("XINFO").arg("STREAM").arg(stream);
        pipe.cmd("XINFO").arg("GROUPS").arg(stream);
    }
    let replies: Vec<RedisResult<Value>> = if streams.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(conn).await?
    };
    let mut out = Vec::new();
    let mut replies = replies.into_iter();
    for stream in streams {
        let (Some(info), Some(groups)) = (replies.next(), replies.next()) else {
            break;
        };
        // A stream deleted since it was found: skip it.
        let (Ok(info), groups) = (info, groups) else {
            continue;
        };
        let info = Pairs::of(info);
        let groups = groups.map(items).unwrap_or_default();
        out.push(StreamMetrics {
            stream: stream.clone(),
            length: info.count("length").unwrap_or(0),
            first_id: info.entry_id("first-entry"),
            last_id: info.entry_id("last-entry"),
            last_generated_id: info
                .text("last-generated-id")
                .unwrap_or_else(|| "0-0".into()),
            entries_added: info.count("entries-added"),
            groups: groups
                .into_iter()
                .map(|g| {
                    let g = Pairs::of(g);
                    GroupMetrics {
                        name: g.text("name").unwrap_or_default(),
                        pending: g.count("pending").unwrap_or(0),
                        lag: g.count("lag"),
                        last_delivered_id: g
                            .text("last-delivered-id")
                            .unwrap_or_else(|| "0-0".into()),
                        entries_read: g.count("entries-read"),
                        consumers: Vec::new(),
                    }
                })
                .collect(),
        });
    }

    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    let mut asked = 0;
    for s in &out {
        for g in &s.groups {
            pipe.cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&s.stream)
                .arg(&g.name);
            asked += 1;
        }
    }
    if asked == 0 {
        return Ok(out);
    }
    let replies: Vec<RedisResult<Value>> = pipe.query_async(conn).await?;
    let mut replies = replies.into_iter();
    for s in &mut out {
        for g in &mut s.groups {
            let Some(Ok(consumers)) = replies.next() else {
                continue;
            };
            g.consumers = items(consumers)
                .into_iter()
                .map(|c| {
                    let c = Pairs::of(c);
                    ConsumerMetrics {
                        name: c.text("name").unwrap_or_default(),
                        pending: c.count("pending").unwrap_or(0),
                        idle_ms: c.count("idle").unwrap_or(0),
                        inactive_ms: c.count("inactive"),
                    }
                })
                .collect();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn pairs_read_resp2_and_resp3_replies() {
        let resp2 = Value::Array(vec![
            bulk("name"),
            bulk("agent:pink"),
            bulk("pending"),
            Value::Int(2),
            bulk("lag"),
            Value::Nil,
            bulk("first-entry"),
            Value::Array(vec![bulk("5-0"), Value::Array(vec![])]),
        ]);
        let p = Pairs::of(resp2);
        assert_eq!(p.text("name").as_deref(), Some("agent:pink"));
        assert_eq!(p.count("pending"), Some(2));
        assert_eq!(p.count("lag"), None);
        assert_eq!(p.entry_id("first-entry").as_deref(), Some("5-0"));
        assert_eq!(p.count("missing"), None);

        let resp3 = Value::Map(vec![(bulk("inactive"), Value::Int(-1))]);
        assert_eq!(Pairs::of(resp3).count("inactive"), None);
        assert_eq!(int(&bulk("12")), Some(12));
    }
}
