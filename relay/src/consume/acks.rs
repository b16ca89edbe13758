//! A client's acks and nacks: batched, carried out in order, each answered in that
//! order (clients match replies to requests).
//!
//! Nothing is acked on the client's behalf: only a task in flight on this consumer
//! can be acked or nacked, anything else is refused (`unknown_delivery`) and acks
//! nothing. Acks already queued cost one `XACK` per stream, pipelined, sent before the
//! next nack and at the end of the batch; an `acked` goes out only once Redis
//! confirmed it. If Redis fails meanwhile, each ack and nack not carried out is
//! answered `redis_unavailable`, its task stays in flight (the client may ack it
//! again) and pending in Redis, and the consumer reconnects.
//!
//! Each `acked` record (`detail.ms`: since that delivery) goes in the round trip of its
//! `XACK`, after it; each `nacked` (`detail.error`) with its hand-back; a task out of
//! deliveries gets `dead_lettered` from the letter's script instead. A write Redis did
//! not take writes none of them.

use super::{key, rank, Consumer, ConsumerCommand, ConsumerEvent, Events, Flight, Stop};
use crate::metrics::Outcome;
use crate::store::consumer::{ByPriority, GroupStore};
use cortex_shared::lifecycle::LifecycleEvent;
use cortex_shared::{EntryId, ErrorCode, Priority, TaskMessage};
use tokio::sync::mpsc;

/// Most client commands taken from the queue to handle as one batch.
const BATCH: usize = 256;

/// The reply a command of a batch gets, in the order the commands came.
enum Reply {
    /// Known already (a refusal).
    Ready(ConsumerEvent),
    /// An ack, answered once its `XACK` is confirmed.
    Ack {
        priority: Priority,
        id: EntryId,
        entry_id: String,
        flight: Flight,
    },
}

impl<S: GroupStore> Consumer<S> {
    /// Carries out `first` and every command queued behind it, in order (see the
    /// module's header).
    pub(super) async fn handle(
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
            let Some((priority, id, flight)) = self.take_in_flight(&stream, &entry_id) else {
                replies.push(Reply::Ready(unknown_delivery(&stream, &entry_id)));
                continue;
            };
            let Some(error) = nack_error else {
                replies.push(Reply::Ack {
                    priority,
                    id,
                    entry_id,
                    flight,
                });
                continue;
            };
            // A nack waits for the acks before it, so that the replies keep their order.
            if let Err(e) = self.ack_all(&mut replies, events).await {
                self.in_flight.insert((priority, id), flight);
                events
                    .send(redis_failed())
                    .await
                    .map_err(|_| Stop::ClientGone)?;
                return self.give_up(e, batch, events).await;
            }
            match self.nack(priority, &entry_id, &error, &flight).await {
                Ok(dead_lettered) => {
                    self.metrics.nacks.inc();
                    if !dead_lettered {
                        // A dead letter is counted where it is written.
                        self.metrics
                            .agent_outcome(self.agent.as_str(), Outcome::Nacked);
                    }
                    replies.push(Reply::Ready(ConsumerEvent::Nacked {
                        stream: priority.stream().to_owned(),
                        entry_id,
                        dead_lettered,
                    }));
                }
                Err(e) => {
                    self.in_flight.insert((priority, id), flight);
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

    /// Sends the `XACK`s of the acks in `replies` (one per stream, pipelined), then
    /// every reply in order. If Redis fails, those acks' tasks go back in flight and
    /// each is answered `redis_unavailable` instead; the error is returned.
    async fn ack_all(&mut self, replies: &mut Vec<Reply>, events: &Events) -> Result<(), Stop> {
        let mut ids = ByPriority::default();
        let mut acked = Vec::new();
        for reply in replies.iter() {
            if let Reply::Ack {
                priority,
                id,
                entry_id: _,
                flight,
            } = reply
            {
                ids[rank(*priority)].push(*id);
                if self.lifecycle {
                    let ms = flight.at.elapsed().as_millis() as u64;
                    // The entry id as Redis writes it (the client's text may differ:
                    // the store matches the two).
                    let canonical = id.to_string();
                    acked.extend(
                        self.record(
                            LifecycleEvent::Acked,
                            &flight.task_id,
                            *priority,
                            &canonical,
                        )
                        .map(|r| r.detail("ms", ms).acking()),
                    );
                }
            }
        }
        let result = if ids.iter().all(Vec::is_empty) {
            Ok(())
        } else {
            let records = self.take_records(acked);
            self.store.ack(&ids, &records).await
        };
        match result {
            Ok(()) => {
                let mut elapsed = Vec::new();
                for reply in replies.iter() {
                    if let Reply::Ack { flight, .. } = reply {
                        let after = flight.at.elapsed();
                        self.metrics.acks.inc();
                        self.metrics.delivery_to_ack.record(after);
                        elapsed.push(after);
                    }
                }
                if !elapsed.is_empty() {
                    self.metrics.agent_acked(self.agent.as_str(), elapsed);
                }
                flush(replies, events).await
            }
            Err(e) => {
                for reply in replies.iter_mut() {
                    if let Reply::Ack {
                        priority,
                        id,
                        flight,
                        ..
                    } = reply
                    {
                        self.in_flight.insert((*priority, *id), flight.clone());
                        *reply = Reply::Ready(redis_failed());
                    }
                }
                flush(replies, events).await?;
                Err(Stop::Redis(e))
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
        priority: Priority,
        entry_id: &str,
        error: &str,
        flight: &Flight,
    ) -> redis::RedisResult<bool> {
        let count = flight.count;
        if count < self.settings.max_deliveries {
            let record = self
                .record(LifecycleEvent::Nacked, &flight.task_id, priority, entry_id)
                .map(|r| r.detail("error", error).detail("delivery", count));
            self.release(priority, entry_id, record).await?;
            return Ok(false);
        }
        let task = self
            .store
            .entry(priority, entry_id)
            .await?
            .and_then(|entry| TaskMessage::from_raw_fields(entry.raw_fields()).ok());
        match task {
            Some(task) => {
                self.dead_letter_task(&task, priority, entry_id, error, count)
                    .await?
            }
            // Deleted from the stream meanwhile: nothing to keep.
            None => self.store.ack_one(priority, entry_id).await?,
        }
        Ok(true)
    }

    /// Removes a delivery from the in-flight set: its priority, entry id, and what is
    /// known of it; `None` if it is not in flight here.
    fn take_in_flight(
        &mut self,
        stream: &str,
        entry_id: &str,
    ) -> Option<(Priority, EntryId, Flight)> {
        let (priority, id) = key(stream, entry_id)?;
        self.in_flight
            .remove(&(priority, id))
            .map(|flight| (priority, id, flight))
    }
}

/// Sends `replies` in order, emptying it.
async fn flush(replies: &mut Vec<Reply>, events: &Events) -> Result<(), Stop> {
    for reply in replies.drain(..) {
        let event = match reply {
            Reply::Ready(event) => event,
            Reply::Ack {
                priority, entry_id, ..
            } => ConsumerEvent::Acked {
                stream: priority.stream().to_owned(),
                entry_id,
            },
        };
        events.send(event).await.map_err(|_| Stop::ClientGone)?;
    }
    Ok(())
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
