//! Stream trimming (README, Configuration: `--trim-maxlen`): keeps each stream near `trim_maxlen` entries, without ever
//! removing a task that some agent's group has not delivered yet or that is still
//! pending (delivered, not acked) — such a task would be lost.
//!
//! Each round, per task stream: the cut a plain `MAXLEN` would make, raised to the
//! oldest entry any group still needs, is applied as `XTRIM MINID ~` (approximate:
//! Redis trims whole nodes below the id, never anything at or above it). The heartbeat
//! stream and the DLQ have no groups and are cut at `MAXLEN ~`.
//!
//! The lifecycle stream (README, Task lifecycle) is cut by age every round, whether or
//! not `--trim-maxlen` is set: `XTRIM MINID ~ <now - max_age>` (its count is capped by
//! each `XADD`'s `MAXLEN ~`).

use crate::store::groups::oldest_pending;
use crate::store::keys::{self, DLQ, HEARTBEATS, LIFECYCLE};
use crate::store::lifecycle::LifecycleSettings;
use crate::store::streams::{trim_maxlen, trim_minid, xrevrange};
use crate::store::xinfo::groups;
use cortex_shared::Backoff;
use cortex_shared::EntryId;
use redis::aio::ConnectionManager;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often streams are trimmed.
const EVERY: Duration = Duration::from_secs(10);

/// Trims until cancelled: the task streams, heartbeats and DLQ to about `maxlen` when
/// it is set, and the lifecycle stream by `lifecycle.max_age` always.
pub async fn run(
    mut redis: ConnectionManager,
    maxlen: Option<u64>,
    lifecycle: LifecycleSettings,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(EVERY, Duration::from_secs(60));
    loop {
        let trimmed = async {
            if let Some(maxlen) = maxlen {
                trim_all(&mut redis, maxlen).await?;
            }
            trim_lifecycle(&mut redis, &lifecycle, crate::metrics::unix_ms()).await
        };
        let delay = match trimmed.await {
            Ok(_) => {
                backoff.reset();
                EVERY
            }
            Err(e) => {
                tracing::warn!(error = %e, "trimming failed; will retry");
                backoff.next_delay()
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One round over every stream.
pub async fn trim_all(redis: &mut ConnectionManager, maxlen: u64) -> redis::RedisResult<()> {
    for stream in keys::task_streams() {
        trim_task_stream(redis, stream, maxlen).await?;
    }
    for stream in [HEARTBEATS, DLQ] {
        trim_maxlen(redis, stream, maxlen).await?;
    }
    Ok(())
}

/// Cuts the lifecycle stream's entries older than `lifecycle.max_age` before `now_ms`
/// (approximately: whole nodes below it). Returns the MINID used.
pub async fn trim_lifecycle(
    redis: &mut ConnectionManager,
    lifecycle: &LifecycleSettings,
    now_ms: u64,
) -> redis::RedisResult<EntryId> {
    let minid = EntryId::new(
        now_ms.saturating_sub(lifecycle.max_age.as_millis() as u64),
        0,
    );
    trim_minid(redis, LIFECYCLE, minid).await?;
    Ok(minid)
}

/// Trims one task stream to about `maxlen`, keeping what any group still needs.
/// Returns the MINID used, if it trimmed.
pub async fn trim_task_stream(
    redis: &mut ConnectionManager,
    stream: &str,
    maxlen: u64,
) -> redis::RedisResult<Option<EntryId>> {
    // The oldest entry a plain MAXLEN would keep.
    let newest = xrevrange(redis, stream, "+", "-", maxlen.max(1)).await?;
    if (newest.len() as u64) < maxlen.max(1) {
        return Ok(None);
    }
    let Some(cut) = newest.last().and_then(|e| e.id.parse::<EntryId>().ok()) else {
        return Ok(None);
    };
    let floor = oldest_needed(redis, stream).await?;
    let minid = match floor {
        Some(floor) => cut.min(floor),
        None => cut,
    };
    trim_minid(redis, stream, minid).await?;
    Ok(Some(minid))
}

/// The oldest entry some group of `stream` still needs: its oldest pending entry, or
/// the first after its last delivered one. `None` when there are no groups.
async fn oldest_needed(
    redis: &mut ConnectionManager,
    stream: &str,
) -> redis::RedisResult<Option<EntryId>> {
    let mut oldest: Option<EntryId> = None;
    for group in groups(redis, stream).await? {
        let last: EntryId = group.last_delivered_id.parse().unwrap_or(EntryId::ZERO);
        let mut needed = EntryId::new(last.ms, last.seq.saturating_add(1));
        if group.pending > 0 {
            if let Some(first) = oldest_pending(redis, stream, &group.name).await? {
                needed = needed.min(first);
            }
        }
        oldest = Some(oldest.map_or(needed, |o| o.min(needed)));
    }
    Ok(oldest)
}
