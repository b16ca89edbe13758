//! The consumer's loop: it runs until cancelled or its client goes, reconnecting to
//! Redis with capped backoff; over each connection it recovers its own pending
//! entries, then reads new ones (most urgent first, as much as [`super::schedule`]
//! allows), reclaims, refreshes its alive key, and handles acks while a read blocks;
//! when it ends, it hands back what is in flight and leaves its group once it holds
//! nothing (at once, or when other consumers have taken what it held).

use super::names::NameLock;
use super::schedule::{self, Load, TopUp};
use super::{Consumer, ConsumerCommand, ConsumerEvent, Events, Stop, ALIVE_EVERY};
use crate::store::consumer::{GroupReader, GroupStore};
use crate::store::reply::Entry;
use cortex_shared::{Backoff, ErrorCode, Priority};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Entries per stream [`Consumer::hand_back_pending`] makes due at most.
const HAND_BACK_MAX: usize = 10_000;

impl<S: GroupStore> Consumer<S> {
    /// Delivers until `cancel` fires or `events` closes, then hands back what is in
    /// flight ([`Consumer::hand_back`]). Redis failures are retried with capped
    /// backoff; what was in flight stays pending in Redis meanwhile.
    pub(super) async fn run(
        mut self,
        events: Events,
        mut commands: mpsc::Receiver<ConsumerCommand>,
        cancel: CancellationToken,
    ) {
        // A consumer of this name that is going (its client reconnected) hands back
        // its tasks first, so that this one's recovery sees them as due.
        let name = NameLock::acquire(&self.group, &self.consumer).await;
        let mut reader = None;
        self.deliver(&events, &mut commands, &cancel, &mut reader)
            .await;
        let holding = !self.in_flight.is_empty();
        // Entries skipped (not this agent's) and not yet acked would keep it in the
        // group: they are acked now (a failure leaves them for a reclaim).
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ack_skipped()).await;
        self.hand_back().await;
        // A read cancelled here may still be on its way to Redis or blocked there, and
        // would make this consumer anew after it left: it is ended first.
        let reads_over = match reader {
            Some(reader) => self.finish_reads(reader).await,
            None => true,
        };
        if !reads_over || (!holding && self.leave().await) {
            drop(name);
            return;
        }
        // It holds entries: its tasks handed back, or entries a read cancelled here
        // took and never sent. Those too are made due now, and once other consumers
        // have taken them this one holds nothing and leaves (see `leave_once_empty`).
        self.hand_back_pending().await;
        drop(name);
        tokio::spawn(self.leave_once_empty());
    }

    /// Makes every entry Redis holds pending for this consumer due at once (idle a
    /// whole visibility timeout: the next reclaim by any consumer takes it), counting no
    /// delivery. At most [`HAND_BACK_MAX`] per stream; the rest wait out the timeout.
    async fn hand_back_pending(&mut self) {
        let mut ids = crate::store::consumer::ByPriority::default();
        for priority in Priority::ALL {
            let listed = tokio::time::timeout(
                Duration::from_secs(2),
                self.store.pending(priority, None, HAND_BACK_MAX),
            )
            .await;
            if let Ok(Ok(pending)) = listed {
                ids[super::rank(priority)].extend(
                    pending
                        .iter()
                        .filter_map(|p| p.id.parse::<cortex_shared::EntryId>().ok()),
                );
            }
        }
        if ids.iter().all(Vec::is_empty) {
            return;
        }
        let idle = self.settings.visibility;
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.store.hand_back(&ids, idle, &[]),
        )
        .await;
    }

    /// After a connection that ended holding entries: tries to leave once a second
    /// until other consumers have taken them (then it holds nothing), for a visibility
    /// timeout and a few seconds more; it stops at once if a consumer of the same name
    /// starts in this process meanwhile (the name is its then). What is still here
    /// after that is the reaper's ([`crate::engine::reaper`]).
    async fn leave_once_empty(mut self) {
        let until = Instant::now() + self.settings.visibility + Duration::from_secs(5);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(name) = NameLock::try_acquire(&self.group, &self.consumer) else {
                return;
            };
            let left = self.leave().await;
            drop(name);
            if left {
                return;
            }
        }
    }

    /// Ends the reads' connection once Redis is done with every read sent on it
    /// ([`GroupStore::finish_reads`]); whether it was, in time.
    async fn finish_reads(&mut self, reader: S::Reader) -> bool {
        let wait = self.settings.block + Duration::from_secs(1);
        match tokio::time::timeout(wait, self.store.finish_reads(reader)).await {
            Ok(Ok(())) => true,
            Ok(Err(error)) => {
                tracing::debug!(agent = %self.agent, consumer = %self.consumer, %error,
                    "reads not finished");
                false
            }
            Err(_) => false,
        }
    }

    /// Once its connection is over: removes this consumer from its group and deletes
    /// its alive key, unless Redis holds an entry pending for it (handed back, or read
    /// and not yet delivered or skipped), which stays for another consumer to reclaim
    /// (the reaper, [`crate::engine::reaper`], removes it once it holds nothing and
    /// is idle long enough). A consumer left behind by a failure here, or by a read
    /// still blocked in Redis when the connection went (it makes the consumer anew),
    /// is the reaper's too.
    async fn leave(&mut self) -> bool {
        match tokio::time::timeout(Duration::from_secs(2), self.store.leave()).await {
            Ok(Ok(true)) => {
                tracing::debug!(agent = %self.agent, consumer = %self.consumer,
                    "consumer removed from its group");
                return true;
            }
            Ok(Ok(false)) => tracing::debug!(agent = %self.agent, consumer = %self.consumer,
                "consumer kept: it has tasks pending"),
            Ok(Err(error)) => tracing::debug!(agent = %self.agent, consumer = %self.consumer,
                %error, "consumer not removed from its group"),
            Err(_) => tracing::debug!(agent = %self.agent, consumer = %self.consumer,
                "consumer not removed from its group in time"),
        }
        false
    }

    /// Delivers over one Redis connection after another; the reads' connection in use
    /// is kept in `reader`, so that it outlives a cancelled read.
    async fn deliver(
        &mut self,
        events: &Events,
        commands: &mut mpsc::Receiver<ConsumerCommand>,
        cancel: &CancellationToken,
        reader: &mut Option<S::Reader>,
    ) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut ready_sent = false;
        loop {
            let result = tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.connected(events, commands, &mut ready_sent, reader) => r,
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

    /// One Redis connection's worth of delivery; returns why it stopped.
    async fn connected(
        &mut self,
        events: &Events,
        commands: &mut mpsc::Receiver<ConsumerCommand>,
        ready_sent: &mut bool,
        slot: &mut Option<S::Reader>,
    ) -> Stop {
        *slot = None;
        let reader = match self.store.connect().await {
            Ok(reader) => slot.insert(reader),
            Err(e) => return e.into(),
        };
        if let Err(e) = self.store.ensure_groups().await {
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
        // arrived since (see [`schedule::skip_sweep`]).
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
                self.next_reclaim =
                    Instant::now() + schedule::reclaim_every(self.settings.visibility);
            }
            if !schedule::may_read(self.load()) {
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
            let credit = self.credit();
            let count = schedule::share(credit);
            // The sweep: non-blocking, most urgent first; restart from critical after
            // any hit.
            let mut delivered = false;
            let releasing = !self.held.is_empty();
            for priority in Priority::ALL {
                if schedule::skip_sweep(fresh, credit) {
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
                match self.read_once(reader, priority, events).await {
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
            let until = self
                .next_reclaim
                .min(self.next_alive)
                .saturating_duration_since(Instant::now());
            let block = schedule::block_for(self.settings.block, until);
            let streams = Priority::ALL;
            let reply = {
                // The read stays in flight while acks are handled on the other
                // connection; dropping it would lose the entries it returns.
                let read = reader.read_new(&streams, count, Some(block));
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
            let mut entries = match reply {
                Ok(entries) => entries,
                Err(e) => return e.into(),
            };
            fresh = schedule::kept_up(&schedule::per_stream(&entries), count);
            match self.read_more_urgent(reader, &mut entries).await {
                Ok(None) => {}
                Ok(Some(full)) => {
                    let (now, later) = schedule::hold_back(entries, full);
                    entries = now;
                    self.held.extend(later);
                    fresh = false;
                }
                Err(stop) => return stop,
            }
            schedule::most_urgent_first(&mut entries);
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
    /// share; never takes more than the credit. Returns the most urgent stream that
    /// may still hold more when the credit ran out.
    async fn read_more_urgent(
        &mut self,
        reader: &mut S::Reader,
        entries: &mut Vec<(Priority, Entry)>,
    ) -> Result<Option<Priority>, Stop> {
        let mut full = None;
        loop {
            let (streams, count) = match schedule::top_up(entries, self.credit()) {
                TopUp::Done => return Ok(None),
                TopUp::OutOfCredit { least } => return Ok(full.filter(|f| *f < least)),
                TopUp::Read { streams, count } => (streams, count),
            };
            let more = reader.read_new(streams, count, None).await?;
            let per_stream = schedule::per_stream(&more);
            entries.extend(more);
            full = schedule::first_full(&per_stream, count);
            if full.is_none() {
                return Ok(None);
            }
        }
    }

    /// Delivers the held entries of `priority` (see [`schedule::release`]).
    async fn release_held(&mut self, priority: Priority, events: &Events) -> Result<(), Stop> {
        if self.held.is_empty() {
            return Ok(());
        }
        let now = schedule::release(&mut self.held, priority);
        self.process_new(now, events).await
    }

    /// One non-blocking read of new entries of `priority`'s stream; processes and
    /// returns how many came back.
    async fn read_once(
        &mut self,
        reader: &mut S::Reader,
        priority: Priority,
        events: &Events,
    ) -> Result<usize, Stop> {
        let count = self.credit();
        if count == 0 {
            return Ok(0);
        }
        let entries = reader.read_new(&[priority], count, None).await?;
        let n = entries.len();
        self.process_new(entries, events).await?;
        Ok(n)
    }

    /// What the credit depends on, now.
    pub(super) fn load(&self) -> Load {
        Load {
            prefetch: self.settings.prefetch,
            in_flight: self.in_flight.len(),
            held: self.held.len(),
            remaining: self.remaining,
        }
    }

    /// Entries that may be read now (see [`schedule::credit`]).
    pub(super) fn credit(&self) -> usize {
        schedule::credit(self.load())
    }

    /// Refreshes the alive key, writing the records gathered since the last write; a
    /// failure only waits for the next round (the reads report Redis being gone).
    async fn say_alive(&mut self) {
        self.next_alive = Instant::now() + ALIVE_EVERY;
        // Records of deliveries not yet written go with it (see [`Consumer::records`]).
        let records = self.take_records([]);
        if let Err(error) = self.store.say_alive(&records).await {
            tracing::debug!(%error, "could not refresh the consumer's alive key");
        }
    }
}
