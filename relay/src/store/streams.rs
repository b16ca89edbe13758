//! Reading and trimming streams: ranges (`XRANGE`, `XREVRANGE`), the blocking `XREAD`
//! and the streams' tails, `XTRIM` (by age, or to a length above a floor in one
//! script), and finding the cortex streams (`SCAN`, never `KEYS`). Replies are walked
//! as Redis sent them ([`super::reply`]).
//!
//! Range bounds are given as Redis takes them: an id, `-`, `+`, or `(id` (exclusive).

use super::reply::{entries, range, Entry};
use super::xinfo::StreamInfo;
use cortex_shared::{EntryId, Heartbeat};
use redis::aio::ConnectionLike;
use redis::streams::StreamId;
use redis::{RedisResult, Value};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

/// Up to `count` entries of `stream` from `start` to `end`, oldest first (`None`: all).
pub(crate) async fn xrange<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    start: &str,
    end: &str,
    count: Option<u64>,
) -> RedisResult<Vec<Entry>> {
    let mut cmd = redis::cmd("XRANGE");
    cmd.arg(stream).arg(start).arg(end);
    if let Some(count) = count {
        cmd.arg("COUNT").arg(count);
    }
    range(cmd.query_async(conn).await?)
}

/// Up to `count` entries of `stream` from `end` down to `start`, newest first.
pub(crate) async fn xrevrange<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    end: &str,
    start: &str,
    count: u64,
) -> RedisResult<Vec<Entry>> {
    range(
        redis::cmd("XREVRANGE")
            .arg(stream)
            .arg(end)
            .arg(start)
            .arg("COUNT")
            .arg(count)
            .query_async(conn)
            .await?,
    )
}

/// The entry `id` of `stream`, if it is there.
pub(crate) async fn entry<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    id: &EntryId,
) -> RedisResult<Option<Entry>> {
    let id = id.to_string();
    Ok(xrange(conn, stream, &id, &id, None)
        .await?
        .into_iter()
        .next())
}

/// The entries `ids` of `stream` (one pipeline), each `None` when it is not there.
pub(crate) async fn entries_by_id<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    ids: &[EntryId],
) -> RedisResult<Vec<Option<Entry>>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in ids {
        pipe.cmd("XRANGE")
            .arg(stream)
            .arg(id.to_string())
            .arg(id.to_string());
    }
    let replies: Vec<Value> = pipe.query_async(conn).await?;
    replies
        .into_iter()
        .map(|reply| Ok(range(reply)?.into_iter().next()))
        .collect()
}

/// The id of the newest entry of each of `streams` (one pipeline), `0-0` for an empty
/// or absent one.
pub(crate) async fn tails<C: ConnectionLike>(
    conn: &mut C,
    streams: &[&str],
) -> RedisResult<Vec<String>> {
    let mut pipe = redis::pipe();
    for stream in streams {
        pipe.cmd("XREVRANGE")
            .arg(*stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
    }
    let replies: Vec<Value> = pipe.query_async(conn).await?;
    replies
        .into_iter()
        .map(|reply| {
            Ok(range(reply)?
                .into_iter()
                .next()
                .map_or_else(|| "0-0".to_owned(), |e| e.id))
        })
        .collect()
}

/// Up to `count` entries added to `streams` after `positions` (one per stream),
/// waiting up to `block` for some, each with its stream's name from `streams`. The
/// connection's response timeout must be longer than `block`.
pub(crate) async fn xread<C: ConnectionLike>(
    conn: &mut C,
    streams: &[&'static str],
    positions: &[String],
    count: usize,
    block: Duration,
) -> RedisResult<Vec<(&'static str, Entry)>> {
    let reply: Value = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(block.as_millis() as u64)
        .arg("STREAMS")
        .arg(streams)
        .arg(positions)
        .query_async(conn)
        .await?;
    entries(reply, |name| streams.iter().find(|s| **s == name).copied())
}

/// `XLEN stream`: its entries (0 when it does not exist).
pub(crate) async fn xlen<C: ConnectionLike>(conn: &mut C, stream: &str) -> RedisResult<u64> {
    redis::cmd("XLEN").arg(stream).query_async(conn).await
}

/// KEYS: a stream. ARGV: `maxlen`, then the floor (an entry id, or `''` for none).
/// Removes the stream's oldest whole nodes while at least `maxlen` entries stay and
/// (with a floor) every entry removed is older than the floor: `XTRIM MINID ~ floor
/// LIMIT excess` (or `MAXLEN ~ maxlen LIMIT excess`), `excess` being `XLEN - maxlen`
/// read in the same script. `LIMIT` counts entries and `~` removes whole nodes only,
/// so the cut never goes below `maxlen` nor reaches the floor, and what it reads does
/// not grow with `maxlen` (it reads no entry). The explicit `LIMIT` also lifts the
/// default one of `~` (100 nodes per call), which a stream growing faster than that
/// per round would outrun. Returns how many entries went.
static TRIM_KEEPING: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
if ARGV[2] == '' then
  return redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[1], 'LIMIT', excess)
end
return redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[2], 'LIMIT', excess)
"#,
    )
});

/// Trims `stream` to about `maxlen` entries (never fewer), removing nothing at or
/// after `floor`: one script ([`TRIM_KEEPING`]) whose work is the nodes it removes,
/// whatever `maxlen`. How many entries went.
pub(crate) async fn trim_keeping<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    maxlen: u64,
    floor: Option<EntryId>,
) -> RedisResult<u64> {
    TRIM_KEEPING
        .key(stream)
        .arg(maxlen)
        .arg(floor.map(|f| f.to_string()).unwrap_or_default())
        .invoke_async(conn)
        .await
}

/// `XTRIM stream MINID ~ minid`: whole nodes below `minid` go, nothing at or above
/// it; how many entries went.
pub(crate) async fn trim_minid<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    minid: EntryId,
) -> RedisResult<u64> {
    redis::cmd("XTRIM")
        .arg(stream)
        .arg("MINID")
        .arg("~")
        .arg(minid.to_string())
        .query_async(conn)
        .await
}

/// Every cortex stream (keys matching [`super::keys::ALL`] of type stream), by `SCAN`,
/// sorted.
pub(crate) async fn cortex_streams<C: ConnectionLike>(conn: &mut C) -> RedisResult<Vec<String>> {
    let mut found = BTreeSet::new();
    let mut cursor = "0".to_owned();
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("MATCH")
            .arg(super::keys::ALL)
            .arg("TYPE")
            .arg("stream")
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        found.extend(keys);
        if next == "0" {
            return Ok(found.into_iter().collect());
        }
        cursor = next;
    }
}

/// The read-only stream commands watch resume and history need (behind a trait so
/// that the decisions built on them, in `ws::watch`, are unit-tested without a
/// server).
pub trait StreamSource {
    /// `XINFO STREAM`; `None` when the stream does not exist.
    fn info(
        &mut self,
        stream: &str,
    ) -> impl Future<Output = RedisResult<Option<StreamInfo>>> + Send;

    /// Up to `count` entries with `after < id <= up_to` (`after` `None`: from the
    /// beginning), newest first.
    fn newest_first(
        &mut self,
        stream: &str,
        up_to: EntryId,
        after: Option<EntryId>,
        count: usize,
    ) -> impl Future<Output = RedisResult<Vec<StreamId>>> + Send;
}

impl StreamSource for redis::aio::ConnectionManager {
    async fn info(&mut self, stream: &str) -> RedisResult<Option<StreamInfo>> {
        super::xinfo::stream_info(self, stream).await
    }

    async fn newest_first(
        &mut self,
        stream: &str,
        up_to: EntryId,
        after: Option<EntryId>,
        count: usize,
    ) -> RedisResult<Vec<StreamId>> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        Ok(
            xrevrange(self, stream, &up_to.to_string(), &start, count as u64)
                .await?
                .into_iter()
                .map(Entry::into_stream_id)
                .collect(),
        )
    }
}

/// The heartbeats of `cortex:heartbeats` up to `upto` (`+`: all), newest first, at most
/// `count` read; those that do not decode are left out.
pub(crate) async fn newest_heartbeats<C: ConnectionLike>(
    conn: &mut C,
    upto: &str,
    count: u64,
) -> RedisResult<Vec<(EntryId, Heartbeat)>> {
    let entries = xrevrange(conn, super::keys::HEARTBEATS, upto, "-", count).await?;
    Ok(entries
        .iter()
        .filter_map(|entry| {
            let id = entry.id.parse::<EntryId>().ok()?;
            Some((id, Heartbeat::from_raw_fields(entry.raw_fields()).ok()?))
        })
        .collect())
}
