//! Replay: `GET /api/v1/streams/{stream}/entries`, the entries of one cortex stream by
//! id range, time range, or the newest N, decoded by the stream's kind; an entry that
//! does not decode comes with its raw fields and the reason.

use super::{ApiPath, ApiQuery};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::codec::{decode_heartbeat, decode_task};
use crate::store::keys::{self, DLQ, HEARTBEATS};
use crate::store::reply::Entry;
use crate::store::streams::{xrange, xrevrange};
use crate::store::value::text_map;
use axum::extract::State;
use axum::Json;
use cortex_shared::rest::{ReplayEntry, ReplayPage, ReplayQuery};
use cortex_shared::{DeadLetter, EntryId};
use redis::streams::StreamId;

/// Entries per page by default, and at most.
const DEFAULT_COUNT: usize = 100;
const MAX_COUNT: usize = 1_000;

/// The streams replay serves: the four task streams, heartbeats, the DLQ.
pub fn replayable() -> Vec<&'static str> {
    let mut streams = keys::task_streams().to_vec();
    streams.push(HEARTBEATS);
    streams.push(DLQ);
    streams
}

/// The range a [`ReplayQuery`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    /// `XRANGE start end COUNT count`.
    Between {
        start: EntryId,
        end: EntryId,
        count: usize,
    },
    /// The newest `n`.
    Last(usize),
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

fn entry_id(name: &str, text: &str) -> Result<EntryId, ApiError> {
    text.parse::<EntryId>().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("{name} {text:?} is not a stream entry id (<milliseconds>-<sequence>)"),
        )
    })
}

fn range(q: &ReplayQuery) -> Result<Range, ApiError> {
    let by_id = q.start.is_some() || q.end.is_some();
    let by_time = q.since_ms.is_some() || q.until_ms.is_some();
    if let Some(last) = q.last {
        if by_id || by_time || q.count.is_some() {
            return Err(bad(
                "last cannot be combined with start, end, since_ms, until_ms or count",
            ));
        }
        if !(1..=MAX_COUNT).contains(&last) {
            return Err(bad(format!("last must be 1 to {MAX_COUNT}, not {last}")));
        }
        return Ok(Range::Last(last));
    }
    if by_id && by_time {
        return Err(bad(
            "give an id range (start, end) or a time range (since_ms, until_ms), not both",
        ));
    }
    let count = q.count.unwrap_or(DEFAULT_COUNT);
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(bad(format!("count must be 1 to {MAX_COUNT}, not {count}")));
    }
    let (start, end) = if by_time {
        (
            EntryId::new(q.since_ms.unwrap_or(0), 0),
            EntryId::new(q.until_ms.unwrap_or(u64::MAX), u64::MAX),
        )
    } else {
        (
            q.start
                .as_deref()
                .map_or(Ok(EntryId::ZERO), |s| entry_id("start", s))?,
            q.end
                .as_deref()
                .map_or(Ok(EntryId::new(u64::MAX, u64::MAX)), |e| entry_id("end", e))?,
        )
    };
    if start > end {
        return Err(bad(format!(
            "the range is backwards: {start} is after {end}"
        )));
    }
    Ok(Range::Between { start, end, count })
}

/// One entry of `stream`, decoded by the stream's kind.
fn replay_entry(stream: &str, entry: &StreamId) -> ReplayEntry {
    let mut out = ReplayEntry {
        entry_id: entry.id.clone(),
        task: None,
        heartbeat: None,
        letter: None,
        raw: None,
        error: None,
    };
    let decoded = if stream == HEARTBEATS {
        decode_heartbeat(&entry.map).map(|h| out.heartbeat = Some(h))
    } else if stream == DLQ {
        let fields = text_map(&entry.map);
        DeadLetter::from_fields(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map(|l| out.letter = Some(l))
    } else {
        decode_task(&entry.map).map(|t| out.task = Some(t))
    };
    if let Err(e) = decoded {
        out.raw = Some(text_map(&entry.map));
        out.error = Some(e.to_string());
    }
    out
}

/// The id right after `id`.
fn after(id: EntryId) -> Option<EntryId> {
    match id.seq.checked_add(1) {
        Some(seq) => Some(EntryId::new(id.ms, seq)),
        None => id.ms.checked_add(1).map(|ms| EntryId::new(ms, 0)),
    }
}

/// `GET /api/v1/streams/{stream}/entries`.
pub async fn entries(
    State(state): State<AppState>,
    ApiPath(stream): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReplayQuery>,
) -> Result<Json<ReplayPage>, ApiError> {
    let Some(stream) = replayable().into_iter().find(|s| *s == stream) else {
        return Err(ApiError::not_found(
            "unknown_stream",
            format!(
                "{stream:?} is not a cortex stream; replayable streams are {}",
                replayable().join(", ")
            ),
        ));
    };
    let range = range(&query)?;
    let mut conn = state.services.redis.clone();
    let (entries, next_start) = match range {
        Range::Last(n) => {
            let mut ids = xrevrange(&mut conn, stream, "+", "-", n as u64).await?;
            ids.reverse();
            (ids, None)
        }
        Range::Between { start, end, count } => {
            // One more than asked tells whether the range holds more.
            let mut ids = xrange(
                &mut conn,
                stream,
                &start.to_string(),
                &end.to_string(),
                Some(count as u64 + 1),
            )
            .await?;
            let next = if ids.len() > count {
                ids.truncate(count);
                ids.last()
                    .and_then(|e| e.id.parse::<EntryId>().ok())
                    .and_then(after)
                    .map(|id| id.to_string())
            } else {
                None
            };
            (ids, next)
        }
    };
    Ok(Json(ReplayPage {
        stream: stream.to_owned(),
        entries: entries
            .into_iter()
            .map(|e| replay_entry(stream, &Entry::into_stream_id(e)))
            .collect(),
        next_start,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(f: impl FnOnce(&mut ReplayQuery)) -> ReplayQuery {
        let mut q = ReplayQuery::default();
        f(&mut q);
        q
    }

    #[test]
    fn ranges_by_id_time_or_last() {
        assert_eq!(
            range(&ReplayQuery::default()).unwrap(),
            Range::Between {
                start: EntryId::ZERO,
                end: EntryId::new(u64::MAX, u64::MAX),
                count: 100
            }
        );
        assert_eq!(
            range(&q(|q| {
                q.since_ms = Some(5);
                q.until_ms = Some(9);
                q.count = Some(3);
            }))
            .unwrap(),
            Range::Between {
                start: EntryId::new(5, 0),
                end: EntryId::new(9, u64::MAX),
                count: 3
            }
        );
        assert_eq!(
            range(&q(|q| q.start = Some("7-1".into()))).unwrap(),
            Range::Between {
                start: EntryId::new(7, 1),
                end: EntryId::new(u64::MAX, u64::MAX),
                count: 100
            }
        );
        assert_eq!(range(&q(|q| q.last = Some(20))).unwrap(), Range::Last(20));
    }

    #[test]
    fn bad_ranges_are_refused() {
        for (query, code) in [
            (q(|q| q.last = Some(0)), "invalid_query"),
            (q(|q| q.count = Some(5000)), "invalid_query"),
            (
                q(|q| {
                    q.last = Some(5);
                    q.since_ms = Some(1);
                }),
                "invalid_query",
            ),
            (
                q(|q| {
                    q.start = Some("1-0".into());
                    q.since_ms = Some(1);
                }),
                "invalid_query",
            ),
            (q(|q| q.start = Some("yesterday".into())), "invalid_id"),
            (
                q(|q| {
                    q.since_ms = Some(9);
                    q.until_ms = Some(5);
                }),
                "invalid_query",
            ),
        ] {
            assert_eq!(range(&query).unwrap_err().code(), code, "{query:?}");
        }
    }

    #[test]
    fn entries_decode_by_stream_or_come_raw() {
        let entry = |fields: &[(&str, &str)]| StreamId {
            id: "1-0".into(),
            map: fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        redis::Value::BulkString(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
            milliseconds_elapsed_from_delivery: None,
            delivered_count: None,
        };
        let hb = replay_entry(
            HEARTBEATS,
            &entry(&[("agent", "pink"), ("time", "1"), ("status", "{}")]),
        );
        assert_eq!(hb.heartbeat.unwrap().agent, "pink");
        let bad = replay_entry("cortex:tasks:high", &entry(&[("payload", "{broken")]));
        assert!(bad.task.is_none());
        assert_eq!(bad.raw.unwrap()["payload"], "{broken");
        assert!(bad.error.unwrap().contains("field"));
        assert_eq!(after(EntryId::new(1, 0)), Some(EntryId::new(1, 1)));
        assert!(replayable().contains(&"cortex:tasks:dlq"));
    }
}
