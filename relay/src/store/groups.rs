//! Agents' consumer groups as the relay reads them beyond `XINFO`
//! ([`super::xinfo`]): a group's oldest pending entry, and when the relay's consumers
//! last said they were alive ([`super::keys::consumer_alive`]).

use cortex_shared::EntryId;
use redis::aio::ConnectionLike;
use redis::RedisResult;

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
