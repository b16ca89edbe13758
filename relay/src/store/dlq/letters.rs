//! Reading dead letters from `cortex:tasks:dlq`: their decoding, the filters that
//! select them ([`Selection`]), the newest-first [`Scanner`], single letters by id, and
//! the tombstones that remember retried and deleted ones.

use super::{DlqError, FilterError};
use crate::store::keys;
use crate::store::reply::Entry;
use crate::store::streams::{entries_by_id, entry, xrevrange};
use cortex_shared::rest::DlqFilter;
use cortex_shared::{AgentName, DeadLetter, EntryId, Priority};
use redis::aio::ConnectionLike;
use redis::RedisResult;

/// Letters read per `XREVRANGE`.
const BATCH: u64 = 1_000;

/// Ids one `XRANGE` pipeline asks for at most.
const PIPELINE: usize = 1_000;

/// Letter `id` as stored. A letter missing `error`, `retry_count` or `dead_at` (written
/// by some other tool) is still shown, with those empty, zero, or the DLQ id's time
/// (see [`DeadLetter::from_raw_fields_leniently`]). Read from the entry's fields as
/// Redis sent them (the last of a repeated field wins), without a map.
pub(crate) fn letter_of(id: &EntryId, entry: &Entry) -> DeadLetter {
    DeadLetter::from_raw_fields_leniently(entry.raw_fields(), (id.ms / 1000) as i64)
}

/// An entry of the DLQ as its id and letter; `None` when its id does not parse.
fn id_and_letter(entry: &Entry) -> Option<(EntryId, DeadLetter)> {
    let id = entry.id.parse::<EntryId>().ok()?;
    Some((id, letter_of(&id, entry)))
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

/// `text` unless it is absent or empty.
pub(crate) fn non_empty(text: &Option<String>) -> Option<String> {
    text.as_deref().filter(|t| !t.is_empty()).map(str::to_owned)
}

impl Selection {
    /// Checks `filter`: a valid agent name, a known priority, a time range that is not
    /// backwards. Empty texts select everything.
    pub(crate) fn parse(filter: &DlqFilter) -> Result<Self, FilterError> {
        let agent = non_empty(&filter.agent);
        if let Some(agent) = &agent {
            AgentName::parse(agent).map_err(|e| FilterError(format!("agent: {e}")))?;
        }
        let priority = match non_empty(&filter.priority) {
            None => None,
            Some(p) => Some(Priority::parse(&p).ok_or_else(|| {
                FilterError(format!(
                    "priority: unknown priority {p:?}; expected critical, high, normal or low"
                ))
            })?),
        };
        if let (Some(since), Some(until)) = (filter.since_ms, filter.until_ms) {
            if since > until {
                return Err(FilterError(format!(
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
        // Walked as Redis sent it and moved into letters field by field: no map per
        // entry (this loop is what a filtered listing over a large DLQ costs).
        let entries = xrevrange(
            conn,
            keys::DLQ,
            &upper.to_string(),
            &self.lower.to_string(),
            BATCH,
        )
        .await?;
        let read = entries.len();
        let full = read as u64 == BATCH;
        let batch: Vec<(EntryId, DeadLetter)> = entries.iter().filter_map(id_and_letter).collect();
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
    Ok(entry(conn, keys::DLQ, id)
        .await?
        .map(|entry| letter_of(id, &entry)))
}

/// The letters `ids` name that are in the DLQ, and how many are not.
pub(crate) async fn letters_of<C: ConnectionLike>(
    conn: &mut C,
    ids: &[EntryId],
) -> RedisResult<(Vec<(EntryId, DeadLetter)>, u64)> {
    let mut found = Vec::with_capacity(ids.len());
    let mut gone = 0;
    for chunk in ids.chunks(PIPELINE) {
        for entry in entries_by_id(conn, keys::DLQ, chunk).await? {
            match entry.as_ref().and_then(id_and_letter) {
                Some(letter) => found.push(letter),
                None => gone += 1,
            }
        }
    }
    Ok((found, gone))
}

/// Why letter `id` is not in the DLQ, by its tombstone: retried or deleted (within the
/// hour), or not found.
pub(crate) async fn gone<C: ConnectionLike>(conn: &mut C, id: &EntryId) -> RedisResult<DlqError> {
    let why: Option<String> = redis::cmd("GET")
        .arg(keys::tombstone(id))
        .query_async(conn)
        .await?;
    Ok(DlqError::gone(*id, why.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn select(filter: DlqFilter) -> Selection {
        Selection::parse(&filter).unwrap()
    }

    fn letter(to: &str, from: &str, error: &str, payload: &str) -> DeadLetter {
        DeadLetter {
            original_id: "t".into(),
            original_from: from.into(),
            original_to: to.into(),
            original_priority: "high".into(),
            original_type: "coding".into(),
            original_payload: payload.into(),
            original_created: "1".into(),
            error: error.into(),
            retry_count: 3,
            dead_at: 1,
            original_stream: None,
            original_entry_id: None,
            ..Default::default()
        }
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
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

    #[test]
    fn filters_match_agent_either_way_and_text_ignoring_case() {
        let l = letter(
            "pink",
            "harold",
            "Processing TIMEOUT",
            r#"{"desc":"Fix Auth"}"#,
        );
        assert!(select(DlqFilter::default()).matches(&l));
        for agent in ["pink", "harold"] {
            assert!(select(DlqFilter {
                agent: Some(agent.into()),
                ..DlqFilter::default()
            })
            .matches(&l));
        }
        assert!(!select(DlqFilter {
            agent: Some("blue".into()),
            ..DlqFilter::default()
        })
        .matches(&l));
        let f = DlqFilter {
            error: Some("timeout".into()),
            payload: Some("fix auth".into()),
            priority: Some("high".into()),
            task_type: Some("coding".into()),
            ..DlqFilter::default()
        };
        assert!(select(f.clone()).matches(&l));
        assert!(!select(DlqFilter {
            priority: Some("low".into()),
            ..f.clone()
        })
        .matches(&l));
        assert!(!select(DlqFilter {
            task_type: Some("review".into()),
            ..f
        })
        .matches(&l));
        // Non-ASCII text still matches ignoring case.
        let l = letter("pink", "harold", "ÉCHEC réseau", "{}");
        assert!(select(DlqFilter {
            error: Some("échec".into()),
            ..DlqFilter::default()
        })
        .matches(&l));
        // Empty texts select everything.
        assert!(select(DlqFilter {
            agent: Some(String::new()),
            error: Some(String::new()),
            ..DlqFilter::default()
        })
        .matches(&l));
    }

    #[test]
    fn bad_filters_are_refused_with_the_reason() {
        for (filter, needle) in [
            (
                DlqFilter {
                    agent: Some("no/slash".into()),
                    ..DlqFilter::default()
                },
                "agent",
            ),
            (
                DlqFilter {
                    priority: Some("urgent".into()),
                    ..DlqFilter::default()
                },
                "urgent",
            ),
            (
                DlqFilter {
                    since_ms: Some(10),
                    until_ms: Some(5),
                    ..DlqFilter::default()
                },
                "since_ms",
            ),
        ] {
            let err = Selection::parse(&filter).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn raw_entries_read_as_maps_do() {
        let pairs = [
            ("original_id", "t-1"),
            ("original_to", "pink"),
            ("original_payload", "{}"),
            ("error", "timeout"),
            ("retry_count", " 3"),
            ("dead_at", "17"),
            ("original_stream", "cortex:tasks:low"),
            ("error", "the last one wins"),
        ];
        let raw = Value::Array(vec![Value::Array(vec![
            bulk("5000-1"),
            Value::Array(pairs.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect()),
        ])]);
        let entry = crate::store::reply::range(raw).unwrap().remove(0);
        let (id, letter) = id_and_letter(&entry).unwrap();
        assert_eq!(id, EntryId::new(5000, 1));
        let map = entry.into_stream_id().map;
        let by_map = DeadLetter::from_raw_fields_leniently(
            crate::store::value::map_pairs(&map),
            (id.ms / 1000) as i64,
        );
        assert_eq!(letter, by_map);
        assert_eq!(letter.error, "the last one wins");
        assert_eq!(letter.retry_count, 3);
        assert_eq!(letter.original_stream.as_deref(), Some("cortex:tasks:low"));
    }

    #[test]
    fn letters_missing_fields_are_still_shown() {
        let entry = Entry {
            id: "5000-0".into(),
            fields: Some(vec![
                bulk("original_id"),
                bulk("x"),
                bulk("original_payload"),
                bulk("{broken"),
            ]),
        };
        let letter = letter_of(&EntryId::new(5_000, 0), &entry);
        assert_eq!(letter.original_id, "x");
        assert_eq!(letter.error, "");
        assert_eq!(letter.dead_at, 5);
    }
}
