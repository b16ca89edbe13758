//! Writing dead letters: the letter goes to `cortex:tasks:dlq` and the task is acked in
//! its group in one server-side script, so a crash can leave it pending (and it is
//! dead-lettered again later) but never acked without a letter, nor lettered twice for
//! a malformed entry that several groups read.

use crate::store::keys;
use cortex_shared::DeadLetter;
use redis::aio::ConnectionLike;
use std::sync::LazyLock;

/// KEYS: the DLQ, the task's stream, a "once" marker key (or the stream again when
/// none). ARGV: group, entry id, whether to use the marker, then the letter's fields.
/// Writes the letter (unless the marker says it was written already), then acks.
static DEAD_LETTER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local write = true
if ARGV[3] == '1' then
  write = redis.call('SET', KEYS[3], '1', 'NX', 'EX', 604800) ~= false
end
if write then
  redis.call('XADD', KEYS[1], '*', unpack(ARGV, 4))
end
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
return write and 1 or 0
"#,
    )
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
/// atomic step. Returns whether a letter was written (false: another group wrote it).
pub async fn dead_letter<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
    entry_id: &str,
    letter: &DeadLetter,
    once: Once,
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
    for (field, value) in letter.to_fields() {
        invocation.arg(field).arg(value);
    }
    let written: i64 = invocation.invoke_async(conn).await?;
    Ok(written == 1)
}
