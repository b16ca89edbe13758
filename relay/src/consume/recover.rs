//! Recovery on (re)connect: the consumer takes back its own pending entries that are
//! not in flight on it, and delivers (or skips, or dead-letters) them, without Redis
//! counting a delivery that is not made.

use super::{Consumer, Events, Stop};
use crate::store::consumer::{GroupStore, Pending};
use cortex_shared::{EntryId, Priority};
use std::collections::HashMap;

/// Pending entries asked of Redis at a time.
const PAGE: usize = 500;

impl<S: GroupStore> Consumer<S> {
    /// Takes back this consumer's own pending entries that are not in flight on it,
    /// most urgent stream first, and delivers (or skips, or dead-letters) them.
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
    pub(super) async fn recover(&mut self, events: &Events) -> Result<(), Stop> {
        let visibility = self.settings.visibility.as_millis() as u64;
        for priority in Priority::ALL {
            let mut after: Option<String> = None;
            loop {
                let page = self.store.pending(priority, after.as_deref(), PAGE).await?;
                let unsent: Vec<&Pending> = page
                    .iter()
                    .filter(|p| p.idle_ms < visibility)
                    .filter(|p| {
                        p.id.parse::<EntryId>()
                            .is_ok_and(|id| !self.in_flight.contains_key(&(priority, id)))
                    })
                    .collect();
                if !unsent.is_empty() {
                    let ids: Vec<&str> = unsent.iter().map(|p| p.id.as_str()).collect();
                    let counts: HashMap<&str, u64> = unsent
                        .iter()
                        .map(|p| (p.id.as_str(), p.deliveries))
                        .collect();
                    for entry in self.store.take_back(priority, &ids).await? {
                        let count = counts.get(entry.id.as_str()).copied().unwrap_or(1);
                        self.process(priority, entry, count, None, events).await?;
                    }
                }
                match page.last() {
                    Some(last) if page.len() == PAGE => after = Some(last.id.clone()),
                    _ => break,
                }
            }
        }
        self.ack_skipped().await
    }
}
