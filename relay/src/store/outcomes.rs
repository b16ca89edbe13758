//! Agents' outcome counters (README, "Task lifecycle"): per agent and minute, a hash
//! `cortex:outcomes:<agent>:<minute unix ms>` of `done`, `failed`, `dead` and
//! `timed_out`, which the lifecycle scripts count up as they write `acked`, `nacked`,
//! `dead_lettered` and `reclaimed` records ([`super::lifecycle::LUA`]: one `HINCRBY` per
//! outcome, agent and minute per script, however many records). Each minute's hash
//! expires [`KEEP`] after its last count, so an hour is always there to read. Read back
//! here: the hour's 60 hashes in one pipeline.

use super::keys;
use super::value::{int, text};
use cortex_shared::lifecycle::{AgentOutcomes, MinuteOutcomes, OutcomeCounts};
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};
use std::time::Duration;

/// How long a minute's counters are kept after its last count: an hour and two
/// minutes, so that the last hour is whole when read.
pub(crate) const KEEP: Duration = Duration::from_secs(3_720);

/// Minutes read: the current one and the 59 before it.
const MINUTES: u64 = 60;

/// `agent`'s outcomes over the hour before `now_ms`, one round trip (`HGETALL` of each
/// minute's hash, pipelined). A minute with no hash, or a hash of another type, counts
/// nothing; a field that is not a count is skipped.
pub(crate) async fn read<C: ConnectionLike>(
    conn: &mut C,
    agent: &str,
    now_ms: u64,
) -> RedisResult<AgentOutcomes> {
    let current = now_ms / 60_000 * 60_000;
    let minutes: Vec<u64> = (0..MINUTES)
        .rev()
        .filter_map(|back| current.checked_sub(back * 60_000))
        .collect();
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for minute in &minutes {
        pipe.cmd("HGETALL").arg(keys::outcomes(agent, *minute));
    }
    // One reply per minute; a key of another type answers WRONGTYPE, which reads as
    // nothing (not a failure of the rest).
    let replies: Vec<RedisResult<Value>> = pipe.query_async(conn).await?;
    let counted = minutes
        .iter()
        .zip(replies)
        .filter_map(|(minute, reply)| {
            let counts = counts(&reply.ok()?)?;
            Some(MinuteOutcomes {
                minute_ms: *minute,
                counts,
            })
        })
        .collect();
    Ok(AgentOutcomes::new(agent, now_ms, counted))
}

/// A minute's counts from its `HGETALL` reply; `None` for nothing counted.
fn counts(reply: &Value) -> Option<OutcomeCounts> {
    let pairs: Vec<(&Value, &Value)> = match reply {
        Value::Array(items) => items.chunks_exact(2).map(|p| (&p[0], &p[1])).collect(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        _ => return None,
    };
    let mut counts = OutcomeCounts::default();
    for (name, value) in pairs {
        let Some(n) = int(value).and_then(|n| u64::try_from(n).ok()) else {
            continue;
        };
        match text(name).as_deref() {
            Some("done") => counts.done = n,
            Some("failed") => counts.failed = n,
            Some("dead") => counts.dead = n,
            Some("timed_out") => counts.timed_out = n,
            _ => {}
        }
    }
    (counts != OutcomeCounts::default()).then_some(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn a_minutes_hash_reads_as_its_counts_and_anything_else_as_nothing() {
        let hash = Value::Array(vec![
            bulk("done"),
            bulk("12"),
            bulk("timed_out"),
            bulk("1"),
            bulk("failed"),
            bulk("lots"),
            bulk("\u{ff}odd"),
            bulk("3"),
        ]);
        assert_eq!(
            counts(&hash),
            Some(OutcomeCounts {
                done: 12,
                timed_out: 1,
                ..OutcomeCounts::default()
            })
        );
        assert_eq!(counts(&Value::Array(vec![])), None);
        assert_eq!(counts(&Value::Nil), None);
        assert_eq!(counts(&Value::Array(vec![bulk("done"), bulk("-4")])), None);
        assert_eq!(
            counts(&Value::Map(vec![(bulk("dead"), Value::Int(2))])),
            Some(OutcomeCounts {
                dead: 2,
                ..OutcomeCounts::default()
            })
        );
    }
}
