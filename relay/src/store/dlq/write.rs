//! Writing dead letters: the letter goes to `cortex:tasks:dlq` and the task is acked in
//! its group in one server-side script, so a crash can leave it pending (and it is
//! dead-lettered again later) but never acked without a letter, nor lettered twice for
//! a malformed entry that several groups read.

use crate::store::keys;
use crate::store::lifecycle::{LifecycleSettings, ScriptArgs, LUA};
use cortex_shared::lifecycle::LifecycleRecord;
use cortex_shared::DeadLetter;
use redis::aio::ConnectionLike;
use std::sync::LazyLock;

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
