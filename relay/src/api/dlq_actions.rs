//! Changing the dead letter queue: retry (`POST /api/v1/messaging/dlq/retry/{dlq_id}`),
//! delete (`DELETE …/dlq/{dlq_id}`), and both in bulk (`POST …/dlq/retry`,
//! `POST …/dlq/delete`) by filter or by ids.
//!
//! # Each letter ends in exactly one place
//!
//! A retry republishes the task and removes the letter in one server-side script,
//! which first checks that the letter is still there: a crash leaves it either in the
//! DLQ or back in its stream, never in both or neither, and of two concurrent retries
//! of one letter exactly one republishes it (the other finds it gone: 409). The same
//! script leaves a tombstone (`cortex:dlq:gone:<id>`, one hour) so that later attempts
//! are told "already retried" (409) rather than "not found" (404), and appends an
//! event to [`EVENTS_STREAM`] so that every relay's watchers hear of it. Deletion
//! works the same way. Bulk actions run the script per [`IDS_PER_EVENT`] letters.
//!
//! The retried task keeps its fields (its `id` too) and gains `retry_count` (retries
//! from the DLQ so far: one more than the `retry_count` of the entry it died as, when
//! that entry is still in its stream), `edited` (`true` when the payload was
//! replaced) and `retried_from` (the DLQ id); readers ignore fields they do not know.

use super::dlq::{
    gone, gone_error, parse_dlq_id, read_letter, select_all, tombstone_key, Selection,
};
use super::events::{EVENTS_MAXLEN, EVENTS_STREAM, IDS_PER_EVENT};
use super::{ApiBody, ApiPath};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use cortex_shared::rest::{BulkFailure, BulkRequest, BulkResult, Deleted, Retried, RetryRequest};
use cortex_shared::{DeadLetter, EntryId, Priority, TaskMessage, DLQ_STREAM};
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// How long a tombstone says "already retried/deleted", in seconds.
const TOMBSTONE_SECONDS: u64 = 3600;
/// Ids one bulk request may list.
const MAX_IDS: usize = 100_000;
/// Failures a bulk result details.
const MAX_FAILURES: usize = 100;

/// KEYS: DLQ, events stream, the four task streams (critical … low), then one
/// tombstone key per letter. ARGV: tombstone seconds, events maxlen, then per letter:
/// DLQ id, target stream (1-4), original stream (0 unknown, 1-4), original entry id,
/// edited (`true`/`false`), field count, then the task's fields.
/// Returns per letter: status (`ok`, or why not: `retried`, `deleted`, `missing`),
/// new entry id, retry count.
static RETRY: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local out = {}
local done = {}
local a = 3
local k = 7
while a <= #ARGV do
  local id = ARGV[a]
  local target = tonumber(ARGV[a + 1])
  local orig = tonumber(ARGV[a + 2])
  local orig_id = ARGV[a + 3]
  local edited = ARGV[a + 4]
  local n = tonumber(ARGV[a + 5])
  local fields = {}
  for j = 1, n do fields[j] = ARGV[a + 5 + j] end
  a = a + 6 + n
  local tomb = KEYS[k]
  k = k + 1
  if #redis.call('XRANGE', KEYS[1], id, id) == 0 then
    table.insert(out, redis.call('GET', tomb) or 'missing')
    table.insert(out, '')
    table.insert(out, 0)
  else
    local count = 1
    if orig > 0 and orig_id ~= '' then
      local e = redis.call('XRANGE', KEYS[2 + orig], orig_id, orig_id)
      if #e > 0 then
        local f = e[1][2]
        for j = 1, #f, 2 do
          if f[j] == 'retry_count' then count = (tonumber(f[j + 1]) or 0) + 1 end
        end
      end
    end
    table.insert(fields, 'retry_count')
    table.insert(fields, tostring(count))
    table.insert(fields, 'edited')
    table.insert(fields, edited)
    table.insert(fields, 'retried_from')
    table.insert(fields, id)
    local entry = redis.call('XADD', KEYS[2 + target], '*', unpack(fields))
    redis.call('XDEL', KEYS[1], id)
    redis.call('SET', tomb, 'retried', 'EX', ARGV[1])
    table.insert(done, id)
    table.insert(out, 'ok')
    table.insert(out, entry)
    table.insert(out, count)
  end
end
if #done > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
    'kind', 'dlq', 'action', 'retried', 'ids', table.concat(done, ' '))
end
return out
"#,
    )
});

/// KEYS: DLQ, events stream, then one tombstone key per letter. ARGV: tombstone
/// seconds, events maxlen, then the DLQ ids. Returns per letter `ok`, or why not
/// (`retried`, `deleted`, `missing`).
static DELETE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local out = {}
local done = {}
for j = 3, #ARGV do
  local id = ARGV[j]
  if redis.call('XDEL', KEYS[1], id) == 1 then
    redis.call('SET', KEYS[j], 'deleted', 'EX', ARGV[1])
    table.insert(done, id)
    table.insert(out, 'ok')
  else
    table.insert(out, redis.call('GET', KEYS[j]) or 'missing')
  end
end
if #done > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
    'kind', 'dlq', 'action', 'deleted', 'ids', table.concat(done, ' '))
end
return out
"#,
    )
});

/// A letter ready to retry: the task to republish, and where.
#[derive(Debug, Clone)]
struct Planned {
    dlq_id: EntryId,
    task: TaskMessage,
    original: Option<(Priority, String)>,
    edited: bool,
}

/// What one letter's retry came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Retried {
        entry_id: String,
        retry_count: u64,
    },
    /// Not in the DLQ; the tombstone's value if any.
    Gone(Option<String>),
}

/// What a retry changes: the priority, and task fields replaced (checked, as the
/// text they are written as).
#[derive(Debug, Clone, Default)]
struct Edits {
    priority: Option<Priority>,
    fields: Vec<(&'static str, String)>,
}

impl Edits {
    /// The edits a [`RetryRequest`] asks for, checked as a published task's fields are
    /// (400 `invalid_payload`, `invalid_agent`, `invalid_type`, `invalid_body`).
    fn of(request: RetryRequest) -> Result<Self, ApiError> {
        let mut fields = Vec::new();
        if let Some(id) = request.id {
            if id.is_empty() {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "id must not be empty",
                ));
            }
            fields.push(("id", id));
        }
        if let Some(from) = request.from {
            fields.push(("from", super::publish::checked_from(&from)?));
        }
        if let Some(to) = request.to {
            fields.push(("to", super::publish::checked_to(&to)?));
        }
        if let Some(task_type) = request.task_type {
            super::publish::checked_type(&task_type)?;
            fields.push(("type", task_type));
        }
        match request.payload {
            None => {}
            Some(serde_json::Value::Object(map)) => {
                fields.push(("payload", serde_json::Value::Object(map).to_string()));
            }
            Some(other) => {
                return Err(ApiError::bad_request(
                    "invalid_payload",
                    format!("payload must be a JSON object, not {other}"),
                ))
            }
        }
        if let Some(created) = request.created {
            fields.push(("created", created.to_string()));
        }
        Ok(Self {
            priority: request.priority,
            fields,
        })
    }
}

/// The task `letter` stands for, with `edits` applied. A 422 `not_retryable` when it
/// does not decode: a field the entry lacked or that was not UTF-8 (the letter's
/// `original_missing`, `original_bytes`) must be given by the edits.
fn plan(dlq_id: EntryId, letter: &DeadLetter, edits: &Edits) -> Result<Planned, ApiError> {
    let edited = !edits.fields.is_empty();
    let mut fields = letter.clone();
    for (field, text) in &edits.fields {
        fields.set_original(field, text.clone());
    }
    if let Some(priority) = edits.priority {
        fields.set_original("priority", priority.as_str().to_owned());
    }
    fields.original_stream = None;
    let task = fields.original_task().map_err(|e| {
        let hint = match e.problem {
            cortex_shared::entry::Problem::Missing | cortex_shared::entry::Problem::NotUtf8 => {
                format!(" (give `{}` in the body)", e.field)
            }
            _ => String::new(),
        };
        ApiError::unprocessable(
            "not_retryable",
            format!("dead letter {dlq_id} cannot be retried: its task does not decode: {e}{hint}"),
        )
    })?;
    let original = letter
        .original_stream
        .as_deref()
        .and_then(Priority::from_stream)
        .zip(letter.original_entry_id.clone());
    Ok(Planned {
        dlq_id,
        task,
        original,
        edited,
    })
}

fn stream_index(priority: Priority) -> usize {
    Priority::ALL
        .iter()
        .position(|p| *p == priority)
        .unwrap_or(0)
        + 1
}

/// Runs [`RETRY`] for `letters` (at most [`IDS_PER_EVENT`]).
async fn retry_batch<C: ConnectionLike>(
    conn: &mut C,
    letters: &[Planned],
) -> RedisResult<Vec<Outcome>> {
    let mut invocation = RETRY.key(DLQ_STREAM);
    invocation.key(EVENTS_STREAM);
    for p in Priority::ALL {
        invocation.key(p.stream());
    }
    invocation.arg(TOMBSTONE_SECONDS).arg(EVENTS_MAXLEN);
    for letter in letters {
        invocation.key(tombstone_key(&letter.dlq_id));
        let fields = letter.task.to_fields();
        invocation
            .arg(letter.dlq_id.to_string())
            .arg(stream_index(letter.task.priority))
            .arg(
                letter
                    .original
                    .as_ref()
                    .map_or(0, |(p, _)| stream_index(*p)),
            )
            .arg(letter.original.as_ref().map_or("", |(_, id)| id.as_str()))
            .arg(if letter.edited { "true" } else { "false" })
            .arg(fields.len() * 2);
        for (field, value) in fields {
            invocation.arg(field).arg(value);
        }
    }
    let reply: Vec<Value> = invocation.invoke_async(conn).await?;
    Ok(reply
        .chunks(3)
        .map(|r| {
            let status = super::xinfo::text(&r[0]).unwrap_or_default();
            if status == "ok" {
                Outcome::Retried {
                    entry_id: super::xinfo::text(&r[1]).unwrap_or_default(),
                    retry_count: super::xinfo::int(&r[2]).unwrap_or(1).max(0) as u64,
                }
            } else {
                Outcome::Gone(Some(status).filter(|s| s != "missing"))
            }
        })
        .collect())
}

/// Runs [`DELETE`] for `ids` (at most [`IDS_PER_EVENT`]); per id, `None` when deleted,
/// else why it was not there (`Some(None)`: missing, no tombstone).
async fn delete_batch<C: ConnectionLike>(
    conn: &mut C,
    ids: &[EntryId],
) -> RedisResult<Vec<Option<Option<String>>>> {
    let mut invocation = DELETE.key(DLQ_STREAM);
    invocation.key(EVENTS_STREAM);
    invocation.arg(TOMBSTONE_SECONDS).arg(EVENTS_MAXLEN);
    for id in ids {
        invocation.key(tombstone_key(id)).arg(id.to_string());
    }
    let reply: Vec<String> = invocation.invoke_async(conn).await?;
    Ok(reply
        .into_iter()
        .map(|status| match status.as_str() {
            "ok" => None,
            "missing" => Some(None),
            _ => Some(Some(status)),
        })
        .collect())
}

/// `POST /api/v1/messaging/dlq/retry/{dlq_id}`, with an optional [`RetryRequest`].
pub async fn retry(
    State(state): State<AppState>,
    ApiPath(dlq_id): ApiPath<String>,
    body: ApiBody,
) -> Result<Json<Retried>, ApiError> {
    let id = parse_dlq_id(&dlq_id)?;
    let request: RetryRequest = body.json()?.unwrap_or_default();
    let edits = Edits::of(request)?;
    let mut conn = state.session.redis.clone();
    let Some(letter) = read_letter(&mut conn, &id).await? else {
        return Err(gone(&mut conn, &id).await?);
    };
    let planned = plan(id, &letter, &edits)?;
    let outcome = retry_batch(&mut conn, std::slice::from_ref(&planned)).await?;
    match outcome.into_iter().next() {
        Some(Outcome::Retried {
            entry_id,
            retry_count,
        }) => Ok(Json(Retried {
            dlq_id: id.to_string(),
            task_id: planned.task.id,
            stream: planned.task.priority.stream().to_owned(),
            entry_id,
            retry_count,
            edited: planned.edited,
        })),
        // Another request took it between our read and the script.
        Some(Outcome::Gone(why)) => Err(gone_error(&id, Some(why.as_deref().unwrap_or("retried")))),
        None => Err(ApiError::internal("retry script returned nothing")),
    }
}

/// `DELETE /api/v1/messaging/dlq/{dlq_id}`.
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(dlq_id): ApiPath<String>,
) -> Result<Json<Deleted>, ApiError> {
    let id = parse_dlq_id(&dlq_id)?;
    let mut conn = state.session.redis.clone();
    match delete_batch(&mut conn, &[id]).await?.into_iter().next() {
        Some(None) => Ok(Json(Deleted {
            dlq_id: id.to_string(),
            deleted: true,
        })),
        Some(Some(why)) => Err(gone_error(&id, why.as_deref())),
        None => Err(ApiError::internal("delete script returned nothing")),
    }
}

/// What a bulk request selects: its ids (checked, without duplicates, in the order
/// given), or its filter.
enum Target {
    Ids(Vec<EntryId>),
    Filter(Selection),
}

fn target(request: &BulkRequest) -> Result<Target, ApiError> {
    match (&request.ids, &request.filter) {
        (Some(_), Some(_)) | (None, None) => Err(ApiError::bad_request(
            "invalid_body",
            "give either \"ids\" (a list of DLQ ids) or \"filter\" ({} selects every letter)",
        )),
        (None, Some(filter)) => Ok(Target::Filter(Selection::parse(filter)?)),
        (Some(ids), None) => {
            if ids.len() > MAX_IDS {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    format!("at most {MAX_IDS} ids per request; use a filter for more"),
                ));
            }
            let mut seen = BTreeSet::new();
            let mut checked = Vec::with_capacity(ids.len());
            for id in ids {
                let id = parse_dlq_id(id)?;
                if seen.insert(id) {
                    checked.push(id);
                }
            }
            Ok(Target::Ids(checked))
        }
    }
}

/// The letters `ids` name that are in the DLQ (others counted as gone).
async fn letters_of<C: ConnectionLike>(
    conn: &mut C,
    ids: &[EntryId],
) -> RedisResult<(Vec<(EntryId, DeadLetter)>, u64)> {
    let mut found = Vec::with_capacity(ids.len());
    let mut gone = 0;
    for chunk in ids.chunks(1_000) {
        let mut pipe = redis::pipe();
        for id in chunk {
            pipe.cmd("XRANGE")
                .arg(DLQ_STREAM)
                .arg(id.to_string())
                .arg(id.to_string());
        }
        let replies: Vec<Value> = pipe.query_async(conn).await?;
        for reply in replies {
            match super::xinfo::items(reply)
                .into_iter()
                .next()
                .and_then(super::dlq::letter_of_entry)
            {
                Some(letter) => found.push(letter),
                None => gone += 1,
            }
        }
    }
    Ok((found, gone))
}

fn fail(result: &mut BulkResult, dlq_id: &EntryId, error: &ApiError) {
    result.failed += 1;
    if result.failures.len() < MAX_FAILURES {
        result.failures.push(BulkFailure {
            dlq_id: dlq_id.to_string(),
            code: error.code().to_owned(),
            message: error.message().to_owned(),
        });
    }
}

async fn selected<C: ConnectionLike>(
    conn: &mut C,
    target: Target,
) -> RedisResult<(Vec<(EntryId, DeadLetter)>, u64)> {
    match target {
        Target::Ids(ids) => letters_of(conn, &ids).await,
        Target::Filter(selection) => Ok((select_all(conn, &selection).await?, 0)),
    }
}

/// `POST /api/v1/messaging/dlq/retry`: retries the letters a [`BulkRequest`] selects.
pub async fn bulk_retry(
    State(state): State<AppState>,
    body: ApiBody,
) -> Result<Json<BulkResult>, ApiError> {
    let request: BulkRequest = body.required()?;
    let target = target(&request)?;
    let mut conn = state.session.redis.clone();
    let (letters, gone) = selected(&mut conn, target).await?;
    let mut result = BulkResult {
        matched: letters.len() as u64 + gone,
        gone,
        ..BulkResult::default()
    };
    let mut planned = Vec::with_capacity(letters.len());
    let edits = Edits {
        priority: request.priority,
        ..Edits::default()
    };
    for (id, letter) in &letters {
        match plan(*id, letter, &edits) {
            Ok(p) => planned.push(p),
            Err(e) => fail(&mut result, id, &e),
        }
    }
    for batch in planned.chunks(IDS_PER_EVENT) {
        for outcome in retry_batch(&mut conn, batch).await? {
            match outcome {
                Outcome::Retried { .. } => result.acted += 1,
                Outcome::Gone(_) => result.gone += 1,
            }
        }
    }
    Ok(Json(result))
}

/// `POST /api/v1/messaging/dlq/delete`: deletes the letters a [`BulkRequest`] selects.
pub async fn bulk_delete(
    State(state): State<AppState>,
    body: ApiBody,
) -> Result<Json<BulkResult>, ApiError> {
    let request: BulkRequest = body.required()?;
    if request.priority.is_some() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "\"priority\" is for retries; a delete takes \"ids\" or \"filter\"",
        ));
    }
    let target = target(&request)?;
    let mut conn = state.session.redis.clone();
    let ids: Vec<EntryId> = match target {
        Target::Ids(ids) => ids,
        Target::Filter(selection) => select_all(&mut conn, &selection)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect(),
    };
    let mut result = BulkResult {
        matched: ids.len() as u64,
        ..BulkResult::default()
    };
    for batch in ids.chunks(IDS_PER_EVENT) {
        for outcome in delete_batch(&mut conn, batch).await? {
            match outcome {
                None => result.acted += 1,
                Some(_) => result.gone += 1,
            }
        }
    }
    Ok(Json(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(payload: &str) -> DeadLetter {
        DeadLetter {
            original_id: "task-001".into(),
            original_from: "harold".into(),
            original_to: "pink".into(),
            original_priority: "low".into(),
            original_type: "coding".into(),
            original_payload: payload.into(),
            original_created: "1704556800".into(),
            error: "timeout".into(),
            retry_count: 3,
            dead_at: 1,
            original_stream: Some("cortex:tasks:low".into()),
            original_entry_id: Some("5-0".into()),
            ..Default::default()
        }
    }

    fn edits(body: serde_json::Value) -> Edits {
        Edits::of(serde_json::from_value(body).unwrap()).unwrap()
    }

    #[test]
    fn a_retry_keeps_the_task_and_applies_priority_and_payload() {
        let id = EntryId::new(9, 0);
        let p = plan(id, &letter(r#"{"a":1}"#), &Edits::default()).unwrap();
        assert_eq!(p.task.id, "task-001");
        assert_eq!(p.task.priority, Priority::Low);
        assert_eq!(p.task.payload["a"], 1);
        assert!(!p.edited);
        assert_eq!(p.original, Some((Priority::Low, "5-0".to_owned())));

        let body = serde_json::json!({"priority":"critical","payload":{"b":2}});
        let p = plan(id, &letter(r#"{"a":1}"#), &edits(body)).unwrap();
        assert_eq!(p.task.priority, Priority::Critical);
        assert_eq!(p.task.payload["b"], 2);
        assert!(p.edited);
        assert_eq!(stream_index(Priority::Critical), 1);
        assert_eq!(stream_index(Priority::Low), 4);
    }

    #[test]
    fn a_letter_whose_task_does_not_decode_needs_an_edit() {
        let id = EntryId::new(9, 0);
        let err = plan(id, &letter("{broken"), &Edits::default()).unwrap_err();
        assert_eq!(err.code(), "not_retryable");
        assert_eq!(err.status().as_u16(), 422);
        let fixed = edits(serde_json::json!({"payload":{"ok":true}}));
        assert!(plan(id, &letter("{broken"), &fixed).is_ok());
    }

    #[test]
    fn a_letter_of_an_entry_that_lacked_a_field_or_held_bytes_needs_them_given() {
        let id = EntryId::new(9, 0);
        // An entry without `to`: not a task for every agent.
        let no_to = DeadLetter {
            original_to: String::new(),
            original_missing: vec!["to".into()],
            ..letter("{}")
        };
        let err = plan(id, &no_to, &Edits::default()).unwrap_err();
        assert_eq!(err.code(), "not_retryable");
        assert!(
            err.message().contains("field `to`: missing"),
            "{}",
            err.message()
        );
        // A priority alone does not supply it.
        let priority = Edits {
            priority: Some(Priority::High),
            ..Edits::default()
        };
        assert_eq!(
            plan(id, &no_to, &priority).unwrap_err().code(),
            "not_retryable"
        );
        let p = plan(id, &no_to, &edits(serde_json::json!({"to":"harold"}))).unwrap();
        assert_eq!(p.task.to, "harold");
        assert!(p.edited);
        // `*` supplies it too: every agent, on purpose.
        let p = plan(id, &no_to, &edits(serde_json::json!({"to":"*"}))).unwrap();
        assert_eq!(p.task.to, "");

        // A payload that was not UTF-8: its lossy text is not retried.
        let bytes = DeadLetter {
            original_payload: "{\"a\":\"\u{fffd}\"}".into(),
            original_bytes: [("payload".to_owned(), b"{\"a\":\"\xff\"}".to_vec())].into(),
            ..letter("{}")
        };
        let err = plan(id, &bytes, &Edits::default()).unwrap_err();
        assert!(
            err.message().contains("field `payload`: not UTF-8"),
            "{}",
            err.message()
        );
        let p = plan(id, &bytes, &edits(serde_json::json!({"payload":{"a":"b"}}))).unwrap();
        assert_eq!(p.task.payload["a"], "b");
        let fields: std::collections::HashMap<_, _> = p.task.to_fields().into_iter().collect();
        assert_eq!(fields["payload"], r#"{"a":"b"}"#);
    }

    #[test]
    fn edits_are_checked_as_published_fields_are() {
        for (body, code) in [
            (serde_json::json!({"to":"no/slash"}), "invalid_agent"),
            (serde_json::json!({"from":""}), "invalid_agent"),
            (serde_json::json!({"type":"two words"}), "invalid_type"),
            (serde_json::json!({"id":""}), "invalid_body"),
            (serde_json::json!({"payload":[1]}), "invalid_payload"),
        ] {
            let request: RetryRequest = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(Edits::of(request).unwrap_err().code(), code, "{body}");
        }
        let all = edits(
            serde_json::json!({"id":"t9","from":"blue","to":"pink","type":"review",
                                           "created":7,"payload":{}}),
        );
        let letter = DeadLetter {
            original_missing: cortex_shared::TaskMessage::FIELDS
                .iter()
                .filter(|f| **f != "priority")
                .map(|f| f.to_string())
                .collect(),
            ..letter("")
        };
        let task = plan(EntryId::new(1, 0), &letter, &all).unwrap().task;
        assert_eq!(
            (
                task.id.as_str(),
                task.from.as_str(),
                task.to.as_str(),
                task.task_type.as_str()
            ),
            ("t9", "blue", "pink", "review")
        );
        assert_eq!(task.created, 7);
    }

    #[test]
    fn bulk_requests_take_ids_or_a_filter() {
        let both = BulkRequest {
            ids: Some(vec![]),
            filter: Some(Default::default()),
            priority: None,
        };
        assert_eq!(target(&both).err().unwrap().code(), "invalid_body");
        assert_eq!(
            target(&BulkRequest::default()).err().unwrap().code(),
            "invalid_body"
        );
        let ids = BulkRequest {
            ids: Some(vec!["1-0".into(), "1-0".into(), "2".into()]),
            ..BulkRequest::default()
        };
        match target(&ids).ok().unwrap() {
            Target::Ids(ids) => assert_eq!(ids, [EntryId::new(1, 0), EntryId::new(2, 0)]),
            Target::Filter(_) => panic!("ids expected"),
        }
        let bad = BulkRequest {
            ids: Some(vec!["x".into()]),
            ..BulkRequest::default()
        };
        assert_eq!(target(&bad).err().unwrap().code(), "invalid_id");
    }
}
