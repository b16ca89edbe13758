//! Consume mode (SPEC §3): one consumer of one agent's consumer group, on every task
//! stream, delivering at least once.
//!
//! The order of operations is the delivery guarantee:
//! - Each agent has its own group (`agent:<name>`) on every task stream, created at
//!   `0` so tasks published before the agent first connected are delivered too. The
//!   group reads every entry; entries addressed to another agent are acked at once,
//!   which only affects this agent's group.
//! - A task is read into this consumer's pending list (XREADGROUP), then sent to the
//!   client; it stays pending until the client acks it. Nothing is acked on the
//!   client's behalf.
//! - A task not acked within the visibility timeout is claimed by a live consumer of the
//!   agent (XAUTOCLAIM) and delivered again. One delivered `max_deliveries` times, or
//!   nacked with none left, is dead-lettered: the letter is written and the task acked
//!   in one script (see [`crate::dlq`]), so it is never acked without a letter.
//! - Reads never take more than the free credit (`prefetch` minus tasks in flight), so
//!   with a backlog a critical task is never stuck behind a batch of low ones; each
//!   round reads critical first, then high, normal, low, and only blocks when all four
//!   are empty.
//! - On (re)connect, the consumer first takes back its own pending entries that are
//!   not in flight on it, without Redis counting a delivery that is not made (see
//!   [`GroupConsumer::recover`]). A client that goes hands its tasks in flight back:
//!   they are due for redelivery at once (see [`GroupConsumer::hand_back`]).

use super::reply::{raw_pairs, Entry};
use super::Backoff;
use crate::dlq::{dead_letter, Once};
use crate::metrics::{unix_ms, Metrics};
use cortex_shared::DecodeError;
use cortex_shared::{AgentName, DeadLetter, EntryId, ErrorCode, Priority, TaskMessage};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamPendingCountReply, StreamPendingId};
use redis::{AsyncConnectionConfig, Value};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
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

/// The consumer group of `agent`.
pub fn group_name(agent: &AgentName) -> String {
    format!("agent:{agent}")
}

/// The key where a consumer of the relay's says it is alive: its last sign of life in
/// unix milliseconds, refreshed every [`ALIVE_EVERY`] while it runs and gone
/// [`ALIVE_TTL`] after it stopped. `XINFO CONSUMERS` cannot say it before Redis 7.2,
/// where only reads that return entries reset a consumer's idle time.
pub fn alive_key(agent: &str, consumer: &str) -> String {
    format!("cortex:consumers:alive:{agent}:{consumer}")
}

/// How often a running consumer refreshes its [`alive_key`].
pub const ALIVE_EVERY: Duration = Duration::from_secs(1);

/// How long an [`alive_key`] outlives its consumer's last refresh.
const ALIVE_TTL: Duration = Duration::from_secs(600);

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

/// One consumer of one agent's group.
#[derive(Debug)]
pub struct GroupConsumer {
    client: redis::Client,
    redis: ConnectionManager,
    agent: AgentName,
    group: String,
    consumer: String,
    settings: DeliverySettings,
    metrics: Arc<Metrics>,
    /// Delivered and not yet acked: (stream, entry id) → delivery count, and when.
    in_flight: HashMap<Key, (u64, Instant)>,
    /// Read, and to be acked without delivery (see [`Self::ack_skipped`]).
    skipped: Vec<Key>,
    /// Read together with more urgent entries when the credit ran out before the more
    /// urgent streams were read to their end (see [`Self::read_more_urgent`]): held
    /// back, pending for this consumer, until the sweep has read them to their end.
    held: Vec<(&'static str, Entry)>,
    next_reclaim: Instant,
    /// When to refresh [`alive_key`] next.
    next_alive: Instant,
    /// Deliveries left before this consumer stops taking tasks (`None`: no limit).
    remaining: Option<usize>,
}

type Events = mpsc::Sender<ConsumerEvent>;

/// A delivery's stream and entry id, as the in-flight set keys it (no allocation, and
/// an id from a client is parsed once).
type Key = (&'static str, EntryId);

/// Most client commands taken from the queue to handle as one batch.
const BATCH: usize = 256;

/// The reply a command of a batch gets, in the order the commands came.
enum Reply {
    /// Known already (a refusal).
    Ready(ConsumerEvent),
    /// An ack, answered once its XACK is confirmed.
    Ack {
        stream: &'static str,
        id: EntryId,
        entry_id: String,
        count: u64,
        delivered: Instant,
    },
}

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

impl GroupConsumer {
    /// A consumer named `consumer` in `agent`'s group.
    pub fn new(
        client: redis::Client,
        redis: ConnectionManager,
        agent: AgentName,
        consumer: String,
        settings: DeliverySettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            client,
            redis,
            group: group_name(&agent),
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
        }
    }

    /// Takes at most `n` tasks in all, then only finishes those (acks and nacks):
    /// for one-off consumers such as `cortex-relay tail --consume --count N`, which
    /// must not leave more tasks pending under their name than they process.
    pub fn with_limit(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Delivers until `cancel` fires or `events` closes, then hands back what is in
    /// flight ([`Self::hand_back`]). Redis failures are retried with capped backoff;
    /// what was in flight stays pending in Redis meanwhile.
    pub async fn run(
        mut self,
        events: Events,
        mut commands: mpsc::Receiver<ConsumerCommand>,
        cancel: CancellationToken,
    ) {
        // A consumer of this name that is going (its client reconnected) hands back
        // its tasks first, so that this one's recovery sees them as due.
        let name = NameLock::acquire(&self.group, &self.consumer).await;
        self.deliver(&events, &mut commands, &cancel).await;
        self.hand_back().await;
        drop(name);
    }

    async fn deliver(
        &mut self,
        events: &Events,
        commands: &mut mpsc::Receiver<ConsumerCommand>,
        cancel: &CancellationToken,
    ) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut ready_sent = false;
        loop {
            let result = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.session(events, commands, &mut ready_sent) => r,
            };
            match result {
                Stop::ClientGone => return,
                Stop::Redis(e) => {
                    self.metrics.redis_reconnects.inc();
                    let delay = backoff.next_delay();
                    tracing::warn!(agent = %self.agent, consumer = %self.consumer, error = %e,
                        retry_in = ?delay, "consumer lost redis");
                    if !ready_sent
                        && events
                            .send(ConsumerEvent::Failed {
                                code: ErrorCode::RedisUnavailable,
                                message: "Redis is not reachable; retrying".into(),
                            })
                            .await
                            .is_err()
                    {
                        return;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
            if ready_sent {
                backoff.reset();
            }
        }
    }

    /// One connection's worth of delivery; returns why it stopped.
    async fn session(
        &mut self,
        events: &Events,
        commands: &mut mpsc::Receiver<ConsumerCommand>,
        ready_sent: &mut bool,
    ) -> Stop {
        let mut conn = match self.connect().await {
            Ok(conn) => conn,
            Err(e) => return e.into(),
        };
        if let Err(e) = self.ensure_groups().await {
            return e.into();
        }
        if !*ready_sent {
            let ready = ConsumerEvent::Ready {
                agent: self.agent.to_string(),
                consumer: self.consumer.clone(),
            };
            if events.send(ready).await.is_err() {
                return Stop::ClientGone;
            }
            *ready_sent = true;
        }
        // Own pending entries first: after a reconnect they are this consumer's to
        // finish (those still in flight on it are not sent twice; those skipped and
        // not yet acked are skipped again).
        self.skipped.clear();
        // Held entries are this consumer's pending ones: taken back just below.
        self.held.clear();
        // Whether every stream was read to its end just now, so that what waits there
        // arrived since (see below).
        let mut fresh = false;
        if let Err(stop) = self.recover(events).await {
            return stop;
        }
        loop {
            if let Ok(command) = commands.try_recv() {
                if let Err(stop) = self.handle(command, commands, events).await {
                    return stop;
                }
            }
            if Instant::now() >= self.next_alive {
                self.say_alive().await;
            }
            if Instant::now() >= self.next_reclaim {
                if let Err(stop) = self.reclaim(events).await {
                    return stop;
                }
                self.next_reclaim = Instant::now() + self.reclaim_every();
            }
            if !self.may_read() {
                // Wait for acks (or the next reclaim round) before reading more; a
                // backlog may build meanwhile.
                fresh = false;
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(command) => if let Err(stop) = self.handle(command, commands, events).await {
                            return stop;
                        },
                        None => return Stop::ClientGone,
                    },
                    _ = tokio::time::sleep_until(self.next_reclaim.min(self.next_alive).into()) => {}
                }
                continue;
            }
            // Taking at most a quarter of the credit from each stream, a read of all four
            // never takes more than the credit.
            let credit = self.credit();
            let count = if credit >= 4 { credit / 4 } else { credit };
            // Non-blocking, most urgent first; restart from critical after any hit.
            // Skipped while reads keep up (the last read took less than it could from
            // each stream): then everything waiting arrived since, a batch delivered
            // most urgent first, and the blocking read below returns it at once, one
            // round trip instead of five. (One script reading all four in a round trip
            // was tried: it saves the relay about as much as Redis then spends turning
            // each entry into Lua and back.)
            let mut delivered = false;
            let releasing = !self.held.is_empty();
            for priority in Priority::ALL {
                if fresh && credit >= 4 {
                    break;
                }
                // Every more urgent stream was read to its end: held entries of this
                // priority go now, before newer ones of it. Once none is left, the
                // blocking read below takes what waits in the less urgent streams.
                if let Err(stop) = self.release_held(priority, events).await {
                    return stop;
                }
                if releasing && self.held.is_empty() {
                    break;
                }
                match self.read_once(&mut conn, priority, events).await {
                    Ok(0) => {}
                    Ok(_) => {
                        delivered = true;
                        break;
                    }
                    Err(stop) => return stop,
                }
            }
            if delivered {
                continue;
            }
            // Everything is empty (or kept up with): block on all four, handling acks
            // meanwhile.
            let block = self
                .settings
                .block
                .min(
                    self.next_reclaim
                        .min(self.next_alive)
                        .saturating_duration_since(Instant::now()),
                )
                .max(Duration::from_millis(1));
            let streams = Priority::ALL.map(Priority::stream);
            let cmd = read_group(
                &self.group,
                &self.consumer,
                &streams,
                ">",
                count,
                Some(block),
            );
            let reply = {
                // The read stays in flight while acks are handled on the other
                // connection; dropping it would lose the entries it returns.
                let read = cmd.query_async::<Value>(&mut conn);
                tokio::pin!(read);
                loop {
                    tokio::select! {
                        reply = &mut read => break reply,
                        command = commands.recv() => match command {
                            Some(command) => if let Err(stop) = self.handle(command, commands, events).await {
                                return stop;
                            },
                            None => return Stop::ClientGone,
                        },
                    }
                }
            };
            let mut entries = match reply.and_then(entries) {
                Ok(entries) => entries,
                Err(e) => return e.into(),
            };
            let mut per_stream = [0; 4];
            for (stream, _) in &entries {
                per_stream[priority_index(stream)] += 1;
            }
            fresh = per_stream.iter().all(|&n| n < count);
            match self.read_more_urgent(&mut conn, &mut entries).await {
                Ok(None) => {}
                Ok(Some(full)) => {
                    // Out of credit with more maybe waiting in stream `full`: what is
                    // less urgent waits for the sweep, which runs next.
                    let (now, later) = entries
                        .into_iter()
                        .partition(|(stream, _)| priority_index(stream) <= full);
                    entries = now;
                    self.held.extend(later);
                    fresh = false;
                }
                Err(stop) => return stop,
            }
            // Stable: within a stream, older entries stay first.
            entries.sort_by_key(|(stream, _)| Priority::from_stream(stream));
            if let Err(stop) = self.process_new(entries, events).await {
                return stop;
            }
        }
    }

    /// Before the entries a blocking read returned are delivered, reads (without
    /// blocking, one round trip) the streams more urgent than the least urgent of
    /// them, and adds what it finds. A read woken by one stream returns only that
    /// stream (Redis serves the key that woke it), so a burst written at once to
    /// several streams (one `MULTI`, or a script such as a bulk DLQ retry) would
    /// otherwise go out less urgent first. Repeats while a stream gives its whole
    /// share; never takes more than the credit. Returns the most urgent stream (as an
    /// index into [`Priority::ALL`]) that may still hold more when the credit ran out.
    async fn read_more_urgent(
        &mut self,
        conn: &mut MultiplexedConnection,
        entries: &mut Vec<(&'static str, Entry)>,
    ) -> Result<Option<usize>, Stop> {
        let mut full: Option<usize> = None;
        loop {
            let least = entries
                .iter()
                .map(|(stream, _)| priority_index(stream))
                .max()
                .unwrap_or(0);
            if least == 0 {
                return Ok(None);
            }
            let streams: Vec<&'static str> =
                Priority::ALL[..least].iter().map(|p| p.stream()).collect();
            let credit = self.credit().saturating_sub(entries.len());
            let count = credit / streams.len();
            if count == 0 {
                return Ok(full.filter(|f| *f < least));
            }
            let reply = read_group(&self.group, &self.consumer, &streams, ">", count, None)
                .query_async(conn)
                .await?;
            let more = self::entries(reply)?;
            let mut per_stream = [0; 4];
            for (stream, _) in &more {
                per_stream[priority_index(stream)] += 1;
            }
            entries.extend(more);
            full = per_stream.iter().position(|&n| n >= count);
            if full.is_none() {
                return Ok(None);
            }
        }
    }

    /// Delivers the held entries of `priority` (see [`GroupConsumer::held`]).
    async fn release_held(&mut self, priority: Priority, events: &Events) -> Result<(), Stop> {
        if self.held.is_empty() {
            return Ok(());
        }
        let stream = priority.stream();
        let (now, later) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|(s, _)| *s == stream);
        self.held = later;
        self.process_new(now, events).await
    }

    /// Processes entries read the first time, then acks those not for this agent.
    async fn process_new(
        &mut self,
        entries: Vec<(&'static str, Entry)>,
        events: &Events,
    ) -> Result<(), Stop> {
        for (stream, entry) in entries {
            self.process(stream, entry, 1, events).await?;
        }
        self.ack_skipped().await
    }

    /// Acks the entries [`Self::process`] skipped (addressed to another agent, or
    /// deleted), one XACK per stream. Until then they stay pending for this consumer,
    /// which skips them again after a reconnect.
    async fn ack_skipped(&mut self) -> Result<(), Stop> {
        if self.skipped.is_empty() {
            return Ok(());
        }
        let mut ids: [Vec<EntryId>; 4] = Default::default();
        for (stream, id) in &self.skipped {
            ids[priority_index(stream)].push(*id);
        }
        self.xack(&ids).await?;
        self.skipped.clear();
        Ok(())
    }

    fn credit(&self) -> usize {
        let taken = self.in_flight.len() + self.held.len();
        let credit = self.settings.prefetch.saturating_sub(taken);
        self.remaining.map_or(credit, |left| {
            credit.min(left.saturating_sub(self.held.len()))
        })
    }

    /// Whether to read now: when a quarter of the prefetch is free, or nothing is in
    /// flight (a client with three quarters of its prefetch to work on loses nothing by
    /// waiting, and a busy consumer reads in batches instead of one task per ack).
    fn may_read(&self) -> bool {
        let credit = self.credit();
        let idle = self.in_flight.is_empty();
        // (Held entries with no credit left and nothing in flight: the sweep
        // releases them without reading.)
        (credit > 0 && (credit >= (self.settings.prefetch / 4).max(1) || idle))
            || (idle && !self.held.is_empty())
    }

    fn reclaim_every(&self) -> Duration {
        (self.settings.visibility / 2).max(Duration::from_millis(50))
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(self.settings.block + Duration::from_secs(5)));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Creates the agent's group on every task stream; an existing one is kept.
    async fn ensure_groups(&mut self) -> redis::RedisResult<()> {
        for priority in Priority::ALL {
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(priority.stream())
                .arg(&self.group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut self.redis)
                .await;
            match created {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One non-blocking read of new entries of `stream`; processes and returns how many
    /// came back.
    async fn read_once(
        &mut self,
        conn: &mut MultiplexedConnection,
        priority: Priority,
        events: &Events,
    ) -> Result<usize, Stop> {
        let count = self.credit();
        if count == 0 {
            return Ok(0);
        }
        let reply = read_group(
            &self.group,
            &self.consumer,
            &[priority.stream()],
            ">",
            count,
            None,
        )
        .query_async(conn)
        .await?;
        let entries = entries(reply)?;
        let n = entries.len();
        for (stream, entry) in entries {
            self.process(stream, entry, 1, events).await?;
        }
        self.ack_skipped().await?;
        Ok(n)
    }

    /// Takes back, on (re)connect, this consumer's own pending entries that are not in
    /// flight on it, most urgent stream first, and delivers (or skips, or
    /// dead-letters) them.
    ///
    /// # Deliveries counted are deliveries made
    ///
    /// Redis counts a delivery whenever `XREADGROUP` (with `>`, and also with an id:
    /// re-reading the pending list), `XCLAIM` or `XAUTOCLAIM` hands an entry out, and
    /// that count decides when a task is dead-lettered. A lost connection to Redis is
    /// no delivery, so the pending list is read with `XPENDING`, which counts nothing:
    /// - an entry in flight on this consumer (sent, not yet acked: the client has it)
    ///   is left alone;
    /// - an entry idle for a whole visibility timeout is due for redelivery: it was
    ///   handed back by a client that went ([`Self::hand_back`]), nacked, or not acked
    ///   in time. The reclaim, which runs next, delivers it again and `XAUTOCLAIM`
    ///   counts that delivery;
    /// - any other entry was read by this consumer (a read Redis counted) and never
    ///   sent: the reply was lost with the connection, or it was held back or skipped
    ///   when the connection went. Its count already includes the delivery made now,
    ///   so it is not counted again: `XCLAIM … JUSTID` (which does not count) restarts
    ///   its visibility timeout, and `XRANGE` (which does not count either) reads it.
    ///
    /// The one delivery this cannot count: a task in flight when the relay itself was
    /// killed, its consumer reconnecting under the same name before the visibility
    /// timeout (nothing tells it from a read never sent); it is delivered at least
    /// once all the same.
    async fn recover(&mut self, events: &Events) -> Result<(), Stop> {
        const PAGE: usize = 500;
        let visibility = self.settings.visibility.as_millis() as usize;
        for priority in Priority::ALL {
            let stream = priority.stream();
            let mut start = "-".to_owned();
            loop {
                let page: StreamPendingCountReply = redis::cmd("XPENDING")
                    .arg(stream)
                    .arg(&self.group)
                    .arg(&start)
                    .arg("+")
                    .arg(PAGE)
                    .arg(&self.consumer)
                    .query_async(&mut self.redis)
                    .await?;
                let unsent: Vec<&StreamPendingId> = page
                    .ids
                    .iter()
                    .filter(|p| p.last_delivered_ms < visibility)
                    .filter(|p| {
                        p.id.parse::<EntryId>()
                            .is_ok_and(|id| !self.in_flight.contains_key(&(stream, id)))
                    })
                    .collect();
                if !unsent.is_empty() {
                    let counts: HashMap<String, u64> = unsent
                        .iter()
                        .map(|p| (p.id.clone(), p.times_delivered as u64))
                        .collect();
                    for entry in self.take_back(stream, &unsent).await? {
                        let count = counts.get(&entry.id).copied().unwrap_or(1);
                        self.process(stream, entry, count, events).await?;
                    }
                }
                match page.ids.last() {
                    Some(last) if page.ids.len() == PAGE => start = format!("({}", last.id),
                    _ => break,
                }
            }
        }
        self.ack_skipped().await
    }

    /// The pending entries `ids` of `stream`, their visibility timeout restarted and
    /// nothing counted (see [`Self::recover`]); one deleted from the stream meanwhile
    /// comes back without fields.
    async fn take_back(
        &mut self,
        stream: &str,
        ids: &[&StreamPendingId],
    ) -> redis::RedisResult<Vec<Entry>> {
        let mut claim = redis::cmd("XCLAIM");
        claim
            .arg(stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(0);
        for p in ids {
            claim.arg(&p.id);
        }
        claim.arg("JUSTID");
        let mut pipe = redis::pipe();
        pipe.add_command(claim).ignore();
        for p in ids {
            pipe.cmd("XRANGE").arg(stream).arg(&p.id).arg(&p.id);
        }
        let replies: Vec<Value> = pipe.query_async(&mut self.redis).await?;
        let mut out = Vec::with_capacity(ids.len());
        for (p, reply) in ids.iter().zip(replies) {
            let entry = super::reply::range(reply)?.into_iter().next();
            out.push(entry.unwrap_or_else(|| Entry {
                id: p.id.clone(),
                fields: None,
            }));
        }
        Ok(out)
    }

    /// Hands the tasks in flight back when the client has gone: each stays pending,
    /// marked idle for a whole visibility timeout (`XCLAIM … IDLE … JUSTID`, which
    /// does not count a delivery), so the next reclaim by any consumer of the agent
    /// delivers it again and counts that delivery; a consumer reconnecting under this
    /// name reclaims at once. Without it, that consumer could not tell them from
    /// entries read and never sent ([`Self::recover`]). Bounded in time: if Redis does
    /// not answer, they come back after the visibility timeout as they would anyway.
    async fn hand_back(&mut self) {
        let mut ids: [Vec<EntryId>; 4] = Default::default();
        for (stream, id) in self.in_flight.keys() {
            ids[priority_index(stream)].push(*id);
        }
        if ids.iter().all(Vec::is_empty) {
            return;
        }
        let idle = self.settings.visibility.as_millis() as u64;
        let mut pipe = redis::pipe();
        for (priority, ids) in Priority::ALL.iter().zip(&ids) {
            if ids.is_empty() {
                continue;
            }
            let cmd = pipe
                .cmd("XCLAIM")
                .arg(priority.stream())
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(0);
            for id in ids {
                cmd.arg(id.to_string());
            }
            cmd.arg("IDLE").arg(idle).arg("JUSTID").ignore();
        }
        let handed = tokio::time::timeout(
            Duration::from_secs(2),
            pipe.query_async::<()>(&mut self.redis),
        )
        .await;
        match handed {
            Ok(Ok(())) => {
                tracing::debug!(agent = %self.agent, consumer = %self.consumer,
                    tasks = self.in_flight.len(), "tasks in flight handed back");
                self.in_flight.clear();
            }
            Ok(Err(error)) => tracing::warn!(agent = %self.agent, consumer = %self.consumer,
                %error, "tasks in flight not handed back; due after the visibility timeout"),
            Err(_) => tracing::warn!(agent = %self.agent, consumer = %self.consumer,
                "tasks in flight not handed back in time; due after the visibility timeout"),
        }
    }

    /// Delivers, skips, or dead-letters one entry now pending for this consumer.
    async fn process(
        &mut self,
        stream: &'static str,
        entry: Entry,
        count: u64,
        events: &Events,
    ) -> Result<(), Stop> {
        let Ok(id) = entry.id.parse::<EntryId>() else {
            // Redis only hands out ids of this form.
            tracing::warn!(stream, entry_id = %entry.id, "entry id not understood; skipped");
            return Ok(());
        };
        let key = (stream, id);
        if self.in_flight.contains_key(&key) {
            return Ok(());
        }
        let Some(fields) = &entry.fields else {
            // Deleted from the stream while pending: nothing left to deliver.
            self.skipped.push(key);
            return Ok(());
        };
        let task = match decode_fields(fields) {
            Ok(task) => task,
            Err(e) => {
                let letter = raw_letter(&entry, stream, &e.to_string(), count);
                dead_letter(
                    &mut self.redis,
                    stream,
                    &self.group,
                    &entry.id,
                    &letter,
                    Once::Global,
                )
                .await?;
                tracing::warn!(stream, entry_id = %entry.id, error = %e, "malformed task dead-lettered");
                return Ok(());
            }
        };
        if !task.is_for(self.agent.as_str()) {
            self.skipped.push(key);
            return Ok(());
        }
        if count > self.settings.max_deliveries {
            let error = format!("not acked after {} deliveries", count - 1);
            self.dead_letter_task(&task, stream, &entry.id, &error, count - 1)
                .await?;
            return Ok(());
        }
        if self.remaining == Some(0) {
            return Ok(());
        }
        self.in_flight.insert(key, (count, Instant::now()));
        self.remaining = self.remaining.map(|left| left - 1);
        self.metrics.deliveries.inc();
        if count == 1 {
            // The entry id's first part is when Redis added it (its clock, our machine).
            if let Some(added) = entry
                .id
                .split('-')
                .next()
                .and_then(|ms| ms.parse::<u64>().ok())
            {
                let latency = unix_ms().saturating_sub(added);
                self.metrics
                    .publish_to_delivery
                    .record(Duration::from_millis(latency));
            }
        }
        let delivery = ConsumerEvent::Delivery {
            task,
            stream,
            entry_id: entry.id,
            count,
        };
        events.send(delivery).await.map_err(|_| Stop::ClientGone)
    }

    async fn ack(&mut self, stream: &str, entry_id: &str) -> redis::RedisResult<()> {
        redis::cmd("XACK")
            .arg(stream)
            .arg(&self.group)
            .arg(entry_id)
            .query_async::<i64>(&mut self.redis)
            .await
            .map(drop)
    }

    async fn dead_letter_task(
        &mut self,
        task: &TaskMessage,
        stream: &str,
        entry_id: &str,
        error: &str,
        retry_count: u64,
    ) -> redis::RedisResult<()> {
        let letter = task_letter(task, stream, entry_id, error, retry_count);
        dead_letter(
            &mut self.redis,
            stream,
            &self.group,
            entry_id,
            &letter,
            Once::PerGroup,
        )
        .await?;
        tracing::info!(agent = %self.agent, stream, entry_id, error, "task dead-lettered");
        Ok(())
    }

    /// The delivery count Redis holds for one of this consumer's pending entries.
    async fn pending_count(&mut self, stream: &str, entry_id: &str) -> redis::RedisResult<u64> {
        let reply: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(stream)
            .arg(&self.group)
            .arg(entry_id)
            .arg(entry_id)
            .arg(1)
            .query_async(&mut self.redis)
            .await?;
        Ok(reply.ids.first().map_or(1, |p| p.times_delivered as u64))
    }

    /// Claims tasks of this agent idle longer than the visibility timeout, looping
    /// XAUTOCLAIM until its cursor is back at `0-0` (or credit runs out), most urgent
    /// stream first, and delivers or dead-letters them.
    async fn reclaim(&mut self, events: &Events) -> Result<(), Stop> {
        let min_idle = self.settings.visibility.as_millis() as u64;
        for priority in Priority::ALL {
            let stream = priority.stream();
            let mut cursor = "0-0".to_owned();
            loop {
                let credit = self.credit();
                if credit == 0 {
                    return Ok(());
                }
                // Walked as Redis sent it: one entry with a field name that is not
                // UTF-8 must not fail the claim of every other (Redis counted them).
                let reply = super::reply::autoclaim(
                    redis::cmd("XAUTOCLAIM")
                        .arg(stream)
                        .arg(&self.group)
                        .arg(&self.consumer)
                        .arg(min_idle)
                        .arg(&cursor)
                        .arg("COUNT")
                        .arg(credit)
                        .query_async(&mut self.redis)
                        .await?,
                )?;
                for entry in reply.claimed {
                    // XAUTOCLAIM counted this delivery; ask Redis for the total.
                    let count = self.pending_count(stream, &entry.id).await?;
                    if let Ok(id) = entry.id.parse::<EntryId>() {
                        self.in_flight.remove(&(stream, id));
                    }
                    self.process(stream, entry, count, events).await?;
                }
                self.ack_skipped().await?;
                cursor = reply.next;
                if cursor == "0-0" {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Carries out `first` and every command queued behind it, in order, each answered
    /// in that order (clients match replies to requests). The acks among them cost one
    /// XACK per stream, pipelined, sent before the next nack and at the end; an `acked`
    /// goes out only once Redis confirmed. If Redis fails meanwhile, each ack and nack
    /// not carried out is answered `redis_unavailable`, its task stays in flight (the
    /// client may ack it again), and the consumer reconnects.
    async fn handle(
        &mut self,
        first: ConsumerCommand,
        commands: &mut mpsc::Receiver<ConsumerCommand>,
        events: &Events,
    ) -> Result<(), Stop> {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut batch = batch.into_iter();
        while let Some(command) = batch.next() {
            let (stream, entry_id, nack_error) = match command {
                ConsumerCommand::Ack { stream, entry_id } => (stream, entry_id, None),
                ConsumerCommand::Nack {
                    stream,
                    entry_id,
                    error,
                } => (stream, entry_id, Some(error)),
            };
            let Some((stream, id, count, delivered)) = self.take_in_flight(&stream, &entry_id)
            else {
                replies.push(Reply::Ready(unknown_delivery(&stream, &entry_id)));
                continue;
            };
            let Some(error) = nack_error else {
                replies.push(Reply::Ack {
                    stream,
                    id,
                    entry_id,
                    count,
                    delivered,
                });
                continue;
            };
            // A nack waits for the acks before it, so that the replies keep their order.
            if let Err(e) = self.ack_all(&mut replies, events).await {
                self.in_flight.insert((stream, id), (count, delivered));
                events
                    .send(redis_failed())
                    .await
                    .map_err(|_| Stop::ClientGone)?;
                return self.give_up(e, batch, events).await;
            }
            match self.nack(stream, &entry_id, &error, count).await {
                Ok(dead_lettered) => {
                    self.metrics.nacks.inc();
                    replies.push(Reply::Ready(ConsumerEvent::Nacked {
                        stream: stream.to_owned(),
                        entry_id,
                        dead_lettered,
                    }));
                }
                Err(e) => {
                    self.in_flight.insert((stream, id), (count, delivered));
                    replies.push(Reply::Ready(redis_failed()));
                    flush(&mut replies, events).await?;
                    return self.give_up(Stop::Redis(e), batch, events).await;
                }
            }
        }
        match self.ack_all(&mut replies, events).await {
            Ok(()) => Ok(()),
            Err(e) => self.give_up(e, batch, events).await,
        }
    }

    /// Sends the XACKs of the acks in `replies` (one per stream, pipelined), then every
    /// reply in order. If Redis fails, those acks' tasks go back in flight and each is
    /// answered `redis_unavailable` instead; the error is returned.
    async fn ack_all(&mut self, replies: &mut Vec<Reply>, events: &Events) -> Result<(), Stop> {
        let mut ids: [Vec<EntryId>; 4] = Default::default();
        for reply in replies.iter() {
            if let Reply::Ack { stream, id, .. } = reply {
                ids[priority_index(stream)].push(*id);
            }
        }
        let result = if ids.iter().all(Vec::is_empty) {
            Ok(())
        } else {
            self.xack(&ids).await
        };
        match result {
            Ok(()) => {
                for reply in replies.iter() {
                    if let Reply::Ack { delivered, .. } = reply {
                        self.metrics.acks.inc();
                        self.metrics.delivery_to_ack.record(delivered.elapsed());
                    }
                }
                flush(replies, events).await
            }
            Err(e) => {
                for reply in replies.iter_mut() {
                    if let Reply::Ack {
                        stream,
                        id,
                        count,
                        delivered,
                        ..
                    } = reply
                    {
                        self.in_flight.insert((*stream, *id), (*count, *delivered));
                        *reply = Reply::Ready(redis_failed());
                    }
                }
                flush(replies, events).await?;
                Err(Stop::Redis(e))
            }
        }
    }

    /// XACK of `ids` (by priority), one command per stream, in one round trip.
    async fn xack(&mut self, ids: &[Vec<EntryId>; 4]) -> redis::RedisResult<()> {
        let mut commands = Priority::ALL
            .iter()
            .zip(ids)
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(priority, ids)| {
                let mut cmd = redis::cmd("XACK");
                cmd.arg(priority.stream()).arg(&self.group);
                for id in ids {
                    cmd.arg(id.to_string());
                }
                cmd
            })
            .collect::<Vec<_>>();
        match commands.len() {
            0 => Ok(()),
            // The usual case: one stream, no pipeline to set up.
            1 => commands.remove(0).query_async(&mut self.redis).await,
            _ => {
                let mut pipe = redis::pipe();
                for cmd in commands {
                    pipe.add_command(cmd).ignore();
                }
                pipe.query_async(&mut self.redis).await
            }
        }
    }

    /// After Redis failed in a batch: the commands of it not carried out are answered
    /// (`redis_unavailable` for tasks in flight, which stay so; `unknown_delivery` for
    /// others), and the consumer stops to reconnect.
    async fn give_up(
        &mut self,
        error: Stop,
        rest: impl Iterator<Item = ConsumerCommand>,
        events: &Events,
    ) -> Result<(), Stop> {
        for command in rest {
            let (ConsumerCommand::Ack { stream, entry_id }
            | ConsumerCommand::Nack {
                stream, entry_id, ..
            }) = command;
            let known = key(&stream, &entry_id).is_some_and(|k| self.in_flight.contains_key(&k));
            let reply = if known {
                redis_failed()
            } else {
                unknown_delivery(&stream, &entry_id)
            };
            events.send(reply).await.map_err(|_| Stop::ClientGone)?;
        }
        Err(error)
    }

    /// A nack: dead-letters the task when no deliveries are left (returns true), else
    /// makes it due for redelivery.
    async fn nack(
        &mut self,
        stream: &'static str,
        entry_id: &str,
        error: &str,
        count: u64,
    ) -> redis::RedisResult<bool> {
        if count < self.settings.max_deliveries {
            self.release(stream, entry_id).await?;
            return Ok(false);
        }
        match self.read_task(stream, entry_id).await? {
            Some(task) => {
                self.dead_letter_task(&task, stream, entry_id, error, count)
                    .await?
            }
            // Deleted from the stream meanwhile: nothing to keep.
            None => self.ack(stream, entry_id).await?,
        }
        Ok(true)
    }

    /// Removes a delivery from the in-flight set: its stream (as a static name), entry
    /// id, delivery count and delivery time; `None` if it is not in flight here.
    fn take_in_flight(
        &mut self,
        stream: &str,
        entry_id: &str,
    ) -> Option<(&'static str, EntryId, u64, Instant)> {
        let (stream, id) = key(stream, entry_id)?;
        self.in_flight
            .remove(&(stream, id))
            .map(|(count, at)| (stream, id, count, at))
    }

    /// Makes a nacked task due for redelivery now: it stays pending, marked idle for a
    /// whole visibility timeout, so the next reclaim (by any consumer) takes it.
    async fn release(&mut self, stream: &str, entry_id: &str) -> redis::RedisResult<()> {
        let idle = self.settings.visibility.as_millis() as u64;
        redis::cmd("XCLAIM")
            .arg(stream)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(0)
            .arg(entry_id)
            .arg("IDLE")
            .arg(idle)
            .arg("JUSTID")
            .query_async::<Value>(&mut self.redis)
            .await?;
        self.next_reclaim = Instant::now();
        Ok(())
    }

    /// Refreshes [`alive_key`]; a failure only waits for the next round (the reads
    /// report Redis being gone).
    async fn say_alive(&mut self) {
        self.next_alive = Instant::now() + ALIVE_EVERY;
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(alive_key(self.agent.as_str(), &self.consumer))
            .arg(crate::metrics::unix_ms())
            .arg("PX")
            .arg(ALIVE_TTL.as_millis() as u64)
            .query_async(&mut self.redis)
            .await;
        if let Err(error) = set {
            tracing::debug!(%error, "could not refresh the consumer's alive key");
        }
    }

    async fn read_task(
        &mut self,
        stream: &str,
        entry_id: &str,
    ) -> redis::RedisResult<Option<TaskMessage>> {
        let reply = redis::cmd("XRANGE")
            .arg(stream)
            .arg(entry_id)
            .arg(entry_id)
            .query_async(&mut self.redis)
            .await?;
        Ok(super::reply::range(reply)?
            .into_iter()
            .next()
            .and_then(|entry| TaskMessage::from_raw_fields(entry.raw_fields()).ok()))
    }
}

/// Sends `replies` in order, emptying it.
async fn flush(replies: &mut Vec<Reply>, events: &Events) -> Result<(), Stop> {
    for reply in replies.drain(..) {
        let event = match reply {
            Reply::Ready(event) => event,
            Reply::Ack {
                stream, entry_id, ..
            } => ConsumerEvent::Acked {
                stream: stream.to_owned(),
                entry_id,
            },
        };
        events.send(event).await.map_err(|_| Stop::ClientGone)?;
    }
    Ok(())
}

/// The in-flight key of a stream name and entry id from a client; `None` when either
/// is not one a task can have.
fn key(stream: &str, entry_id: &str) -> Option<Key> {
    let stream = Priority::from_stream(stream)?.stream();
    Some((stream, entry_id.parse().ok()?))
}

/// Where `stream` (a task stream's static name) is in [`Priority::ALL`].
fn priority_index(stream: &str) -> usize {
    Priority::ALL
        .iter()
        .position(|p| p.stream() == stream)
        .unwrap_or_default()
}

/// The refusal of an ack or nack for a task not in flight on this consumer.
fn unknown_delivery(stream: &str, entry_id: &str) -> ConsumerEvent {
    ConsumerEvent::Failed {
        code: ErrorCode::UnknownDelivery,
        message: format!(
            "{stream} {entry_id} is not a task delivered to this consumer and not yet acked"
        ),
    }
}

/// The answer to an ack or nack Redis did not take.
fn redis_failed() -> ConsumerEvent {
    ConsumerEvent::Failed {
        code: ErrorCode::RedisUnavailable,
        message: "Redis is not reachable; the task stays pending, retry".into(),
    }
}

/// XREADGROUP on `streams`, each from `from`.
fn read_group(
    group: &str,
    consumer: &str,
    streams: &[&'static str],
    from: &str,
    count: usize,
    block: Option<Duration>,
) -> redis::Cmd {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if let Some(block) = block {
        cmd.arg("BLOCK").arg(block.as_millis() as u64);
    }
    cmd.arg("STREAMS").arg(streams);
    for _ in streams {
        cmd.arg(from);
    }
    cmd
}

/// The entries of an XREADGROUP reply on the task streams (see [`super::reply`]).
fn entries(reply: Value) -> redis::RedisResult<Vec<(&'static str, Entry)>> {
    super::reply::entries(reply, |name| {
        Priority::from_stream(name).map(Priority::stream)
    })
}

/// Decodes a task from an entry's fields as Redis sent them, without copying them
/// (see [`TaskMessage::from_raw_fields`]).
fn decode_fields(fields: &[Value]) -> Result<TaskMessage, DecodeError> {
    TaskMessage::from_raw_fields(raw_pairs(fields))
}

/// A letter from the original entry's fields (looked up by name with `field`).
fn letter(
    field: impl Fn(&str) -> String,
    stream: &str,
    entry_id: &str,
    error: &str,
    retry_count: u64,
) -> DeadLetter {
    DeadLetter {
        original_id: field("id"),
        original_from: field("from"),
        original_to: field("to"),
        original_priority: field("priority"),
        original_type: field("type"),
        original_payload: field("payload"),
        original_created: field("created"),
        error: error.to_owned(),
        retry_count: retry_count.min(u32::MAX as u64) as u32,
        dead_at: crate::metrics::unix_secs(),
        original_stream: Some(stream.to_owned()),
        original_entry_id: Some(entry_id.to_owned()),
        ..Default::default()
    }
}

/// The letter for a well-formed task.
fn task_letter(
    task: &TaskMessage,
    stream: &str,
    entry_id: &str,
    error: &str,
    retry_count: u64,
) -> DeadLetter {
    let fields: HashMap<&str, String> = task.to_fields().into_iter().collect();
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    letter(field, stream, entry_id, error, retry_count)
}

/// The letter for an entry that does not decode: its fields as they are (the last of a
/// repeated field), saying which were missing and keeping the exact bytes of those
/// that are not UTF-8 (see [`DeadLetter::with_original_fields`]).
fn raw_letter(entry: &Entry, stream: &str, error: &str, count: u64) -> DeadLetter {
    letter(|_| String::new(), stream, &entry.id, error, count)
        .with_original_fields(entry.raw_fields())
}

/// The consumer names in use in this process, each locked while its consumer runs and
/// hands back, so that a client reconnecting under the same name (its old connection
/// not yet closed) starts after the old consumer has handed its tasks back.
static NAMES: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Default::default);

/// A consumer name held in [`NAMES`]; released on drop.
struct NameLock {
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl NameLock {
    /// Waits (a few seconds at most: a connection that is gone but not yet closed must
    /// not hold the name long) until no other consumer of this process holds the name.
    async fn acquire(group: &str, consumer: &str) -> Self {
        let key = format!("{group}\n{consumer}");
        let lock = NAMES
            .lock()
            .expect("name locks poisoned")
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = tokio::time::timeout(Duration::from_secs(3), lock.lock_owned())
            .await
            .ok();
        Self { key, guard }
    }
}

impl Drop for NameLock {
    fn drop(&mut self) {
        self.guard.take();
        let mut names = NAMES.lock().expect("name locks poisoned");
        // Forgotten once nobody holds or waits for it (names may be made up per client).
        if names
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            names.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::decode_task;
    use super::super::reply::text;
    use super::*;
    use redis::streams::StreamId;

    #[test]
    fn groups_are_per_agent_and_apart_from_the_plans_shared_group() {
        let pink = AgentName::parse("pink").unwrap();
        assert_eq!(group_name(&pink), "agent:pink");
        assert_ne!(group_name(&AgentName::parse("agents").unwrap()), "agents");
    }

    #[test]
    fn letters_keep_the_original_fields() {
        let task = TaskMessage {
            id: "t1".into(),
            from: "harold".into(),
            to: "pink".into(),
            priority: Priority::High,
            task_type: "coding".into(),
            payload: serde_json::json!({"a": 1}).as_object().unwrap().clone(),
            created: 1_704_556_800,
        };
        let letter = task_letter(&task, "cortex:tasks:high", "5-0", "boom", 3);
        assert_eq!(letter.original_task().unwrap(), task);
        assert_eq!(letter.retry_count, 3);
        assert_eq!(letter.original_entry_id.as_deref(), Some("5-0"));

        let entry = StreamId {
            id: "6-0".into(),
            map: [
                ("id".to_owned(), Value::BulkString(b"t2".to_vec())),
                ("payload".to_owned(), Value::BulkString(b"{bad".to_vec())),
            ]
            .into(),
            ..Default::default()
        };
        let letter = raw_letter(
            &entry.into(),
            "cortex:tasks:low",
            "field `payload`: not valid JSON",
            1,
        );
        assert_eq!(letter.original_id, "t2");
        assert_eq!(letter.original_payload, "{bad");
        assert_eq!(letter.original_to, "");
    }

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn task_fields(extra: &[(&str, Value)]) -> Vec<Value> {
        let mut fields: Vec<Value> = [
            ("id", "t1"),
            ("from", "harold"),
            ("to", "pink"),
            ("priority", "high"),
            ("type", "coding"),
            ("payload", r#"{"a":1}"#),
            ("created", "1704556800"),
        ]
        .iter()
        .flat_map(|(k, v)| [bulk(k), bulk(v)])
        .collect();
        for (k, v) in extra {
            fields.push(bulk(k));
            fields.push(v.clone());
        }
        fields
    }

    #[test]
    fn read_replies_are_taken_apart_without_redis_rs_maps() {
        assert!(entries(Value::Nil).unwrap().is_empty());
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("cortex:tasks:high"),
                Value::Array(vec![
                    Value::Array(vec![bulk("5-0"), Value::Array(task_fields(&[]))]),
                    // Deleted while pending.
                    Value::Array(vec![bulk("6-0"), Value::Nil]),
                ]),
            ]),
            Value::Array(vec![bulk("not:a:task:stream"), Value::Array(vec![])]),
        ]);
        let got = entries(reply).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "cortex:tasks:high");
        assert_eq!(got[0].1.id, "5-0");
        let task = decode_fields(got[0].1.fields.as_deref().unwrap()).unwrap();
        assert_eq!(task.id, "t1");
        assert_eq!(task.payload["a"], 1);
        assert_eq!(got[1].1.id, "6-0");
        assert!(got[1].1.fields.is_none());
        // RESP3 shape: a map of streams.
        let reply = Value::Map(vec![(
            bulk("cortex:tasks:low"),
            Value::Array(vec![Value::Array(vec![
                bulk("7-1"),
                Value::Array(task_fields(&[])),
            ])]),
        )]);
        assert_eq!(entries(reply).unwrap()[0].1.id, "7-1");
        assert!(entries(Value::Int(3)).is_err());
        assert!(entries(Value::Array(vec![Value::Array(vec![bulk("x")])])).is_err());
    }

    #[test]
    fn entries_decode_as_the_codec_decodes_them() {
        let cases = [
            task_fields(&[]),
            // Unknown fields are ignored, also when not UTF-8.
            task_fields(&[("extra", Value::BulkString(vec![0xff]))]),
            // The last of a repeated field wins.
            task_fields(&[("type", bulk("review"))]),
            // A known field that is not UTF-8, a bad payload, a missing field.
            task_fields(&[("to", Value::BulkString(vec![0xff]))]),
            task_fields(&[("payload", bulk("[1]"))]),
            task_fields(&[])[2..].to_vec(),
        ];
        for fields in cases {
            let map: HashMap<String, Value> = fields
                .chunks_exact(2)
                .map(|pair| (text(&pair[0]).unwrap().into_owned(), pair[1].clone()))
                .collect();
            assert_eq!(decode_fields(&fields), decode_task(&map), "{fields:?}");
        }
    }
}
