//! Agents' consumer groups as the relay reads them beyond `XINFO`
//! ([`super::xinfo`]): a group's oldest pending entry, when the relay's consumers
//! last said they were alive ([`super::keys::consumer_alive`]), and removing a
//! consumer that holds nothing ([`remove_consumer`]).

use cortex_shared::EntryId;
use redis::aio::ConnectionLike;
use redis::RedisResult;
use std::sync::LazyLock;

/// KEYS: streams, then (optionally) an alive key. ARGV: the group, the consumer, how
/// many of KEYS are streams. If the consumer has nothing pending in the group on any
/// of the streams (`XPENDING … - + 1 <consumer>`; a stream or group that is not there
/// holds nothing), removes it from the group on each (`XGROUP DELCONSUMER`, which
/// would drop what it held) and deletes the alive key, and returns 1; else changes
/// nothing and returns 0. One script: nothing can be delivered to it between the
/// check and the removal.
static REMOVE_CONSUMER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local group, consumer, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
for i = 1, n do
  local held = redis.pcall('XPENDING', KEYS[i], group, '-', '+', 1, consumer)
  if type(held) == 'table' and held.err == nil and #held > 0 then return 0 end
end
for i = 1, n do
  redis.pcall('XGROUP', 'DELCONSUMER', KEYS[i], group, consumer)
end
if #KEYS > n then redis.call('DEL', KEYS[n + 1]) end
return 1
"#,
    )
});

/// Removes `consumer` from `group` on every one of `streams`, and deletes `alive_key`
/// (its [`super::keys::consumer_alive`]) if given, unless it has something pending
/// there ([`REMOVE_CONSUMER`]); whether it was removed.
pub(crate) async fn remove_consumer<C: ConnectionLike>(
    conn: &mut C,
    streams: &[&str],
    group: &str,
    consumer: &str,
    alive_key: Option<&str>,
) -> RedisResult<bool> {
    let mut invocation = REMOVE_CONSUMER.prepare_invoke();
    for stream in streams {
        invocation.key(*stream);
    }
    if let Some(key) = alive_key {
        invocation.key(key);
    }
    invocation.arg(group).arg(consumer).arg(streams.len());
    let removed: i64 = invocation.invoke_async(conn).await?;
    Ok(removed == 1)
}

/// The oldest entry pending in `group` of `stream` (`XPENDING … - + 1`: one entry
/// of the pending list, however many there are and however many consumers hold
/// them); `None` when nothing is pending.
pub(crate) async fn oldest_pending<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    group: &str,
) -> RedisResult<Option<EntryId>> {
    let page: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .arg("-")
        .arg("+")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(page.ids.first().and_then(|p| p.id.parse().ok()))
}

/// When each of `consumers` (agent, consumer) last said it was alive (unix ms), if its
/// key is still there.
pub(crate) async fn last_alive<C: ConnectionLike>(
    conn: &mut C,
    consumers: &[(String, String)],
) -> RedisResult<Vec<Option<u64>>> {
    if consumers.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = consumers
        .iter()
        .map(|(agent, consumer)| super::keys::consumer_alive(agent, consumer))
        .collect();
    redis::cmd("MGET").arg(&keys).query_async(conn).await
}
