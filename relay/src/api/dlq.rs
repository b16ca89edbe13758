//! Reading the dead letter queue: `GET /api/v1/messaging/dlq` (newest first, cursor
//! paging, filters applied in the relay while reading), `GET …/dlq/{dlq_id}` and
//! `GET …/dlq/stats`. Changing it is [`super::dlq_actions`].
//!
//! Filters are applied to letters as they are read, newest first, in batches; the time
//! range is turned into the read's id bounds, so it costs nothing. A page stops at
//! `limit` matches or after [`SCAN_CAP`] letters read (its `next_cursor` then resumes
//! the scan), so one request never reads an unbounded DLQ.

use super::{ApiPath, ApiQuery};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::dlq::{non_empty, read_letter, DlqError, FilterError, Scanner, Selection};
use axum::extract::State;
use axum::Json;
use cortex_shared::entry::Problem;
use cortex_shared::rest::{DlqItem, DlqListQuery, DlqPage, DlqStats, ErrorCount};
use cortex_shared::EntryId;
use std::collections::{BTreeMap, HashMap};

/// Letters one listing request reads at most.
pub const SCAN_CAP: u64 = 200_000;
/// Letters per page by default, and at most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1_000;
/// Error texts in the stats, and their length, at most.
const TOP_ERRORS: usize = 50;
const ERROR_CHARS: usize = 200;

/// A DLQ id from a path or a body: `<ms>-<seq>` (a bare `<ms>` means `<ms>-0`).
pub(crate) fn parse_dlq_id(id: &str) -> Result<EntryId, ApiError> {
    id.parse::<EntryId>().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("{id:?} is not a DLQ id (expected <milliseconds>-<sequence>)"),
        )
    })
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
    let mut conn = state.services.redis.clone();
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
    let mut conn = state.services.redis.clone();
    match read_letter(&mut conn, &id).await? {
        Some(letter) => Ok(Json(DlqItem {
            dlq_id: id.to_string(),
            letter,
        })),
        None => Err(DlqError::NotFound(id).into()),
    }
}

impl From<DlqError> for ApiError {
    /// 404 `not_found`; 409 `already_retried`, `already_deleted` (a tombstone says so,
    /// within the hour); 422 `not_retryable`, with what the body must give; Redis
    /// failures as always.
    fn from(error: DlqError) -> Self {
        let message = error.to_string();
        match error {
            DlqError::NotFound(_) => ApiError::not_found(error.code(), message),
            DlqError::AlreadyRetried(_) | DlqError::AlreadyDeleted(_) => {
                ApiError::conflict(error.code(), message)
            }
            DlqError::NotRetryable {
                error: ref cause, ..
            } => {
                let hint = match cause.problem {
                    Problem::Missing | Problem::NotUtf8 => {
                        format!(" (give `{}` in the body)", cause.field)
                    }
                    _ => String::new(),
                };
                ApiError::unprocessable(error.code(), format!("{message}{hint}"))
            }
            DlqError::Redis(e) => ApiError::redis(&e),
        }
    }
}

impl From<FilterError> for ApiError {
    /// 400 `invalid_filter`.
    fn from(error: FilterError) -> Self {
        ApiError::bad_request("invalid_filter", error.to_string())
    }
}

/// `GET /api/v1/messaging/dlq/stats`.
pub async fn stats(State(state): State<AppState>) -> Result<Json<DlqStats>, ApiError> {
    let mut conn = state.services.redis.clone();
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
    use cortex_shared::rest::DlqFilter;

    #[test]
    fn gone_letters_are_409_when_acted_on_else_404() {
        let id = EntryId::new(1, 0);
        let api = |tombstone| ApiError::from(DlqError::gone(id, tombstone));
        assert_eq!(api(Some("retried")).code(), "already_retried");
        assert_eq!(api(Some("retried")).status().as_u16(), 409);
        assert_eq!(api(Some("deleted")).code(), "already_deleted");
        assert_eq!(api(Some("deleted")).status().as_u16(), 409);
        assert_eq!(api(None).status().as_u16(), 404);
        assert_eq!(api(None).message(), "no dead letter 1-0");
        assert!(parse_dlq_id("not-an-id").is_err());
        assert_eq!(parse_dlq_id("7").unwrap(), EntryId::new(7, 0));
    }

    #[test]
    fn a_letter_that_cannot_be_retried_is_422_naming_what_to_give() {
        let error = cortex_shared::DecodeError::new("to", Problem::Missing);
        let e = ApiError::from(DlqError::NotRetryable {
            id: EntryId::new(9, 0),
            error,
        });
        assert_eq!((e.status().as_u16(), e.code()), (422, "not_retryable"));
        assert!(
            e.message()
                .ends_with("field `to`: missing (give `to` in the body)"),
            "{}",
            e.message()
        );
    }

    #[test]
    fn bad_filters_are_400_invalid_filter() {
        let filter = DlqFilter {
            priority: Some("urgent".into()),
            ..DlqFilter::default()
        };
        let e = ApiError::from(Selection::parse(&filter).unwrap_err());
        assert_eq!((e.status().as_u16(), e.code()), (400, "invalid_filter"));
        assert!(e.message().contains("urgent"), "{}", e.message());
    }
}
