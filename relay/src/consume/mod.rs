//! Consume mode (README, Delivery): one consumer of one agent's consumer group, on every task
//! stream, delivering at least once. This file owns what the rest of the relay sees of
//! it (the settings, the commands and events it exchanges with its client, the names
//! it uses in Redis) and the consumer's state; each step of the delivery order lives,
//! with the reason for it, in the part that takes it:
//!
//! - [`run`]: the loop over one Redis connection, reconnecting with backoff; the reads
//!   of new entries, most urgent first.
//! - [`schedule`]: how much to read and when (credit, priority top-up, held entries),
//!   as pure functions.
//! - [`deliver`]: a task is read into this consumer's pending list, then sent; entries
//!   not for the agent are acked without delivery.
//! - [`acks`]: acks and nacks batched, answered in order, `acked` only once Redis
//!   confirmed; nothing is acked on the client's behalf.
//! - [`reclaim`]: tasks not acked within the visibility timeout are delivered again;
//!   a client that goes hands its tasks back.
//! - [`dead_letter`]: the letter is written and the task acked in one step.
//! - [`recover`]: on (re)connect, taking back this consumer's own pending entries
//!   without Redis counting a delivery that is not made.
//!
//! Every Redis command goes through [`GroupStore`] (in the store layer); the real one is
//! [`RedisGroupStore`], and the order above is unit-tested against a fake of it.
//!
//! With the lifecycle record on (README, Task lifecycle), each step's record goes with
//! the command it records: `acked` with its `XACK`, `nacked` with the hand-back,
//! `dead_lettered` in the letter's script; `delivered` and `reclaimed` (made by reads,
//! which cannot carry them) are gathered as the entries are sent and go with the next
//! write the consumer sends anyway: the acks' `XACK`, a nack's hand-back, the skipped
//! entries' `XACK`, or at the latest the alive key's refresh (every second), so no
//! round trip is added for them; before a dead letter's script, which takes one record,
//! they are written first, so that a task's records keep their order.

mod acks;
mod dead_letter;
mod deliver;
mod names;
mod reclaim;
mod recover;
mod run;
mod schedule;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use crate::metrics::Metrics;
use crate::store::consumer::RedisGroupStore;
use crate::store::consumer::{ByPriority, GroupStore};
use crate::store::lifecycle::{LifecycleSettings, Write};
use crate::store::reply::Entry;
use cortex_shared::lifecycle::LifecycleEvent;
use cortex_shared::{AgentName, EntryId, ErrorCode, Priority, TaskMessage};
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Delivery settings shared by every consumer.
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// A task not acked this long after delivery is delivered again.
    pub visibility: Duration,
    /// Deliveries before a task goes to the DLQ.
    pub max_deliveries: u64,
    /// Tasks in flight (delivered, not yet acked) per consumer.
    pub prefetch: usize,
    /// Longest blocking read.
    pub block: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            visibility: Duration::from_secs(30),
            max_deliveries: 3,
            prefetch: 32,
            block: Duration::from_secs(5),
        }
    }
}

/// How often a running consumer refreshes its alive key
/// ([`crate::store::keys::consumer_alive`]; it is gone ten minutes after the consumer
/// stopped).
pub const ALIVE_EVERY: Duration = Duration::from_secs(1);

/// What a client asks of its consumer.
#[derive(Debug)]
pub enum ConsumerCommand {
    /// The task is done.
    Ack {
        /// Its stream.
        stream: String,
        /// Its entry id.
        entry_id: String,
    },
    /// The task failed.
    Nack {
        /// Its stream.
        stream: String,
        /// Its entry id.
        entry_id: String,
        /// Why.
        error: String,
    },
}

/// What a consumer tells its client.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsumerEvent {
    /// The groups exist; tasks follow.
    Ready {
        /// The agent.
        agent: String,
        /// This consumer's name.
        consumer: String,
    },
    /// A task to process, then ack or nack.
    Delivery {
        /// The task.
        task: TaskMessage,
        /// Its stream.
        stream: &'static str,
        /// Its entry id.
        entry_id: String,
        /// Deliveries so far, this one included.
        count: u64,
    },
    /// An ack was recorded.
    Acked {
        /// Its stream.
        stream: String,
        /// Its entry id.
        entry_id: String,
    },
    /// A nack was recorded.
    Nacked {
        /// Its stream.
        stream: String,
        /// Its entry id.
        entry_id: String,
        /// Whether the task went to the DLQ.
        dead_lettered: bool,
    },
    /// A request failed.
    Failed {
        /// Why, as a stable code.
        code: ErrorCode,
        /// Why, for people.
        message: String,
    },
}

/// One consumer of one agent's group, on Redis.
#[derive(Debug)]
pub struct GroupConsumer(Consumer<RedisGroupStore>);

impl GroupConsumer {
    /// A consumer named `consumer` in `agent`'s group: its blocking reads on
    /// connections of their own from `client`, every other command on `redis`; it
    /// writes lifecycle records as `lifecycle` says.
    pub fn new(
        client: redis::Client,
        redis: ConnectionManager,
        agent: AgentName,
        consumer: String,
        settings: DeliverySettings,
        lifecycle: LifecycleSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let store =
            RedisGroupStore::new(client, redis, &agent, &consumer, settings.block, lifecycle);
        Self(
            Consumer::new(store, agent, consumer, settings, metrics)
                .with_lifecycle(lifecycle.enabled),
        )
    }

    /// Takes at most `n` tasks in all, then only finishes those (acks and nacks):
    /// for one-off consumers such as `cortex-relay tail --consume --count N`, which
    /// must not leave more tasks pending under their name than they process.
    pub fn with_limit(self, n: usize) -> Self {
        Self(self.0.with_limit(n))
    }

    /// Delivers until `cancel` fires or `events` closes, then hands back what is in
    /// flight. Redis failures are retried with capped backoff; what was in flight stays
    /// pending in Redis meanwhile.
    pub async fn run(
        self,
        events: mpsc::Sender<ConsumerEvent>,
        commands: mpsc::Receiver<ConsumerCommand>,
        cancel: CancellationToken,
    ) {
        self.0.run(events, commands, cancel).await
    }
}

/// A consumer's state, on any [`GroupStore`].
#[derive(Debug)]
struct Consumer<S> {
    store: S,
    agent: AgentName,
    group: String,
    consumer: String,
    settings: DeliverySettings,
    metrics: Arc<Metrics>,
    /// Delivered and not yet acked.
    in_flight: HashMap<Key, Flight>,
    /// Read, and to be acked without delivery (see [`Consumer::ack_skipped`]).
    skipped: Vec<Key>,
    /// Read together with more urgent entries when the credit ran out before the more
    /// urgent streams were read to their end (see [`schedule::hold_back`]): held back,
    /// pending for this consumer, until the sweep has read them to their end.
    held: Vec<(Priority, Entry)>,
    next_reclaim: Instant,
    /// When to refresh [`alive_key`] next.
    next_alive: Instant,
    /// Deliveries left before this consumer stops taking tasks (`None`: no limit).
    remaining: Option<usize>,
    /// Whether lifecycle records are made at all.
    lifecycle: bool,
    /// `delivered` and `reclaimed` records of entries sent, for the next write
    /// ([`Consumer::take_records`]); at most a second old.
    records: Vec<Write>,
}

impl<S: GroupStore> Consumer<S> {
    fn new(
        store: S,
        agent: AgentName,
        consumer: String,
        settings: DeliverySettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            group: crate::store::keys::group(&agent),
            agent,
            consumer,
            settings,
            metrics,
            in_flight: HashMap::new(),
            skipped: Vec::new(),
            held: Vec::new(),
            next_reclaim: Instant::now(),
            next_alive: Instant::now(),
            remaining: None,
            lifecycle: false,
            records: Vec::new(),
        }
    }

    fn with_limit(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    /// The same consumer, making lifecycle records (or not).
    fn with_lifecycle(mut self, on: bool) -> Self {
        self.lifecycle = on;
        self
    }

    /// A record of `event` on this agent and consumer, if records are made.
    fn record(
        &self,
        event: LifecycleEvent,
        task_id: &str,
        priority: Priority,
        entry_id: &str,
    ) -> Option<Write> {
        self.lifecycle.then(|| {
            Write::now(event, task_id, priority.stream(), entry_id)
                .on(self.agent.as_str(), &self.consumer)
        })
    }

    /// The records gathered so far, then `more`, for a write that is about to go
    /// (on failure they are dropped: a write whose reply was lost may have taken
    /// effect, and a record written twice would claim what did not happen).
    fn take_records(&mut self, more: impl IntoIterator<Item = Write>) -> Vec<Write> {
        let mut records = std::mem::take(&mut self.records);
        records.extend(more);
        records
    }

    /// Writes the records gathered so far on their own (before a write that cannot take
    /// them).
    async fn flush_records(&mut self) -> redis::RedisResult<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let records = self.take_records([]);
        self.store.ack(&ByPriority::default(), &records).await
    }
}

type Events = mpsc::Sender<ConsumerEvent>;

/// A task in flight: delivered, not yet acked.
#[derive(Debug, Clone)]
struct Flight {
    /// Deliveries Redis counted, this one included.
    count: u64,
    /// When it was sent.
    at: Instant,
    /// Its `id`, for its records (empty when the consumer makes none).
    task_id: String,
}

/// A task in flight: its priority (its stream) and entry id. No allocation, and an id
/// from a client is parsed once.
type Key = (Priority, EntryId);

/// A Redis failure, or the client having gone away.
enum Stop {
    Redis(redis::RedisError),
    ClientGone,
}

impl From<redis::RedisError> for Stop {
    fn from(e: redis::RedisError) -> Self {
        Stop::Redis(e)
    }
}

/// The in-flight key of a stream name and entry id from a client; `None` when either
/// is not one a task can have.
fn key(stream: &str, entry_id: &str) -> Option<Key> {
    Some((Priority::from_stream(stream)?, entry_id.parse().ok()?))
}

/// Where `priority` is in [`Priority::ALL`], for arrays kept per stream.
fn rank(priority: Priority) -> usize {
    priority as usize
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn keys_are_task_streams_and_entry_ids() {
        assert_eq!(
            key("cortex:tasks:high", "5-1"),
            Some((Priority::High, EntryId::new(5, 1)))
        );
        assert_eq!(key("cortex:heartbeats", "5-1"), None);
        assert_eq!(key("cortex:tasks:high", "five"), None);
        for (i, p) in Priority::ALL.into_iter().enumerate() {
            assert_eq!(rank(p), i);
        }
    }
}
