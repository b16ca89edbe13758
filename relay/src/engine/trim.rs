//! Stream trimming (README, Configuration: `--trim-maxlen`): keeps each stream near `trim_maxlen` entries, without ever
//! removing a task that some agent's group has not delivered yet or that is still
//! pending (delivered, not acked) — such a task would be lost.
//!
//! Each round, per task stream: the floor is the oldest entry any group still needs
//! (per group, from `XINFO GROUPS` and its oldest pending entry: work that grows with
//! the groups, never with the stream or the cap); then one script removes the oldest
//! whole nodes while at least `maxlen` entries stay and all of a node is below the
//! floor (`XTRIM MINID ~ <floor> LIMIT <XLEN - maxlen>`, see
//! [`crate::store::streams::trim_keeping`]). That is the cut a plain `MAXLEN` would
//! make, held at the floor, without reading the newest `maxlen` entries to learn the
//! id a `MAXLEN` would cut at. The heartbeat stream and the DLQ have no groups and are
//! cut the same way without a floor.
//!
//! The lifecycle stream (README, Task lifecycle) is cut by age every round, whether or
//! not `--trim-maxlen` is set: `XTRIM MINID ~ <now - max_age>` (its count is capped by
//! each `XADD`'s `MAXLEN ~`).

use crate::store::groups::oldest_pending;
use crate::store::keys::{self, DLQ, HEARTBEATS, LIFECYCLE};
use crate::store::lifecycle::LifecycleSettings;
use crate::store::streams::{trim_keeping, trim_minid, xlen};
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
        trim_keeping(redis, stream, maxlen, None).await?;
    }
    Ok(())
}

/// What one task stream's trim did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trimmed {
    /// The oldest entry some group still needs, below which alone it trimmed; `None`
    /// when the stream has no groups (or was within `maxlen`: nothing was read).
    pub floor: Option<EntryId>,
    /// Entries removed.
    pub removed: u64,
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

/// Trims one task stream to about `maxlen` (never below), keeping what any group
/// still needs.
pub async fn trim_task_stream(
    redis: &mut ConnectionManager,
    stream: &str,
    maxlen: u64,
) -> redis::RedisResult<Trimmed> {
    if xlen(redis, stream).await? <= maxlen {
        return Ok(Trimmed {
            floor: None,
            removed: 0,
        });
    }
    // The floor first: it only rises meanwhile (groups deliver and ack), so a floor
    // read before the trim never lets it remove what a group needs by then.
    let floor = oldest_needed(redis, stream).await?;
    let removed = trim_keeping(redis, stream, maxlen, floor).await?;
    Ok(Trimmed { floor, removed })
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
