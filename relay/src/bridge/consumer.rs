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
//! - On (re)connect, the consumer first re-reads its own pending entries (id `0`).

use super::codec::decode_task;
use super::Backoff;
use crate::dlq::{dead_letter, Once};
use crate::metrics::{unix_ms, Metrics};
use cortex_shared::{AgentName, DeadLetter, ErrorCode, Priority, TaskMessage};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use redis::{AsyncConnectionConfig, Value};
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

/// The consumer group of `agent`.
pub fn group_name(agent: &AgentName) -> String {
    format!("agent:{agent}")
}

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
    in_flight: HashMap<(&'static str, String), (u64, Instant)>,
    next_reclaim: Instant,
    /// Deliveries left before this consumer stops taking tasks (`None`: no limit).
    remaining: Option<usize>,
}

type Events = mpsc::Sender<ConsumerEvent>;

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
            next_reclaim: Instant::now(),
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

    /// Delivers until `cancel` fires or `events` closes. Redis failures are retried
    /// with capped backoff; what was in flight stays pending in Redis meanwhile.
    pub async fn run(
        mut self,
        events: Events,
        mut commands: mpsc::Receiver<ConsumerCommand>,
        cancel: CancellationToken,
    ) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut ready_sent = false;
        loop {
            let result = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.session(&events, &mut commands, &mut ready_sent) => r,
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
        // finish (those still in flight on this connection are not sent twice).
        for priority in Priority::ALL {
            if let Err(stop) = self.read_once(&mut conn, priority, "0", events).await {
                return stop;
            }
        }
        loop {
            while let Ok(command) = commands.try_recv() {
                if let Err(stop) = self.handle(command, events).await {
                    return stop;
                }
            }
            if Instant::now() >= self.next_reclaim {
                if let Err(stop) = self.reclaim(events).await {
                    return stop;
                }
                self.next_reclaim = Instant::now() + self.reclaim_every();
            }
            if self.credit() == 0 {
                // Wait for an ack (or the next reclaim round) before reading more.
                tokio::select! {
                    command = commands.recv() => match command {
                        Some(command) => if let Err(stop) = self.handle(command, events).await {
                            return stop;
                        },
                        None => return Stop::ClientGone,
                    },
                    _ = tokio::time::sleep_until(self.next_reclaim.into()) => {}
                }
                continue;
            }
            // Non-blocking, most urgent first; restart from critical after any hit.
            let mut delivered = false;
            for priority in Priority::ALL {
                match self.read_once(&mut conn, priority, ">", events).await {
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
            // Everything is empty: block on all four, handling acks meanwhile.
            let block = self
                .settings
                .block
                .min(self.next_reclaim.saturating_duration_since(Instant::now()))
                .max(Duration::from_millis(1));
            let streams = Priority::ALL.map(Priority::stream);
            let cmd = read_group(
                &self.group,
                &self.consumer,
                &streams,
                ">",
                self.credit(),
                Some(block),
            );
            let reply = {
                // The read stays in flight while acks are handled on the other
                // connection; dropping it would lose the entries it returns.
                let read = cmd.query_async::<Option<StreamReadReply>>(&mut conn);
                tokio::pin!(read);
                loop {
                    tokio::select! {
                        reply = &mut read => break reply,
                        command = commands.recv() => match command {
                            Some(command) => if let Err(stop) = self.handle(command, events).await {
                                return stop;
                            },
                            None => return Stop::ClientGone,
                        },
                    }
                }
            };
            let mut entries = match reply {
                Ok(reply) => flatten(reply),
                Err(e) => return e.into(),
            };
            entries.sort_by_key(|(stream, _)| Priority::from_stream(stream));
            for (stream, entry) in entries {
                if let Err(stop) = self.process(stream, entry, 1, events).await {
                    return stop;
                }
            }
        }
    }

    fn credit(&self) -> usize {
        let credit = self.settings.prefetch.saturating_sub(self.in_flight.len());
        self.remaining.map_or(credit, |left| credit.min(left))
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

    /// One non-blocking read of `stream` from `from` (`>` new, `0` own pending);
    /// processes and returns how many entries came back.
    async fn read_once(
        &mut self,
        conn: &mut MultiplexedConnection,
        priority: Priority,
        from: &str,
        events: &Events,
    ) -> Result<usize, Stop> {
        let count = if from == ">" {
            self.credit()
        } else {
            self.remaining.unwrap_or(1000).min(1000)
        };
        if count == 0 {
            return Ok(0);
        }
        let reply = read_group(
            &self.group,
            &self.consumer,
            &[priority.stream()],
            from,
            count,
            None,
        )
        .query_async(conn)
        .await?;
        let entries = flatten(reply);
        let n = entries.len();
        for (stream, entry) in entries {
            let count = if from == ">" {
                1
            } else {
                self.pending_count(stream, &entry.id).await?
            };
            self.process(stream, entry, count, events).await?;
        }
        Ok(n)
    }

    /// Delivers, skips, or dead-letters one entry now pending for this consumer.
    async fn process(
        &mut self,
        stream: &'static str,
        entry: StreamId,
        count: u64,
        events: &Events,
    ) -> Result<(), Stop> {
        let key = (stream, entry.id.clone());
        if self.in_flight.contains_key(&key) {
            return Ok(());
        }
        if entry.map.is_empty() {
            // Deleted from the stream while pending: nothing left to deliver.
            self.ack(stream, &entry.id).await?;
            return Ok(());
        }
        let task = match decode_task(&entry.map) {
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
            self.ack(stream, &entry.id).await?;
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
                let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                    .arg(stream)
                    .arg(&self.group)
                    .arg(&self.consumer)
                    .arg(min_idle)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(credit)
                    .query_async(&mut self.redis)
                    .await?;
                for entry in reply.claimed {
                    // XAUTOCLAIM counted this delivery; ask Redis for the total.
                    let count = self.pending_count(stream, &entry.id).await?;
                    self.in_flight.remove(&(stream, entry.id.clone()));
                    self.process(stream, entry, count, events).await?;
                }
                cursor = reply.next_stream_id;
                if cursor == "0-0" {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Carries out an ack or nack. If Redis fails meanwhile, the client is told
    /// (`redis_unavailable`), the task stays in flight (the client may ack it again),
    /// and the consumer reconnects.
    async fn handle(&mut self, command: ConsumerCommand, events: &Events) -> Result<(), Stop> {
        let (stream, entry_id, nack_error) = match command {
            ConsumerCommand::Ack { stream, entry_id } => (stream, entry_id, None),
            ConsumerCommand::Nack {
                stream,
                entry_id,
                error,
            } => (stream, entry_id, Some(error)),
        };
        let Some((stream, count, delivered)) = self.take_in_flight(&stream, &entry_id) else {
            let refusal = ConsumerEvent::Failed {
                code: ErrorCode::UnknownDelivery,
                message: format!(
                    "{stream} {entry_id} is not a task delivered to this consumer and not \
                     yet acked"
                ),
            };
            return events.send(refusal).await.map_err(|_| Stop::ClientGone);
        };
        let outcome = match &nack_error {
            None => self
                .ack(stream, &entry_id)
                .await
                .inspect(|()| {
                    self.metrics.acks.inc();
                    self.metrics.delivery_to_ack.record(delivered.elapsed());
                })
                .map(|()| ConsumerEvent::Acked {
                    stream: stream.to_owned(),
                    entry_id: entry_id.clone(),
                }),
            Some(error) => self
                .nack(stream, &entry_id, error, count)
                .await
                .inspect(|_| self.metrics.nacks.inc())
                .map(|dead_lettered| ConsumerEvent::Nacked {
                    stream: stream.to_owned(),
                    entry_id: entry_id.clone(),
                    dead_lettered,
                }),
        };
        match outcome {
            Ok(reply) => events.send(reply).await.map_err(|_| Stop::ClientGone),
            Err(e) => {
                self.in_flight
                    .insert((stream, entry_id), (count, delivered));
                let failed = ConsumerEvent::Failed {
                    code: ErrorCode::RedisUnavailable,
                    message: "Redis is not reachable; the task stays pending, retry".into(),
                };
                events.send(failed).await.map_err(|_| Stop::ClientGone)?;
                Err(Stop::Redis(e))
            }
        }
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

    /// Removes a delivery from the in-flight set: its stream (as a static name),
    /// delivery count and delivery time; `None` if it is not in flight here.
    fn take_in_flight(
        &mut self,
        stream: &str,
        entry_id: &str,
    ) -> Option<(&'static str, u64, Instant)> {
        let stream = Priority::from_stream(stream)?.stream();
        self.in_flight
            .remove(&(stream, entry_id.to_owned()))
            .map(|(count, at)| (stream, count, at))
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

    async fn read_task(
        &mut self,
        stream: &str,
        entry_id: &str,
    ) -> redis::RedisResult<Option<TaskMessage>> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream)
            .arg(entry_id)
            .arg(entry_id)
            .query_async(&mut self.redis)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .next()
            .and_then(|entry| decode_task(&entry.map).ok()))
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

/// The entries of a read, each with its (static) stream name.
fn flatten(reply: Option<StreamReadReply>) -> Vec<(&'static str, StreamId)> {
    let Some(reply) = reply else {
        return Vec::new();
    };
    reply
        .keys
        .into_iter()
        .filter_map(|key| Priority::from_stream(&key.key).map(|p| (p.stream(), key.ids)))
        .flat_map(|(stream, ids)| ids.into_iter().map(move |id| (stream, id)))
        .collect()
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

/// The letter for an entry that does not decode: its fields as they are.
fn raw_letter(entry: &StreamId, stream: &str, error: &str, count: u64) -> DeadLetter {
    let field = |name: &str| match entry.map.get(name) {
        Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Some(Value::SimpleString(s)) => s.clone(),
        Some(Value::Int(i)) => i.to_string(),
        _ => String::new(),
    };
    letter(field, stream, &entry.id, error, count)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            &entry,
            "cortex:tasks:low",
            "field `payload`: not valid JSON",
            1,
        );
        assert_eq!(letter.original_id, "t2");
        assert_eq!(letter.original_payload, "{bad");
        assert_eq!(letter.original_to, "");
    }
}
