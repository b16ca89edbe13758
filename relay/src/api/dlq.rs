//! Reading the dead letter queue: `GET /api/v1/messaging/dlq` (newest first, cursor
//! paging, filters applied in the relay while reading), `GET …/dlq/{dlq_id}` and
//! `GET …/dlq/stats`. Changing it is [`super::dlq_actions`].
//!
//! Filters are applied to letters as they are read, newest first, in batches; the time
//! range is turned into the read's id bounds, so it costs nothing. A page stops at
//! `limit` matches or after [`SCAN_CAP`] letters read (its `next_cursor` then resumes
//! the scan), so one request never reads an unbounded DLQ.

use super::{ApiPath, ApiQuery};
use crate::bridge::reply::{bytes, raw_pairs};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use cortex_shared::rest::{DlqFilter, DlqItem, DlqListQuery, DlqPage, DlqStats, ErrorCount};
use cortex_shared::{AgentName, DeadLetter, EntryId, Priority, DLQ_STREAM};
use redis::aio::ConnectionLike;
use redis::RedisResult;
use std::collections::{BTreeMap, HashMap};

/// Letters read per `XREVRANGE`.
const BATCH: usize = 1_000;
/// Letters one listing request reads at most.
pub const SCAN_CAP: u64 = 200_000;
/// Letters per page by default, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1_000;
/// Error texts in the stats, and their length, at most.
const TOP_ERRORS: usize = 50;
const ERROR_CHARS: usize = 200;

/// The key remembering, for an hour, that a letter was retried or deleted, so that a
/// second action on it is a 409 rather than a 404.
pub(crate) fn tombstone_key(dlq_id: &EntryId) -> String {
    format!("cortex:dlq:gone:{dlq_id}")
}

/// A DLQ id from a path or a body: `<ms>-<seq>` (a bare `<ms>` means `<ms>-0`).
pub(crate) fn parse_dlq_id(id: &str) -> Result<EntryId, ApiError> {
    id.parse::<EntryId>().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("{id:?} is not a DLQ id (expected <milliseconds>-<sequence>)"),
        )
    })
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
    let mut parts = super::xinfo::items(entry).into_iter();
    let id = super::xinfo::text(&parts.next()?)?
        .parse::<EntryId>()
        .ok()?;
    let fields = super::xinfo::items(parts.next()?);
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

fn non_empty(text: &Option<String>) -> Option<String> {
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
        let entries = super::xinfo::items(reply);
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

/// `GET /api/v1/messaging/dlq`: a page of letters, newest first.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<DlqListQuery>,
) -> Result<Json<DlqPage>, ApiError> {
    let selection = Selection::parse(&query.filter())?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1 to {MAX_LIMIT}, not {limit}"),
        ));
    }
    let cursor = match non_empty(&query.cursor) {
        None => None,
        Some(c) => Some(c.parse::<EntryId>().map_err(|_| {
            ApiError::bad_request("invalid_cursor", format!("cursor {c:?} is not a DLQ id"))
        })?),
    };
    let mut conn = state.session.redis.clone();
    let mut scanner = Scanner::new(&selection, cursor);
    let mut items = Vec::new();
    let mut next_cursor = None;
    'scan: while !scanner.done() {
        let batch = scanner.next(&mut conn).await?;
        let last = batch.last().map(|(id, _)| *id);
        for (id, letter) in batch {
            if selection.matches(&letter) {
                items.push(DlqItem {
                    dlq_id: id.to_string(),
                    letter,
                });
                if items.len() == limit {
                    next_cursor = Some(id.to_string());
                    break 'scan;
                }
            }
        }
        if scanner.scanned >= SCAN_CAP && !scanner.done() {
            next_cursor = last.map(|id| id.to_string());
            break;
        }
    }
    Ok(Json(DlqPage {
        items,
        next_cursor,
        scanned: scanner.scanned,
    }))
}

/// `GET /api/v1/messaging/dlq/{dlq_id}`: one letter; 404 when it is not in the DLQ
/// (retried and deleted ones included).
pub async fn one(
    State(state): State<AppState>,
    ApiPath(dlq_id): ApiPath<String>,
) -> Result<Json<DlqItem>, ApiError> {
    let id = parse_dlq_id(&dlq_id)?;
    let mut conn = state.session.redis.clone();
    match read_letter(&mut conn, &id).await? {
        Some(letter) => Ok(Json(DlqItem {
            dlq_id: id.to_string(),
            letter,
        })),
        None => Err(gone_error(&id, None)),
    }
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
    Ok(crate::bridge::reply::range(reply)?
        .into_iter()
        .next()
        .map(|e| DeadLetter::from_raw_fields_leniently(e.raw_fields(), (id.ms / 1000) as i64)))
}

/// The error for a letter that is not in the DLQ: 409 if it was retried or deleted
/// within the hour, else 404.
pub(crate) async fn gone<C: ConnectionLike>(
    conn: &mut C,
    id: &EntryId,
) -> Result<ApiError, ApiError> {
    let why: Option<String> = redis::cmd("GET")
        .arg(tombstone_key(id))
        .query_async(conn)
        .await?;
    Ok(gone_error(id, why.as_deref()))
}

/// The error for a letter an action did not find, given its tombstone's value.
pub(crate) fn gone_error(id: &EntryId, tombstone: Option<&str>) -> ApiError {
    match tombstone {
        Some("retried") => ApiError::conflict(
            "already_retried",
            format!("dead letter {id} was already retried"),
        ),
        Some("deleted") => ApiError::conflict(
            "already_deleted",
            format!("dead letter {id} was already deleted"),
        ),
        _ => ApiError::not_found("not_found", format!("no dead letter {id}")),
    }
}

/// `GET /api/v1/messaging/dlq/stats`.
pub async fn stats(State(state): State<AppState>) -> Result<Json<DlqStats>, ApiError> {
    let mut conn = state.session.redis.clone();
    let mut scanner = Scanner::new(&Selection::default(), None);
    let mut by_error: HashMap<String, u64> = HashMap::new();
    let mut by_agent: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_priority: BTreeMap<String, u64> = BTreeMap::new();
    let (mut newest, mut oldest) = (None, None);
    while !scanner.done() {
        for (id, letter) in scanner.next(&mut conn).await? {
            newest = newest.or(Some(id));
            oldest = Some(id);
            let error: String = letter.error.chars().take(ERROR_CHARS).collect();
            *by_error.entry(error).or_default() += 1;
            let agent = match letter.original_to.as_str() {
                "" => cortex_shared::ALL_AGENTS.to_owned(),
                to => to.to_owned(),
            };
            *by_agent.entry(agent).or_default() += 1;
            *by_priority.entry(letter.original_priority).or_default() += 1;
        }
    }
    let length = scanner.scanned;
    let mut by_error: Vec<ErrorCount> = by_error
        .into_iter()
        .map(|(error, count)| ErrorCount { error, count })
        .collect();
    by_error.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.error.cmp(&b.error)));
    by_error.truncate(TOP_ERRORS);
    let warn_length = state.api.dlq_warn_length;
    Ok(Json(DlqStats {
        length,
        oldest_id: oldest.map(|id| id.to_string()),
        oldest_age_ms: oldest.map(|id| super::now_ms().saturating_sub(id.ms)),
        newest_id: newest.map(|id| id.to_string()),
        by_error,
        by_agent,
        by_priority,
        warn_length,
        over_warn_length: length > warn_length,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn select(filter: DlqFilter) -> Selection {
        Selection::parse(&filter).unwrap()
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
            assert_eq!(err.code(), "invalid_filter");
            assert!(err.message().contains(needle), "{}", err.message());
        }
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
    fn raw_entries_read_as_maps_do() {
        let bulk = |s: &str| redis::Value::BulkString(s.as_bytes().to_vec());
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
        let raw = redis::Value::Array(vec![
            bulk("5000-1"),
            redis::Value::Array(pairs.iter().flat_map(|(k, v)| [bulk(k), bulk(v)]).collect()),
        ]);
        let (id, letter) = letter_of_entry(raw).unwrap();
        assert_eq!(id, EntryId::new(5000, 1));
        let map: HashMap<String, redis::Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), bulk(v)))
            .collect();
        assert_eq!(letter, decode_letter(&id, &map));
        assert_eq!(letter.error, "the last one wins");
        assert_eq!(letter.retry_count, 3);
        assert_eq!(letter.original_stream.as_deref(), Some("cortex:tasks:low"));
        assert!(letter_of_entry(redis::Value::Nil).is_none());
    }

    #[test]
    fn letters_missing_fields_are_still_shown() {
        let map: HashMap<String, redis::Value> =
            [("original_id", "x"), ("original_payload", "{broken")]
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        redis::Value::BulkString(v.as_bytes().to_vec()),
                    )
                })
                .collect();
        let letter = decode_letter(&EntryId::new(5_000, 0), &map);
        assert_eq!(letter.original_id, "x");
        assert_eq!(letter.error, "");
        assert_eq!(letter.dead_at, 5);
    }

    #[test]
    fn gone_letters_are_409_when_acted_on_else_404() {
        let id = EntryId::new(1, 0);
        assert_eq!(gone_error(&id, Some("retried")).code(), "already_retried");
        assert_eq!(gone_error(&id, Some("deleted")).status().as_u16(), 409);
        assert_eq!(gone_error(&id, None).status().as_u16(), 404);
        assert!(parse_dlq_id("not-an-id").is_err());
        assert_eq!(parse_dlq_id("7").unwrap(), EntryId::new(7, 0));
    }
}
