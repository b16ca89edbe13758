//! Changing the dead letter queue: retrying letters (their task republished) and
//! deleting them, one or in bulk, for the HTTP API and the CLI alike.
//!
//! # Each letter ends in exactly one place
//!
//! A retry republishes the task and removes the letter in one server-side script,
//! which first checks that the letter is still there: a crash leaves it either in the
//! DLQ or back in its stream, never in both or neither, and of two concurrent retries
//! of one letter exactly one republishes it (the other finds it gone). The same script
//! leaves a tombstone ([`keys::tombstone`], one hour) so that later attempts are told
//! "already retried" rather than "not found", and appends an event to
//! [`keys::EVENTS`] so that every relay's watchers hear of it. Deletion works the same
//! way. Bulk actions run the script per [`IDS_PER_EVENT`] letters.
//!
//! The retried task keeps its fields (its `id` too) and gains `retry_count` (retries
//! from the DLQ so far: one more than the `retry_count` of the entry it died as, when
//! that entry is still in its stream), `edited` (`true` when a task field was
//! replaced) and `retried_from` (the DLQ id); readers ignore fields they do not know.
//!
//! A letter of a task for every agent (`to` empty) that names the agent that failed it
//! (`failed_agent`) is retried to that agent alone, not to every agent again: the
//! republished task's `to` is that agent and it carries `original_to` (empty), unless
//! the retry's edits set `to` themselves.

use super::events::{EVENTS_MAXLEN, IDS_PER_EVENT};
use super::letters::{gone, letters_of, read_letter, select_all, Selection};
use super::DlqError;
use crate::store::keys;
use crate::store::lifecycle::{LifecycleSettings, ScriptArgs, LUA};
use crate::store::value::{int, text};
use cortex_shared::rest::Retried;
use cortex_shared::{DeadLetter, EntryId, Priority, TaskMessage};
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};
use std::sync::LazyLock;

/// How long a tombstone says "already retried/deleted", in seconds.
const TOMBSTONE_SECONDS: u64 = 3600;

/// Lua: the value of field `name` among an entry's fields (`''` when absent).
const FIELD_OF: &str = r#"
local function field_of(f, name)
  for j = 1, #f, 2 do
    if f[j] == name then return f[j + 1] end
  end
  return ''
end
"#;

/// KEYS: DLQ, events stream, the four task streams (critical … low), then one
/// tombstone key per letter. ARGV: tombstone seconds, events maxlen, the lifecycle
/// settings ([`ScriptArgs`]), then per letter: DLQ id, target stream (1-4), original
/// stream (0 unknown, 1-4), original entry id, edited (`true`/`false`), field count,
/// then the task's fields.
/// Returns per letter: status (`ok`, or why not: `retried`, `deleted`, `missing`),
/// new entry id, retry count. Each letter retried gets a `retried` record, of the entry
/// it died as (from the letter's `original_*` fields; the new entry when it names none),
/// for its `failed_agent` when it has one.
static RETRY: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r#"{LUA}{FIELD_OF}
local out = {{}}
local done = {{}}
local L, a = lifecycle_args(3)
local k = 7
while a <= #ARGV do
  local id = ARGV[a]
  local target = tonumber(ARGV[a + 1])
  local orig = tonumber(ARGV[a + 2])
  local orig_id = ARGV[a + 3]
  local edited = ARGV[a + 4]
  local n = tonumber(ARGV[a + 5])
  local fields = {{}}
  for j = 1, n do fields[j] = ARGV[a + 5 + j] end
  a = a + 6 + n
  local tomb = KEYS[k]
  k = k + 1
  local letter = redis.call('XRANGE', KEYS[1], id, id)
  if #letter == 0 then
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
    if L.on then
      local lf = letter[1][2]
      local stream, entry_id = field_of(lf, 'original_stream'), field_of(lf, 'original_entry_id')
      if stream == '' or entry_id == '' then stream, entry_id = KEYS[2 + target], entry end
      local detail = '{{"dlq_id":' .. cjson.encode(id) .. ',"stream":' ..
        cjson.encode(KEYS[2 + target]) .. ',"entry_id":' .. cjson.encode(entry) .. '}}'
      lifecycle(L, L.at_ms, 'retried', field_of(lf, 'original_id'), stream, entry_id,
        field_of(lf, 'failed_agent'), '', detail, '')
    end
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
"#
    ))
});

/// KEYS: DLQ, events stream, then one tombstone key per letter. ARGV: tombstone
/// seconds, events maxlen, the lifecycle settings ([`ScriptArgs`]), then the DLQ ids.
/// Returns per letter `ok`, or why not (`retried`, `deleted`, `missing`). Each letter
/// deleted gets a `deleted` record, as a retried one gets its `retried` record.
static DELETE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r#"{LUA}{FIELD_OF}
local out = {{}}
local done = {{}}
local L, first = lifecycle_args(3)
for j = first, #ARGV do
  local id = ARGV[j]
  local tomb = KEYS[j - first + 3]
  local letter = {{}}
  if L.on then letter = redis.call('XRANGE', KEYS[1], id, id) end
  if redis.call('XDEL', KEYS[1], id) == 1 then
    redis.call('SET', tomb, 'deleted', 'EX', ARGV[1])
    if #letter > 0 then
      local lf = letter[1][2]
      lifecycle(L, L.at_ms, 'deleted', field_of(lf, 'original_id'), field_of(lf, 'original_stream'),
        field_of(lf, 'original_entry_id'), field_of(lf, 'failed_agent'), '',
        '{{"dlq_id":' .. cjson.encode(id) .. '}}', '')
    end
    table.insert(done, id)
    table.insert(out, 'ok')
  else
    table.insert(out, redis.call('GET', tomb) or 'missing')
  end
end
if #done > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
    'kind', 'dlq', 'action', 'deleted', 'ids', table.concat(done, ' '))
end
return out
"#
    ))
});

/// What a retry changes: the priority, and task fields replaced (checked by the
/// caller, as the text they are written as).
#[derive(Debug, Clone, Default)]
pub(crate) struct Edits {
    /// The priority (and stream) to retry at, instead of the letter's.
    pub(crate) priority: Option<Priority>,
    /// Task fields (`id`, `from`, `to`, `type`, `payload`, `created`) replaced.
    pub(crate) fields: Vec<(&'static str, String)>,
}

/// A letter ready to retry: the task to republish, and where.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    dlq_id: EntryId,
    task: TaskMessage,
    original: Option<(Priority, String)>,
    edited: bool,
    /// Fields the republished entry carries beyond the task's (`original_to`).
    extra: Vec<(&'static str, String)>,
}

impl Planned {
    /// The fields written to the task stream.
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = self.task.to_fields();
        fields.extend(self.extra.iter().cloned());
        fields
    }
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

/// The task `letter` stands for, with `edits` applied;
/// [`DlqError::NotRetryable`] when it does not decode: a field the entry lacked or that
/// was not UTF-8 (the letter's `original_missing`, `original_bytes`) must be given by
/// the edits.
pub(crate) fn plan(
    dlq_id: EntryId,
    letter: &DeadLetter,
    edits: &Edits,
) -> Result<Planned, DlqError> {
    let edited = !edits.fields.is_empty();
    let mut fields = letter.clone();
    for (field, text) in &edits.fields {
        fields.set_original(field, text.clone());
    }
    if let Some(priority) = edits.priority {
        fields.set_original("priority", priority.as_str().to_owned());
    }
    fields.original_stream = None;
    let mut task = fields
        .original_task()
        .map_err(|error| DlqError::NotRetryable { id: dlq_id, error })?;
    let mut extra = Vec::new();
    let to_edited = edits.fields.iter().any(|(field, _)| *field == "to");
    if let (true, false, Some(agent)) = (task.to.is_empty(), to_edited, &letter.failed_agent) {
        if cortex_shared::AgentName::parse(agent).is_ok() {
            extra.push((
                "original_to",
                std::mem::replace(&mut task.to, agent.clone()),
            ));
        }
    }
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
        extra,
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
    lifecycle: &LifecycleSettings,
) -> RedisResult<Vec<Outcome>> {
    let mut invocation = RETRY.key(keys::DLQ);
    invocation.key(keys::EVENTS);
    for stream in keys::task_streams() {
        invocation.key(stream);
    }
    invocation.arg(TOMBSTONE_SECONDS).arg(EVENTS_MAXLEN);
    ScriptArgs(lifecycle).add(&mut invocation);
    for letter in letters {
        invocation.key(keys::tombstone(&letter.dlq_id));
        let fields = letter.fields();
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
            let status = text(&r[0]).unwrap_or_default();
            if status == "ok" {
                Outcome::Retried {
                    entry_id: r.get(1).and_then(text).unwrap_or_default().into_owned(),
                    retry_count: r.get(2).and_then(int).unwrap_or(1).max(0) as u64,
                }
            } else {
                Outcome::Gone(Some(status.into_owned()).filter(|s| s != "missing"))
            }
        })
        .collect())
}

/// Runs [`DELETE`] for `ids` (at most [`IDS_PER_EVENT`]); per id, `None` when deleted,
/// else why it was not there (`Some(None)`: missing, no tombstone).
async fn delete_batch<C: ConnectionLike>(
    conn: &mut C,
    ids: &[EntryId],
    lifecycle: &LifecycleSettings,
) -> RedisResult<Vec<Option<Option<String>>>> {
    let mut invocation = DELETE.key(keys::DLQ);
    invocation.key(keys::EVENTS);
    invocation.arg(TOMBSTONE_SECONDS).arg(EVENTS_MAXLEN);
    ScriptArgs(lifecycle).add(&mut invocation);
    for id in ids {
        invocation.key(keys::tombstone(id)).arg(id.to_string());
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

/// Retries letter `id` with `edits`: its task republished, the letter removed, a
/// tombstone left and the event appended, atomically. Not in the DLQ:
/// [`DlqError::NotFound`], or (tombstone) `AlreadyRetried`/`AlreadyDeleted`.
pub(crate) async fn retry<C: ConnectionLike>(
    conn: &mut C,
    id: EntryId,
    edits: &Edits,
    lifecycle: &LifecycleSettings,
) -> Result<Retried, DlqError> {
    let Some(letter) = read_letter(conn, &id).await? else {
        return Err(gone(conn, &id).await?);
    };
    let planned = plan(id, &letter, edits)?;
    let outcome = retry_batch(conn, std::slice::from_ref(&planned), lifecycle).await?;
    match outcome.into_iter().next() {
        Some(Outcome::Retried {
            entry_id,
            retry_count,
        }) => Ok(Retried {
            dlq_id: id.to_string(),
            stream: keys::task_stream(planned.task.priority).to_owned(),
            task_id: planned.task.id,
            entry_id,
            retry_count,
            edited: planned.edited,
        }),
        // Another request took it between the read and the script.
        Some(Outcome::Gone(why)) => Err(DlqError::gone(
            id,
            Some(why.as_deref().unwrap_or("retried")),
        )),
        None => Err(DlqError::Redis(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "the retry script returned nothing",
        )))),
    }
}

/// Deletes letter `id`, leaving a tombstone and appending the event, atomically. Not
/// in the DLQ: as for [`retry`].
pub(crate) async fn delete<C: ConnectionLike>(
    conn: &mut C,
    id: EntryId,
    lifecycle: &LifecycleSettings,
) -> Result<(), DlqError> {
    match delete_batch(conn, &[id], lifecycle)
        .await?
        .into_iter()
        .next()
    {
        Some(None) => Ok(()),
        Some(Some(why)) => Err(DlqError::gone(id, why.as_deref())),
        None => Err(DlqError::Redis(redis::RedisError::from((
            redis::ErrorKind::UnexpectedReturnType,
            "the delete script returned nothing",
        )))),
    }
}

/// What a bulk action selects: ids (checked, without duplicates), or a filter.
#[derive(Debug)]
pub(crate) enum Target {
    /// These letters.
    Ids(Vec<EntryId>),
    /// Every letter the selection selects.
    Filter(Selection),
}

/// What a bulk action came to: each letter selected is counted once, as acted on,
/// gone (not in the DLQ, e.g. another request took it) or failed (left in the DLQ).
#[derive(Debug, Default)]
pub(crate) struct Bulk {
    /// Letters selected.
    pub(crate) matched: u64,
    /// Retried or deleted.
    pub(crate) acted: u64,
    /// Not in the DLQ when acted on.
    pub(crate) gone: u64,
    /// Left in the DLQ, and why (letters whose task does not decode).
    pub(crate) failures: Vec<(EntryId, DlqError)>,
}

/// Retries the letters `target` selects, at `priority` when given.
pub(crate) async fn bulk_retry<C: ConnectionLike>(
    conn: &mut C,
    target: Target,
    priority: Option<Priority>,
    lifecycle: &LifecycleSettings,
) -> RedisResult<Bulk> {
    let (letters, gone) = match target {
        Target::Ids(ids) => letters_of(conn, &ids).await?,
        Target::Filter(selection) => (select_all(conn, &selection).await?, 0),
    };
    let mut bulk = Bulk {
        matched: letters.len() as u64 + gone,
        gone,
        ..Bulk::default()
    };
    let edits = Edits {
        priority,
        ..Edits::default()
    };
    let mut planned = Vec::with_capacity(letters.len());
    for (id, letter) in &letters {
        match plan(*id, letter, &edits) {
            Ok(p) => planned.push(p),
            Err(e) => bulk.failures.push((*id, e)),
        }
    }
    for batch in planned.chunks(IDS_PER_EVENT) {
        for outcome in retry_batch(conn, batch, lifecycle).await? {
            match outcome {
                Outcome::Retried { .. } => bulk.acted += 1,
                Outcome::Gone(_) => bulk.gone += 1,
            }
        }
    }
    Ok(bulk)
}

/// Deletes the letters `target` selects.
pub(crate) async fn bulk_delete<C: ConnectionLike>(
    conn: &mut C,
    target: Target,
    lifecycle: &LifecycleSettings,
) -> RedisResult<Bulk> {
    let ids: Vec<EntryId> = match target {
        Target::Ids(ids) => ids,
        Target::Filter(selection) => select_all(conn, &selection)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect(),
    };
    let mut bulk = Bulk {
        matched: ids.len() as u64,
        ..Bulk::default()
    };
    for batch in ids.chunks(IDS_PER_EVENT) {
        for outcome in delete_batch(conn, batch, lifecycle).await? {
            match outcome {
                None => bulk.acted += 1,
                Some(_) => bulk.gone += 1,
            }
        }
    }
    Ok(bulk)
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

    fn fields(fields: &[(&'static str, &str)]) -> Edits {
        Edits {
            priority: None,
            fields: fields.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        }
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

        let edits = Edits {
            priority: Some(Priority::Critical),
            ..fields(&[("payload", r#"{"b":2}"#)])
        };
        let p = plan(id, &letter(r#"{"a":1}"#), &edits).unwrap();
        assert_eq!(p.task.priority, Priority::Critical);
        assert_eq!(p.task.payload["b"], 2);
        assert!(p.edited);
        assert_eq!(stream_index(Priority::Critical), 1);
        assert_eq!(stream_index(Priority::Low), 4);
        // A priority alone is no edit.
        let p = plan(
            id,
            &letter("{}"),
            &Edits {
                priority: Some(Priority::High),
                ..Edits::default()
            },
        )
        .unwrap();
        assert!(!p.edited);
    }

    #[test]
    fn a_task_for_every_agent_is_retried_to_the_agent_that_failed_it() {
        let id = EntryId::new(9, 0);
        let broadcast = DeadLetter {
            original_to: String::new(),
            failed_agent: Some("blue".into()),
            ..letter("{}")
        };
        let p = plan(id, &broadcast, &Edits::default()).unwrap();
        assert_eq!(p.task.to, "blue");
        let fields = p.fields();
        assert!(fields.contains(&("to", "blue".to_owned())), "{fields:?}");
        assert_eq!(fields.last(), Some(&("original_to", String::new())));
        // The retry's own `to` wins; and so does a letter's own addressee.
        let p = plan(id, &broadcast, &fields_of(&[("to", "green")])).unwrap();
        assert_eq!((p.task.to.as_str(), p.extra.len()), ("green", 0));
        let p = plan(id, &broadcast, &fields_of(&[("to", "")])).unwrap();
        assert_eq!((p.task.to.as_str(), p.extra.len()), ("", 0));
        let addressed = DeadLetter {
            failed_agent: Some("blue".into()),
            ..letter("{}")
        };
        let p = plan(id, &addressed, &Edits::default()).unwrap();
        assert_eq!((p.task.to.as_str(), p.extra.len()), ("pink", 0));
        // An old letter (no failed_agent) goes to every agent, as it always did.
        let old = DeadLetter {
            original_to: String::new(),
            ..letter("{}")
        };
        assert_eq!(plan(id, &old, &Edits::default()).unwrap().task.to, "");
        // A failed_agent that is not an agent name (bytes written by hand) is ignored.
        let junk = DeadLetter {
            failed_agent: Some("not a name".into()),
            ..old
        };
        assert_eq!(plan(id, &junk, &Edits::default()).unwrap().task.to, "");
    }

    fn fields_of(f: &[(&'static str, &str)]) -> Edits {
        fields(f)
    }

    #[test]
    fn a_letter_whose_task_does_not_decode_needs_an_edit() {
        let id = EntryId::new(9, 0);
        let err = plan(id, &letter("{broken"), &Edits::default()).unwrap_err();
        assert_eq!(err.code(), "not_retryable");
        assert!(plan(id, &letter("{broken"), &fields(&[("payload", "{}")])).is_ok());
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
        assert!(err.to_string().contains("field `to`: missing"), "{err}");
        // A priority alone does not supply it.
        let priority = Edits {
            priority: Some(Priority::High),
            ..Edits::default()
        };
        assert_eq!(
            plan(id, &no_to, &priority).unwrap_err().code(),
            "not_retryable"
        );
        let p = plan(id, &no_to, &fields(&[("to", "harold")])).unwrap();
        assert_eq!(p.task.to, "harold");
        assert!(p.edited);
        // Empty (as `*` is written) supplies it too: every agent, on purpose.
        let p = plan(id, &no_to, &fields(&[("to", "")])).unwrap();
        assert_eq!(p.task.to, "");

        // A payload that was not UTF-8: its lossy text is not retried.
        let bytes = DeadLetter {
            original_payload: "{\"a\":\"\u{fffd}\"}".into(),
            original_bytes: [("payload".to_owned(), b"{\"a\":\"\xff\"}".to_vec())].into(),
            ..letter("{}")
        };
        let err = plan(id, &bytes, &Edits::default()).unwrap_err();
        assert!(
            err.to_string().contains("field `payload`: not UTF-8"),
            "{err}"
        );
        let p = plan(id, &bytes, &fields(&[("payload", r#"{"a":"b"}"#)])).unwrap();
        assert_eq!(p.task.payload["a"], "b");
        let fields: std::collections::HashMap<_, _> = p.task.to_fields().into_iter().collect();
        assert_eq!(fields["payload"], r#"{"a":"b"}"#);
    }

    #[test]
    fn every_task_field_can_be_supplied() {
        let all = fields(&[
            ("id", "t9"),
            ("from", "blue"),
            ("to", "pink"),
            ("type", "review"),
            ("created", "7"),
            ("payload", "{}"),
        ]);
        let letter = DeadLetter {
            original_missing: TaskMessage::FIELDS
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
}
