//! Redelivery: a task not acked within the visibility timeout is claimed by a live
//! consumer of the agent (`XAUTOCLAIM`, which counts the delivery) and delivered again,
//! or dead-lettered once out of deliveries. A nacked task, and the tasks in flight on a
//! consumer whose client went, are made due at once: they stay pending, marked idle for
//! a whole visibility timeout, and no delivery is counted until one is made.

use super::{rank, Consumer, Events, Stop};
use crate::store::consumer::{ByPriority, GroupStore};
use crate::store::lifecycle::Write;
use cortex_shared::{EntryId, Priority};
use std::time::{Duration, Instant};

impl<S: GroupStore> Consumer<S> {
    /// Claims tasks of this agent idle longer than the visibility timeout, looping
    /// `XAUTOCLAIM` until its cursor is back at `0-0` (or credit runs out), most urgent
    /// stream first, and delivers or dead-letters them.
    pub(super) async fn reclaim(&mut self, events: &Events) -> Result<(), Stop> {
        let min_idle = self.settings.visibility;
        for priority in Priority::ALL {
            let mut cursor = "0-0".to_owned();
            loop {
                let credit = self.credit();
                if credit == 0 {
                    return Ok(());
                }
                let reply = self
                    .store
                    .autoclaim(priority, min_idle, &cursor, credit, self.lifecycle)
                    .await?;
                for entry in reply.claimed {
                    // XAUTOCLAIM counted this delivery; ask Redis for the total.
                    let count = self.store.deliveries(priority, &entry.id).await?;
                    if let Ok(id) = entry.id.parse::<EntryId>() {
                        self.in_flight.remove(&(priority, id));
                    }
                    let from = reply.from.get(&entry.id).cloned();
                    self.process(priority, entry, count, from.as_deref(), events)
                        .await?;
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

    /// Makes a nacked task due for redelivery now: it stays pending, marked idle for a
    /// whole visibility timeout, so the next reclaim (by any consumer) takes it; its
    /// `nacked` record, `record`, goes in the same round trip.
    pub(super) async fn release(
        &mut self,
        priority: Priority,
        entry_id: &str,
        record: Option<Write>,
    ) -> redis::RedisResult<()> {
        let records = self.take_records(record);
        self.store
            .release(priority, entry_id, self.settings.visibility, &records)
            .await?;
        self.next_reclaim = Instant::now();
        Ok(())
    }

    /// Hands the tasks in flight back when the client has gone: each stays pending,
    /// marked idle for a whole visibility timeout (`XCLAIM … IDLE … JUSTID`, which
    /// does not count a delivery), so the next reclaim by any consumer of the agent
    /// delivers it again and counts that delivery; a consumer reconnecting under this
    /// name reclaims at once. Without it, that consumer could not tell them from
    /// entries read and never sent ([`Self::recover`]). Bounded in time: if Redis does
    /// not answer, they come back after the visibility timeout as they would anyway.
    pub(super) async fn hand_back(&mut self) {
        let mut ids = ByPriority::default();
        for (priority, id) in self.in_flight.keys() {
            ids[rank(*priority)].push(*id);
        }
        let records = self.take_records([]);
        if ids.iter().all(Vec::is_empty) && records.is_empty() {
            return;
        }
        let idle = self.settings.visibility;
        let handed = tokio::time::timeout(
            Duration::from_secs(2),
            self.store.hand_back(&ids, idle, &records),
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
}
