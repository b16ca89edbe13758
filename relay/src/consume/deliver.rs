//! What becomes of an entry now pending for this consumer: sent to the client (a task
//! for the agent), acked without delivery (one for another agent, or deleted), or
//! dead-lettered (malformed, or out of deliveries).
//!
//! An entry is read into this consumer's pending list (`XREADGROUP`, `XAUTOCLAIM`, or
//! taken back on reconnect) before it is sent, and stays pending until the client
//! acks it. Each agent has its own group (`agent:<name>`) on every task stream,
//! created at `0` so that tasks published before the agent first connected are
//! delivered too; the group reads every entry, and acking one addressed to another
//! agent only affects this agent's group.

use super::{rank, Consumer, ConsumerEvent, Events, Flight, Stop};
use crate::metrics::unix_ms;
use crate::store::codec::decode_task_fields;
use crate::store::consumer::{ByPriority, GroupStore};
use crate::store::reply::Entry;
use cortex_shared::lifecycle::LifecycleEvent;
use cortex_shared::{EntryId, Priority};
use std::time::{Duration, Instant};

impl<S: GroupStore> Consumer<S> {
    /// Processes entries read the first time, then acks those not for this agent.
    pub(super) async fn process_new(
        &mut self,
        entries: Vec<(Priority, Entry)>,
        events: &Events,
    ) -> Result<(), Stop> {
        for (priority, entry) in entries {
            self.process(priority, entry, 1, None, events).await?;
        }
        self.ack_skipped().await
    }

    /// Delivers, skips, or dead-letters one entry now pending for this consumer,
    /// delivered `count` times (this one included); `from` is the consumer it was
    /// claimed from, when it was another. A delivery's record (`reclaimed` first when
    /// claimed from another consumer, then `delivered`, the first of a traced task
    /// adding it to its trace) is kept, once the task is sent, for the next write the
    /// consumer sends anyway ([`Consumer::take_records`]).
    pub(super) async fn process(
        &mut self,
        priority: Priority,
        entry: Entry,
        count: u64,
        from: Option<&str>,
        events: &Events,
    ) -> Result<(), Stop> {
        let stream = priority.stream();
        let Ok(id) = entry.id.parse::<EntryId>() else {
            // Redis only hands out ids of this form.
            tracing::warn!(stream, entry_id = %entry.id, "entry id not understood; skipped");
            return Ok(());
        };
        let key = (priority, id);
        if self.in_flight.contains_key(&key) {
            return Ok(());
        }
        let Some(fields) = &entry.fields else {
            // Deleted from the stream while pending: nothing left to deliver.
            self.skipped.push(key);
            return Ok(());
        };
        let task = match decode_task_fields(fields) {
            Ok(task) => task,
            Err(e) => {
                self.dead_letter_malformed(priority, &entry, &e, count)
                    .await?;
                return Ok(());
            }
        };
        if !task.is_for(self.agent.as_str()) {
            self.skipped.push(key);
            return Ok(());
        }
        if count > self.settings.max_deliveries {
            let error = format!("not acked after {} deliveries", count - 1);
            self.dead_letter_task(&task, priority, &entry.id, &error, count - 1)
                .await?;
            return Ok(());
        }
        if self.remaining == Some(0) {
            return Ok(());
        }
        self.in_flight.insert(
            key,
            Flight {
                count,
                at: Instant::now(),
                task_id: if self.lifecycle {
                    task.id.clone()
                } else {
                    String::new()
                },
            },
        );
        self.remaining = self.remaining.map(|left| left - 1);
        self.metrics.deliveries.inc();
        if count == 1 {
            // The entry id's first part is when Redis added it (its clock, our machine).
            let latency = unix_ms().saturating_sub(id.ms);
            self.metrics
                .publish_to_delivery
                .record(Duration::from_millis(latency));
        }
        let records = if self.lifecycle {
            let reclaimed = from.filter(|f| *f != self.consumer).and_then(|from| {
                self.record(LifecycleEvent::Reclaimed, &task.id, priority, &entry.id)
                    .map(|r| r.detail("from", from).detail("delivery", count))
            });
            let delivered = self
                .record(LifecycleEvent::Delivered, &task.id, priority, &entry.id)
                .map(|r| {
                    r.detail("delivery", count)
                        .traced(task.correlation_id.as_deref().filter(|_| count == 1))
                });
            reclaimed.into_iter().chain(delivered).collect()
        } else {
            Vec::new()
        };
        let delivery = ConsumerEvent::Delivery {
            task,
            stream,
            entry_id: entry.id,
            count,
        };
        events.send(delivery).await.map_err(|_| Stop::ClientGone)?;
        self.records.extend(records);
        Ok(())
    }

    /// Acks the entries [`Self::process`] skipped (addressed to another agent, or
    /// deleted), one `XACK` per stream, with the records of the deliveries made
    /// meanwhile, in one round trip. Until then the skipped entries stay pending for
    /// this consumer, which skips them again after a reconnect.
    pub(super) async fn ack_skipped(&mut self) -> Result<(), Stop> {
        if self.skipped.is_empty() {
            return Ok(());
        }
        let mut ids = ByPriority::default();
        for (priority, id) in &self.skipped {
            ids[rank(*priority)].push(*id);
        }
        let records = self.take_records([]);
        self.store.ack(&ids, &records).await?;
        self.skipped.clear();
        Ok(())
    }
}
