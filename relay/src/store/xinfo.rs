//! `XINFO STREAM`, `XINFO GROUPS` and `XINFO CONSUMERS`: the commands, and their
//! replies read once (RESP2 flat arrays or RESP3 maps) for everyone who needs them:
//! resume's [`StreamInfo`], the metrics' [`StreamMetrics`], the trimmer's groups.
//! Fields a server does not send (Redis 7.2's `inactive`, Redis 7's `lag`,
//! `entries-added`, `max-deleted-entry-id`) read as `None`.

use super::value::{int, items, text};
use cortex_shared::rest::{ConsumerMetrics, GroupMetrics, StreamMetrics};
use cortex_shared::EntryId;
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};
use std::collections::HashMap;

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
                        map.insert(k.into_owned(), v);
                    }
                }
            }
            Value::Map(pairs) => {
                for (k, v) in pairs {
                    if let Some(k) = text(&k) {
                        map.insert(k.into_owned(), v);
                    }
                }
            }
            _ => {}
        }
        Self(map)
    }

    pub(crate) fn text(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(text).map(|t| t.into_owned())
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
            Value::Array(items) => items.first().and_then(text).map(|t| t.into_owned()),
            _ => None,
        }
    }

    /// An entry id field, parsed.
    fn id(&self, key: &str) -> Option<EntryId> {
        self.text(key)?.parse().ok()
    }
}

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
    /// An `XINFO STREAM` reply.
    pub(crate) fn of(info: &Pairs) -> Self {
        Self {
            length: info.count("length").unwrap_or(0),
            first: info.entry_id("first-entry").and_then(|id| id.parse().ok()),
            last: info.entry_id("last-entry").and_then(|id| id.parse().ok()),
            last_generated: info.id("last-generated-id").unwrap_or_default(),
            max_deleted: info.id("max-deleted-entry-id"),
            entries_added: info.count("entries-added"),
        }
    }

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

/// `XINFO STREAM stream`; `None` when the stream does not exist.
pub(crate) async fn stream_info<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
) -> RedisResult<Option<StreamInfo>> {
    let reply: RedisResult<Value> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(stream)
        .query_async(conn)
        .await;
    match reply {
        Ok(info) => Ok(Some(StreamInfo::of(&Pairs::of(info)))),
        Err(e) if e.to_string().to_ascii_lowercase().contains("no such key") => Ok(None),
        Err(e) => Err(e),
    }
}

/// One group of an `XINFO GROUPS` reply (its consumers left empty).
fn group_of(group: Value) -> GroupMetrics {
    let g = Pairs::of(group);
    GroupMetrics {
        name: g.text("name").unwrap_or_default(),
        pending: g.count("pending").unwrap_or(0),
        lag: g.count("lag"),
        last_delivered_id: g.text("last-delivered-id").unwrap_or_else(|| "0-0".into()),
        entries_read: g.count("entries-read"),
        consumers: Vec::new(),
    }
}

/// `XINFO GROUPS stream`: its groups, without their consumers.
pub(crate) async fn groups<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
) -> RedisResult<Vec<GroupMetrics>> {
    let reply: Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await?;
    Ok(items(reply).into_iter().map(group_of).collect())
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
            groups: groups.into_iter().map(group_of).collect(),
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
    }

    fn id(s: &str) -> EntryId {
        s.parse().unwrap()
    }

    #[test]
    fn parses_xinfo_stream() {
        let reply = Value::Array(vec![
            bulk("length"),
            Value::Int(2),
            bulk("last-generated-id"),
            bulk("9-0"),
            bulk("max-deleted-entry-id"),
            bulk("3-0"),
            bulk("entries-added"),
            Value::Int(9),
            bulk("first-entry"),
            Value::Array(vec![bulk("5-0"), Value::Array(vec![bulk("a"), bulk("1")])]),
            bulk("last-entry"),
            Value::Array(vec![bulk("9-0"), Value::Array(vec![])]),
        ]);
        let info = StreamInfo::of(&Pairs::of(reply));
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

        // RESP3, an empty stream of a Redis before 7.
        let empty = Value::Map(vec![
            (bulk("length"), Value::Int(0)),
            (bulk("last-generated-id"), bulk("3-0")),
            (bulk("first-entry"), Value::Nil),
            (bulk("last-entry"), Value::Nil),
        ]);
        let info = StreamInfo::of(&Pairs::of(empty));
        assert_eq!(
            (info.first, info.last, info.max_deleted, info.entries_added),
            (None, None, None, None)
        );
        assert_eq!(info.last_generated, id("3-0"));
    }

    #[test]
    fn groups_read_as_the_metrics_show_them() {
        let group = Value::Array(vec![
            bulk("name"),
            bulk("agent:pink"),
            bulk("consumers"),
            Value::Int(1),
            bulk("pending"),
            Value::Int(3),
            bulk("last-delivered-id"),
            bulk("7-1"),
        ]);
        let g = group_of(group);
        assert_eq!(
            (g.name.as_str(), g.pending, g.last_delivered_id.as_str()),
            ("agent:pink", 3, "7-1")
        );
        assert_eq!((g.lag, g.entries_read), (None, None));
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
}
