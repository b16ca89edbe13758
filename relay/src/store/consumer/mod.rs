//! The Redis commands a consumer sends, as traits: [`GroupStore`] on the connection
//! every command but the blocking read shares, and the [`GroupReader`] it opens for
//! the reads, so that one can block while acks go on. Each speaks for one consumer of
//! one group, named when the store is made.
//!
//! The real ones are in [`on_redis`]; the consumer's order of operations
//! (read, send, ack; letter and ack together; nothing counted that was not sent) is
//! unit-tested against a fake of them.
//!
//! Lifecycle records ([`crate::store::lifecycle`]) go with the command they record:
//! the methods that take [`Write`]s send them in the same round trip, after it, and
//! only when the store was made with the record on.

use crate::store::dlq::Once;
use crate::store::lifecycle::Write;
use crate::store::reply::{AutoClaim, Entry};
use cortex_shared::lifecycle::LifecycleRecord;
use cortex_shared::{Attempt, DeadLetter, EntryId, Priority};
use redis::RedisResult;
use std::future::Future;
use std::time::Duration;

mod on_redis;

pub(crate) use on_redis::RedisGroupStore;

/// Entry ids by the priority of their stream (`Priority as usize`).
pub(crate) type ByPriority = [Vec<EntryId>; 4];

/// One of this consumer's pending entries, as `XPENDING` tells it (which counts no
/// delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// Its entry id.
    pub(crate) id: String,
    /// Milliseconds since it was last delivered (or its idle time set).
    pub(crate) idle_ms: u64,
    /// Deliveries Redis counted.
    pub(crate) deliveries: u64,
}

/// The connection a consumer's reads of new entries go on.
pub(crate) trait GroupReader: Send {
    /// `XREADGROUP … COUNT count [BLOCK block] STREAMS <streams> > …`: up to `count`
    /// new entries of each of `streams`, from then on pending for this consumer (a
    /// delivery Redis counted), each with its priority, in the order Redis sent them.
    fn read_new(
        &mut self,
        streams: &[Priority],
        count: usize,
        block: Option<Duration>,
    ) -> impl Future<Output = RedisResult<Vec<(Priority, Entry)>>> + Send;
}

/// The commands of one consumer of one agent's group, but for its reads.
pub(crate) trait GroupStore: Send + 'static {
    /// The connection for [`GroupReader::read_new`].
    type Reader: GroupReader;

    /// Opens a connection of its own for the reads.
    fn connect(&mut self) -> impl Future<Output = RedisResult<Self::Reader>> + Send;

    /// Creates the group on every task stream from its start (`0`), keeping one that
    /// exists.
    fn ensure_groups(&mut self) -> impl Future<Output = RedisResult<()>> + Send;

    /// `XACK` of `ids` (by priority), one command per stream, then `records`, in one
    /// round trip (`ids` may be empty: the records alone).
    fn ack(
        &mut self,
        ids: &ByPriority,
        records: &[Write],
    ) -> impl Future<Output = RedisResult<()>> + Send;

    /// `XACK` of one entry, its id as a client gave it.
    fn ack_one(
        &mut self,
        priority: Priority,
        entry_id: &str,
    ) -> impl Future<Output = RedisResult<()>> + Send;

    /// Writes `letter` to the DLQ and acks the entry, in one atomic step: never acked
    /// without its letter (see [`crate::store::dlq`]); with `record`, its
    /// `dead_lettered` record in the same step (`detail.dlq_id` added: the letter's
    /// id). Returns whether a letter was written (with [`Once::Global`], another group
    /// may have written it; then no record is).
    fn dead_letter(
        &mut self,
        priority: Priority,
        entry_id: &str,
        letter: &DeadLetter,
        once: Once,
        record: Option<&LifecycleRecord>,
    ) -> impl Future<Output = RedisResult<bool>> + Send;

    /// `XCLAIM … IDLE idle JUSTID` of one pending entry: it stays pending for this
    /// consumer, idle for `idle` (due for redelivery when that is the visibility
    /// timeout), and no delivery is counted; then `records`, in the same round trip.
    fn release(
        &mut self,
        priority: Priority,
        entry_id: &str,
        idle: Duration,
        records: &[Write],
    ) -> impl Future<Output = RedisResult<()>> + Send;

    /// [`GroupStore::release`] of many, one command per stream, then `records`, in one
    /// round trip.
    fn hand_back(
        &mut self,
        ids: &ByPriority,
        idle: Duration,
        records: &[Write],
    ) -> impl Future<Output = RedisResult<()>> + Send;

    /// Up to `count` of this consumer's pending entries of `priority`'s stream, oldest
    /// first, after `after` (`None`: from the start).
    fn pending(
        &mut self,
        priority: Priority,
        after: Option<&str>,
        count: usize,
    ) -> impl Future<Output = RedisResult<Vec<Pending>>> + Send;

    /// Takes the pending entries `ids` for this consumer, restarting their visibility
    /// timeout and counting no delivery (`XCLAIM … JUSTID`), and reads them (`XRANGE`,
    /// which counts none either): in the order of `ids`, one deleted from the stream
    /// meanwhile without fields.
    fn take_back(
        &mut self,
        priority: Priority,
        ids: &[&str],
    ) -> impl Future<Output = RedisResult<Vec<Entry>>> + Send;

    /// `XAUTOCLAIM … min_idle cursor COUNT count`: entries of the group idle that long,
    /// from then on pending for this consumer (a delivery Redis counted). With `owners`,
    /// also who held them before ([`AutoClaim::from`]: an `XPENDING … IDLE` of the same
    /// range just before, in the same round trip).
    fn autoclaim(
        &mut self,
        priority: Priority,
        min_idle: Duration,
        cursor: &str,
        count: usize,
        owners: bool,
    ) -> impl Future<Output = RedisResult<AutoClaim>> + Send;

    /// The deliveries Redis counted for a pending entry (1 when it is not pending).
    fn deliveries(
        &mut self,
        priority: Priority,
        entry_id: &str,
    ) -> impl Future<Output = RedisResult<u64>> + Send;

    /// One entry of `priority`'s stream (`XRANGE id id`); `None` when it is not there.
    fn entry(
        &mut self,
        priority: Priority,
        entry_id: &str,
    ) -> impl Future<Output = RedisResult<Option<Entry>>> + Send;

    /// The failed attempts at task `task_id` (entry `entry_id` of `priority`'s stream)
    /// in this agent's group that the lifecycle record holds, oldest first (nacks, and
    /// deliveries reclaimed for want of an ack): empty when there are none or the
    /// record is off.
    fn attempts(
        &mut self,
        task_id: &str,
        priority: Priority,
        entry_id: &str,
    ) -> impl Future<Output = RedisResult<Vec<Attempt>>> + Send;

    /// Refreshes this consumer's alive key ([`super::keys::consumer_alive`]), then
    /// writes `records`, in one round trip.
    fn say_alive(&mut self, records: &[Write]) -> impl Future<Output = RedisResult<()>> + Send;

    /// Ends `reader`'s connection once Redis is done with every read sent on it: a
    /// read still blocked there is unblocked (returning nothing, or what it took, which
    /// stays pending for this consumer), one still on its way is waited for. After
    /// this no read of this consumer's is left in Redis to make it anew.
    fn finish_reads(
        &mut self,
        reader: Self::Reader,
    ) -> impl Future<Output = RedisResult<()>> + Send;

    /// Removes this consumer from its group on every task stream (`XGROUP
    /// DELCONSUMER`) and deletes its alive key, unless it has an entry pending on
    /// some stream: then nothing changes, so that what it holds is reclaimed from it.
    /// One atomic step ([`super::groups::remove_consumer`]); whether it was removed.
    fn leave(&mut self) -> impl Future<Output = RedisResult<bool>> + Send;
}
