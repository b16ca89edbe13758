//! The watch reader: one blocking `XREAD` loop per relay over every task stream and
//! the heartbeat stream, publishing what it reads to the [`Hub`]. The same read
//! covers the DLQ and the events stream ([`crate::store::dlq::events`]), for the `dlq`
//! frames every watcher gets, and feeds heartbeats to the [`PresenceTracker`]. While
//! some session watches, it also covers the lifecycle stream (README, Task lifecycle),
//! for the `lifecycle` frames: from where the read before the first watch began, so a
//! record written since then is not missed (it may come up to one `BLOCK` late).
//!
//! It never acks, claims or creates groups, so it cannot change what agents receive
//! (README, Delivery: watch). It runs on a Redis connection of its own whose response timeout
//! is longer than its `BLOCK`, so a quiet stream is not mistaken for a dead server;
//! other commands use other connections (redis-rs issues #453, #1924).

use crate::engine::hub::{Audience, Hub};
use crate::engine::presence::PresenceTracker;
use crate::metrics::Metrics;
use crate::store::keys::{self, DLQ, EVENTS, HEARTBEATS, LIFECYCLE};
use crate::store::reply::Entry;
use crate::store::streams::{tails, xread};
use crate::store::value::text;
use cortex_shared::rest::DlqAction;
use cortex_shared::Backoff;
use cortex_shared::{EntryId, ServerFrame};
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How many entries one read returns at most.
const BATCH: usize = 512;

/// Reads the watched streams and feeds the hub until cancelled.
#[derive(Debug)]
pub struct WatchReader {
    client: redis::Client,
    hub: Hub,
    block: Duration,
    metrics: Arc<Metrics>,
    /// Told of every heartbeat read.
    presence: Option<Arc<PresenceTracker>>,
    /// Entry id last seen per stream (in [`WatchReader::read_streams`] order); `None`
    /// until first resolved (see [`WatchReader::start_from_now`]).
    positions: Option<Vec<String>>,
    /// When the reader was made (unix ms): without [`WatchReader::start_from_now`],
    /// everything added from then on is shown.
    created_ms: u64,
}

impl WatchReader {
    /// A reader of `client`'s streams that blocks up to `block` per read.
    pub fn new(client: redis::Client, hub: Hub, block: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            client,
            hub,
            block,
            metrics,
            presence: None,
            positions: None,
            created_ms: crate::metrics::unix_ms(),
        }
    }

    /// The same reader, telling `tracker` of every heartbeat it reads.
    pub fn with_presence(mut self, tracker: Arc<PresenceTracker>) -> Self {
        self.presence = Some(tracker);
        self
    }

    /// Resolves the start positions now (the streams' tails), so that every entry
    /// added from this call on is shown. Without it (Redis down or slow at start),
    /// reading starts at the reader's creation time once Redis answers: every entry
    /// whose id is from then on is shown, so nothing added while the relay waited
    /// for Redis is skipped (ids are Redis's clock, the creation time this machine's).
    pub async fn start_from_now(&mut self) -> redis::RedisResult<()> {
        let mut conn = self.connect().await?;
        let positions = tails(&mut conn, &Self::read_streams()).await?;
        self.seed_presence(&mut conn, &positions).await?;
        self.positions = Some(positions);
        Ok(())
    }

    /// The positions when [`WatchReader::start_from_now`] did not resolve them: after
    /// every id of the millisecond before the reader was made.
    async fn positions_since_creation(
        &self,
        conn: &mut MultiplexedConnection,
    ) -> redis::RedisResult<Vec<String>> {
        let since = format!("{}-{}", self.created_ms.saturating_sub(1), u64::MAX);
        let positions = vec![since; Self::read_streams().len()];
        self.seed_presence(conn, &positions).await?;
        Ok(positions)
    }

    /// Seeds the presence tracker with the heartbeats up to where reading starts, so
    /// each heartbeat is seen either by the seed (silently) or by the reader
    /// (announced), never both.
    async fn seed_presence(
        &self,
        conn: &mut MultiplexedConnection,
        positions: &[String],
    ) -> redis::RedisResult<()> {
        let Some(presence) = &self.presence else {
            return Ok(());
        };
        let heartbeats = Self::read_streams()
            .iter()
            .position(|s| *s == HEARTBEATS)
            .expect("heartbeats are read");
        presence.seed_from(conn, &positions[heartbeats]).await
    }

    /// The streams read: every task stream, most urgent first, then heartbeats.
    pub fn streams() -> Vec<&'static str> {
        let mut streams = keys::task_streams().to_vec();
        streams.push(HEARTBEATS);
        streams
    }

    /// What one read covers: [`WatchReader::streams`], then the DLQ and the events
    /// stream, which only produce `dlq` frames (watchers keep no position in them).
    pub fn read_streams() -> Vec<&'static str> {
        let mut streams = Self::streams();
        streams.push(DLQ);
        streams.push(EVENTS);
        streams
    }

    /// Runs until `cancel` fires. Redis failures are logged and retried with capped
    /// backoff; the read positions survive reconnects, so nothing added meanwhile is
    /// skipped.
    pub async fn run(mut self, cancel: CancellationToken) {
        let streams = Self::read_streams();
        let mut with_lifecycle = streams.clone();
        with_lifecycle.push(LIFECYCLE);
        // Where the lifecycle stream is read from while someone watches; `None` while
        // nobody does.
        let mut lifecycle: Option<String> = None;
        // When the last read began (unix ms).
        let mut last_read_ms = self.created_ms;
        let mut positions = self.positions.take();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            let attempt = async {
                let mut conn = self.connect().await?;
                if positions.is_none() {
                    positions = Some(self.positions_since_creation(&mut conn).await?);
                }
                Ok::<_, redis::RedisError>(conn)
            };
            let mut conn = tokio::select! {
                _ = cancel.cancelled() => return,
                conn = attempt => match conn {
                    Ok(conn) => conn,
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::warn!(error = %e, retry_in = ?delay, "watch reader cannot reach redis");
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(delay) => continue,
                        }
                    }
                },
            };
            backoff.reset();
            tracing::info!(?streams, "watch reader connected");
            let positions = positions.as_mut().expect("resolved above");
            loop {
                if self.hub.any_watching() {
                    let since = last_read_ms.saturating_sub(1);
                    positions.push(
                        lifecycle
                            .take()
                            .unwrap_or_else(|| format!("{since}-{}", u64::MAX)),
                    );
                } else {
                    lifecycle = None;
                }
                let reading = if positions.len() > streams.len() {
                    &with_lifecycle
                } else {
                    &streams
                };
                last_read_ms = crate::metrics::unix_ms();
                let read = tokio::select! {
                    _ = cancel.cancelled() => return,
                    read = xread(&mut conn, reading, positions, BATCH, self.block) => read,
                };
                if positions.len() > streams.len() {
                    lifecycle = positions.pop();
                }
                match read {
                    Ok(entries) => {
                        for (stream, entry) in entries {
                            if stream == LIFECYCLE {
                                lifecycle = Some(entry.id.clone());
                                self.dispatch_lifecycle(&entry);
                                continue;
                            }
                            let index = streams
                                .iter()
                                .position(|s| *s == stream)
                                .expect("only the streams read");
                            positions[index].clone_from(&entry.id);
                            self.dispatch(stream, entry);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "watch reader lost redis; reconnecting");
                        self.metrics.redis_reconnects.inc();
                        break;
                    }
                }
            }
        }
    }

    async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(self.block + Duration::from_secs(5)));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// Publishes one entry to the hub, or logs why it cannot be shown.
    fn dispatch(&self, stream: &'static str, entry: Entry) {
        let Ok(entry_id) = entry.id.parse::<EntryId>() else {
            tracing::warn!(stream, entry_id = %entry.id, "entry id Redis returned does not parse");
            return;
        };
        if stream == DLQ || stream == EVENTS {
            if self.hub.reaches(&Audience::Everyone) {
                self.dispatch_dlq(stream, entry_id, &entry);
            }
            return;
        }
        // A task no session watches is not even decoded, nor are its fields put in a
        // map (heartbeats are, for presence).
        if stream != HEARTBEATS {
            let to = entry.field("to").and_then(text).unwrap_or_default();
            if !self.hub.reaches(&Audience::TaskFor(to.into_owned())) {
                return;
            }
        }
        // The same frames a resume or history read sends (one function builds both).
        let entry = entry.into_stream_id();
        let Some((entry_id, audience, frame)) = super::history::watch_frame(stream, &entry) else {
            return;
        };
        if let (Audience::HeartbeatOf(agent), Some(presence)) = (&audience, &self.presence) {
            presence.observe(agent, entry_id.ms);
        }
        self.hub.publish(stream, entry_id, audience, &frame);
    }
}

impl WatchReader {
    /// An entry of lifecycle records (one write's): a `lifecycle` frame per record for
    /// the sessions watching its agent and those watching `*` (a record without an
    /// agent: `*` only). An entry that holds no records (written by hand: bytes that
    /// are not UTF-8, a field missing, `records` that is not a JSON array) is skipped
    /// and logged.
    fn dispatch_lifecycle(&self, entry: &Entry) {
        let Ok(entry_id) = entry.id.parse::<EntryId>() else {
            return;
        };
        match crate::store::lifecycle::decode_entry(entry) {
            Ok(records) => {
                for record in records {
                    let audience = Audience::Lifecycle(record.agent.clone());
                    // Nobody watching its agent: not even encoded.
                    if self.hub.reaches(&audience) {
                        self.hub
                            .publish(LIFECYCLE, entry_id, audience, &record.frame());
                    }
                }
            }
            Err(error) => {
                tracing::warn!(entry_id = %entry.id, %error, "lifecycle entry holds no records; skipped")
            }
        }
    }

    /// A letter added to the DLQ, or an event saying letters were retried or deleted:
    /// a `dlq` frame for every watcher.
    fn dispatch_dlq(&self, stream: &'static str, entry_id: EntryId, entry: &Entry) {
        let frame = if stream == DLQ {
            ServerFrame::Dlq {
                action: DlqAction::Added,
                dlq_ids: vec![entry.id.clone()],
                letter: Some(Box::new(crate::store::dlq::letter_of(&entry_id, entry))),
            }
        } else {
            let Some(event) = crate::store::dlq::events::decode(entry) else {
                tracing::debug!(entry_id = %entry.id, "event of an unknown kind ignored");
                return;
            };
            ServerFrame::Dlq {
                action: event.action,
                dlq_ids: event.ids,
                letter: None,
            }
        };
        self.hub
            .publish(stream, entry_id, Audience::Everyone, &frame);
    }
}
