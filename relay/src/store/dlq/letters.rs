//! Reading dead letters from `cortex:tasks:dlq`: their decoding, the filters that
//! select them ([`Selection`]), the newest-first [`Scanner`], and the tombstones that
//! remember retried and deleted ones.

use crate::error::ApiError;
use crate::store::reply::{bytes, raw_pairs};
use cortex_shared::rest::DlqFilter;
use cortex_shared::{AgentName, DeadLetter, EntryId, Priority, DLQ_STREAM};
use redis::aio::ConnectionLike;
use redis::RedisResult;
use std::collections::HashMap;

/// Letters read per `XREVRANGE`.
const BATCH: usize = 1_000;

/// The key remembering, for an hour, that a letter was retried or deleted, so that a
/// second action on it is a 409 rather than a 404.
pub(crate) fn tombstone_key(dlq_id: &EntryId) -> String {
    format!("cortex:dlq:gone:{dlq_id}")
}

/// A letter as stored. A letter missing `error`, `retry_count` or `dead_at` (written
/// by some other tool) is still shown, with those empty, zero, or the DLQ id's time
/// (see [`DeadLetter::from_raw_fields_leniently`]).
pub(crate) fn decode_letter(id: &EntryId, map: &HashMap<String, redis::Value>) -> DeadLetter {
    let pairs = map
        .iter()
        .filter_map(|(name, value)| Some((name.as_bytes(), bytes(value)?)));
    DeadLetter::from_raw_fields_leniently(pairs, (id.ms / 1000) as i64)
}

/// A letter from one entry of a raw `XRANGE`/`XREVRANGE` reply (`[id, [field, value,
/// …]]`), read as [`decode_letter`] reads it (the last of a repeated field wins),
/// without a map.
pub(crate) fn letter_of_entry(entry: redis::Value) -> Option<(EntryId, DeadLetter)> {
    let mut parts = crate::store::xinfo::items(entry).into_iter();
    let id = crate::store::xinfo::text(&parts.next()?)?
        .parse::<EntryId>()
        .ok()?;
    let fields = crate::store::xinfo::items(parts.next()?);
    let letter = DeadLetter::from_raw_fields_leniently(raw_pairs(&fields), (id.ms / 1000) as i64);
    Some((id, letter))
}

/// A checked [`DlqFilter`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    agent: Option<String>,
    priority: Option<Priority>,
    task_type: Option<String>,
    /// Lowercased.
    error: Option<String>,
    /// Lowercased.
    payload: Option<String>,
    since_ms: Option<u64>,
    until_ms: Option<u64>,
}

pub(crate) fn non_empty(text: &Option<String>) -> Option<String> {
    text.as_deref().filter(|t| !t.is_empty()).map(str::to_owned)
}

impl Selection {
    /// Checks `filter`: a valid agent name, a known priority, a time range that is not
    /// backwards. Empty texts select everything.
    pub(crate) fn parse(filter: &DlqFilter) -> Result<Self, ApiError> {
        let bad = |message: String| ApiError::bad_request("invalid_filter", message);
        let agent = non_empty(&filter.agent);
        if let Some(agent) = &agent {
            AgentName::parse(agent).map_err(|e| bad(format!("agent: {e}")))?;
        }
        let priority = match non_empty(&filter.priority) {
            None => None,
            Some(p) => Some(Priority::parse(&p).ok_or_else(|| {
                bad(format!(
                    "priority: unknown priority {p:?}; expected critical, high, normal or low"
                ))
            })?),
        };
        if let (Some(since), Some(until)) = (filter.since_ms, filter.until_ms) {
            if since > until {
                return Err(bad(format!(
                    "since_ms ({since}) is after until_ms ({until})"
                )));
            }
        }
        Ok(Self {
            agent,
            priority,
            task_type: non_empty(&filter.task_type),
            error: non_empty(&filter.error).map(|e| e.to_lowercase()),
            payload: non_empty(&filter.payload).map(|p| p.to_lowercase()),
            since_ms: filter.since_ms,
            until_ms: filter.until_ms,
        })
    }

    /// Whether `letter` is selected (the time range is applied by the read bounds).
    pub(crate) fn matches(&self, letter: &DeadLetter) -> bool {
        let contains = |text: &str, needle: &str| {
            if text.is_ascii() && needle.is_ascii() {
                text.as_bytes()
                    .windows(needle.len().max(1))
                    .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
                    || needle.is_empty()
            } else {
                text.to_lowercase().contains(needle)
            }
        };
        self.agent
            .as_ref()
            .is_none_or(|a| letter.original_to == *a || letter.original_from == *a)
            && self
                .priority
                .is_none_or(|p| letter.original_priority == p.as_str())
            && self
                .task_type
                .as_ref()
                .is_none_or(|t| letter.original_type == *t)
            && self
                .error
                .as_ref()
                .is_none_or(|e| contains(&letter.error, e))
            && self
                .payload
                .as_ref()
                .is_none_or(|p| contains(&letter.original_payload, p))
    }
}

/// Reads the DLQ newest first, within a selection's time range and below a cursor.
#[derive(Debug)]
pub(crate) struct Scanner {
    /// The next read's upper bound, inclusive; `None` once exhausted.
    upper: Option<EntryId>,
    lower: EntryId,
    /// Letters read so far.
    pub(crate) scanned: u64,
}

/// The id right before `id`, if any.
pub(crate) fn before(id: EntryId) -> Option<EntryId> {
    match (id.ms, id.seq) {
        (0, 0) => None,
        (ms, 0) => Some(EntryId::new(ms - 1, u64::MAX)),
        (ms, seq) => Some(EntryId::new(ms, seq - 1)),
    }
}

impl Scanner {
    /// Letters of `selection`'s time range older than `cursor` (all when `None`).
    pub(crate) fn new(selection: &Selection, cursor: Option<EntryId>) -> Self {
        let mut upper = Some(EntryId::new(
            selection.until_ms.unwrap_or(u64::MAX),
            u64::MAX,
        ));
        if let Some(cursor) = cursor {
            upper = upper.min(before(cursor));
        }
        let lower = EntryId::new(selection.since_ms.unwrap_or(0), 0);
        if upper.is_some_and(|u| u < lower) {
            upper = None;
        }
        Self {
            upper,
            lower,
            scanned: 0,
        }
    }

    /// The next batch, newest first; empty once the range is exhausted.
    pub(crate) async fn next<C: ConnectionLike>(
        &mut self,
        conn: &mut C,
    ) -> RedisResult<Vec<(EntryId, DeadLetter)>> {
        let Some(upper) = self.upper else {
            return Ok(Vec::new());
        };
        // Read as a raw reply and moved into letters field by field: no map per entry
        // (this loop is what a filtered listing over a large DLQ costs).
        let reply: redis::Value = redis::cmd("XREVRANGE")
            .arg(DLQ_STREAM)
            .arg(upper.to_string())
            .arg(self.lower.to_string())
            .arg("COUNT")
            .arg(BATCH)
            .query_async(conn)
            .await?;
        let entries = crate::store::xinfo::items(reply);
        let read = entries.len();
        let full = read == BATCH;
        let batch: Vec<(EntryId, DeadLetter)> =
            entries.into_iter().filter_map(letter_of_entry).collect();
        self.scanned += read as u64;
        self.upper = match batch.last() {
            Some((oldest, _)) if full => before(*oldest).filter(|b| *b >= self.lower),
            _ => None,
        };
        Ok(batch)
    }

    /// Whether everything in range has been read.
    pub(crate) fn done(&self) -> bool {
        self.upper.is_none()
    }
}

/// Every letter `selection` selects, newest first.
pub(crate) async fn select_all<C: ConnectionLike>(
    conn: &mut C,
    selection: &Selection,
) -> RedisResult<Vec<(EntryId, DeadLetter)>> {
    let mut scanner = Scanner::new(selection, None);
    let mut selected = Vec::new();
    while !scanner.done() {
        let batch = scanner.next(conn).await?;
        selected.extend(batch.into_iter().filter(|(_, l)| selection.matches(l)));
    }
    Ok(selected)
}

/// The letter `id`, if it is in the DLQ.
pub(crate) async fn read_letter<C: ConnectionLike>(
    conn: &mut C,
    id: &EntryId,
) -> RedisResult<Option<DeadLetter>> {
    let reply = redis::cmd("XRANGE")
        .arg(DLQ_STREAM)
        .arg(id.to_string())
        .arg(id.to_string())
        .query_async(conn)
        .await?;
    Ok(crate::store::reply::range(reply)?
        .into_iter()
        .next()
        .map(|e| DeadLetter::from_raw_fields_leniently(e.raw_fields(), (id.ms / 1000) as i64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(filter: DlqFilter) -> Selection {
        Selection::parse(&filter).unwrap()
    }

    #[test]
    fn scanner_bounds_follow_time_range_and_cursor() {
        let s = Scanner::new(
            &select(DlqFilter {
                since_ms: Some(100),
                until_ms: Some(200),
                ..DlqFilter::default()
            }),
            Some(EntryId::new(150, 0)),
        );
        assert_eq!(s.upper, Some(EntryId::new(149, u64::MAX)));
        assert_eq!(s.lower, EntryId::new(100, 0));
        let s = Scanner::new(
            &select(DlqFilter {
                since_ms: Some(100),
                ..DlqFilter::default()
            }),
            Some(EntryId::new(100, 0)),
        );
        assert!(
            s.done(),
            "a cursor at the start of the range leaves nothing"
        );
        assert_eq!(before(EntryId::new(5, 3)), Some(EntryId::new(5, 2)));
        assert_eq!(before(EntryId::ZERO), None);
    }
}
