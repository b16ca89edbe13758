//! Writing dead letters: the letter goes to `cortex:tasks:dlq` and the task is acked in
//! its group in one server-side script, so a crash can leave it pending (and it is
//! dead-lettered again later) but never acked without a letter, nor lettered twice for
//! a malformed entry that several groups read.

use crate::store::keys;
use crate::store::lifecycle::{LifecycleSettings, ScriptArgs, LUA};
use crate::store::value::bytes;
use cortex_shared::lifecycle::{LifecycleEvent, LifecycleRecord};
use cortex_shared::{Attempt, DeadLetter};
use redis::aio::ConnectionLike;
use redis::Value;
use std::sync::LazyLock;

/// What an attempt reclaimed for want of an ack failed of.
pub(crate) const NOT_ACKED_IN_TIME: &str = "not acked within the visibility timeout";

/// The failed attempts at entry `entry_id` of `stream` in `agent`'s group among a
/// task's lifecycle records (`items`, the list `cortex:task:<id>`, README "Redis
/// layout"), oldest first: each `nacked` (its `detail.error`) and each `reclaimed`
/// (the consumer it was taken from, [`NOT_ACKED_IN_TIME`]). An item that is not a
/// record is skipped: any bytes may be in Redis.
pub(crate) fn attempts_of(
    items: &[Value],
    stream: &str,
    entry_id: &str,
    agent: &str,
) -> Vec<Attempt> {
    let detail = |r: &LifecycleRecord, key: &str| {
        r.detail
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    items
        .iter()
        .filter_map(|item| crate::store::lifecycle::decode_item(bytes(item)?))
        .filter(|r| {
            r.stream == stream && r.entry_id == entry_id && r.agent.as_deref() == Some(agent)
        })
        .filter_map(|r| {
            let (consumer, error) = match r.event {
                LifecycleEvent::Nacked => (
                    r.consumer.clone().unwrap_or_default(),
                    detail(&r, "error").unwrap_or_default(),
                ),
                LifecycleEvent::Reclaimed => (
                    detail(&r, "from").unwrap_or_default(),
                    NOT_ACKED_IN_TIME.to_owned(),
                ),
                _ => return None,
            };
            Some(Attempt {
                at_ms: r.at_ms,
                consumer,
                error,
            })
        })
        .collect()
}

/// KEYS: the DLQ, the task's stream, a "once" marker key (or the stream again when
/// none). ARGV: group, entry id, whether to use the marker, the lifecycle settings
/// ([`ScriptArgs`]), the `dead_lettered` record's task id, agent, consumer and detail
/// (JSON text, without `dlq_id`), then the letter's fields. Writes the letter (unless
/// the marker says it was written already), acks, then writes the record (with the
/// letter's id) if it wrote the letter.
static DEAD_LETTER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r#"{LUA}
local L, at = lifecycle_args(4)
local write = true
if ARGV[3] == '1' then
  write = redis.call('SET', KEYS[3], '1', 'NX', 'EX', 604800) ~= false
end
local dlq_id = ''
if write then
  dlq_id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, at + 4))
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
if write then
  lifecycle(L, L.at_ms, 'dead_lettered', ARGV[at], KEYS[2], ARGV[2], ARGV[at + 1], ARGV[at + 2],
    lifecycle_detail(ARGV[at + 3], 'dlq_id', dlq_id), '')
end
return write and 1 or 0
"#
    ))
});

/// How many copies of one dead letter may exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once {
    /// One per consumer group: a task one agent failed (each agent's failure counts).
    PerGroup,
    /// One in all: an entry no agent can read (malformed), whichever group sees it
    /// first.
    Global,
}

/// Writes `letter` for entry `entry_id` of `stream`, then acks it in `group`, in one
/// atomic step; with `record` (and `lifecycle` on), its `dead_lettered` record too, its
/// `detail.dlq_id` the letter's id. Returns whether a letter was written (false: another
/// group wrote it, and no record is written).
#[allow(clippy::too_many_arguments)] // one script's inputs, each needed
pub async fn dead_letter<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    entry_id: &str,
    letter: &DeadLetter,
    once: Once,
    lifecycle: &LifecycleSettings,
    record: Option<&LifecycleRecord>,
) -> redis::RedisResult<bool> {
    let marker = keys::once_marker(stream, entry_id);
    let mut invocation = DEAD_LETTER.key(keys::DLQ);
    invocation.key(stream);
    invocation.key(if once == Once::Global {
        marker.as_str()
    } else {
        stream
    });
    invocation
        .arg(group)
        .arg(entry_id)
        .arg(if once == Once::Global { "1" } else { "0" });
    let off = LifecycleSettings::off();
    let settings = if record.is_some() { lifecycle } else { &off };
    ScriptArgs(settings).add(&mut invocation);
    match record {
        Some(record) => {
            let detail = if record.detail.is_empty() {
                String::new()
            } else {
                serde_json::Value::Object(record.detail.clone()).to_string()
            };
            invocation
                .arg(&record.task_id)
                .arg(record.agent.as_deref().unwrap_or_default())
                .arg(record.consumer.as_deref().unwrap_or_default())
                .arg(detail);
        }
        None => {
            invocation.arg("").arg("").arg("").arg("");
        }
    }
    for (field, value) in letter.to_fields() {
        invocation.arg(field).arg(value);
    }
    let written: i64 = invocation.invoke_async(conn).await?;
    Ok(written == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: &str) -> Value {
        Value::BulkString(json.as_bytes().to_vec())
    }

    #[test]
    fn attempts_are_the_nacks_and_reclaims_of_this_entry_in_this_group() {
        let s = "cortex:tasks:high";
        let items = [
            item(&format!(
                r#"{{"at_ms":1,"event":"delivered","task_id":"t","stream":"{s}","entry_id":"5-0","agent":"pink","consumer":"p1"}}"#
            )),
            item(&format!(
                r#"{{"at_ms":2,"event":"nacked","task_id":"t","stream":"{s}","entry_id":"5-0","agent":"pink","consumer":"p1","detail":{{"error":"boom"}}}}"#
            )),
            // Another agent's group, another entry with the same task id: not ours.
            item(&format!(
                r#"{{"at_ms":3,"event":"nacked","task_id":"t","stream":"{s}","entry_id":"5-0","agent":"blue","consumer":"b1","detail":{{"error":"x"}}}}"#
            )),
            item(&format!(
                r#"{{"at_ms":4,"event":"nacked","task_id":"t","stream":"{s}","entry_id":"9-0","agent":"pink","consumer":"p1","detail":{{"error":"y"}}}}"#
            )),
            // Junk of any kind is skipped.
            Value::BulkString(vec![0xff, 0xfe]),
            item("[1,2]"),
            item(r#"{"event":"nacked"}"#),
            Value::Int(7),
            item(&format!(
                r#"{{"at_ms":5,"event":"reclaimed","task_id":"t","stream":"{s}","entry_id":"5-0","agent":"pink","consumer":"p2","detail":{{"from":"p1"}}}}"#
            )),
            // A nack without an error still counts.
            item(&format!(
                r#"{{"at_ms":6,"event":"nacked","task_id":"t","stream":"{s}","entry_id":"5-0","agent":"pink","consumer":"p2"}}"#
            )),
        ];
        let attempts = attempts_of(&items, s, "5-0", "pink");
        let got: Vec<(u64, &str, &str)> = attempts
            .iter()
            .map(|a| (a.at_ms, a.consumer.as_str(), a.error.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (2, "p1", "boom"),
                (5, "p1", NOT_ACKED_IN_TIME),
                (6, "p2", "")
            ]
        );
        assert!(attempts_of(&items, s, "5-0", "green").is_empty());
        assert!(attempts_of(&[], s, "5-0", "pink").is_empty());
    }
}
