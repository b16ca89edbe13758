//! The presence tracker: each agent's presence (online, stale, offline) from the age of
//! its last heartbeat, and a `presence` frame to every watcher when it changes.
//!
//! It is driven by the heartbeats the watch reader sees ([`PresenceTracker::observe`]:
//! an agent heard from becomes online at once) and by a tick (an agent not heard from
//! goes stale, then offline, when the thresholds pass). The reader seeds it, silently,
//! with the heartbeats up to the position the reader starts reading from
//! ([`PresenceTracker::seed_from`]), so a restart does not announce every agent again
//! and a heartbeat added after that position is announced: the seed and the reader
//! never both see one heartbeat.
//! Every relay runs its own tracker over the same heartbeats, so watchers on any relay
//! get the same transitions (within a tick of each other).
//!
//! A heartbeat's time is its entry id's (Redis's clock); the age is measured with this
//! machine's clock, so relay and Redis clocks should agree to well within the
//! thresholds.

use crate::engine::hub::{Audience, Hub};
use cortex_shared::rest::Presence;
use cortex_shared::{EntryId, ServerFrame};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The pseudo-stream presence events are published under in the hub (no such Redis
/// stream exists; watchers keep no position for it).
pub const PRESENCE_EVENTS: &str = "presence";

/// Heartbeats read at start, newest first.
const SEED_SCAN: u64 = 10_000;

/// An agent not heard from for this long after going offline is forgotten (a later
/// heartbeat makes it online again, announced as usual).
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// When presence changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceSettings {
    /// A heartbeat older than this makes its agent stale.
    pub stale_after: Duration,
    /// A heartbeat older than this makes its agent offline.
    pub offline_after: Duration,
}

impl PresenceSettings {
    /// The presence of an agent last heard from at `last_ms`, at `now_ms`.
    pub fn presence(&self, last_ms: u64, now_ms: u64) -> Presence {
        Presence::of_age(
            now_ms.saturating_sub(last_ms),
            self.stale_after.as_millis() as u64,
            self.offline_after.as_millis() as u64,
        )
    }

    /// How often the tracker looks for agents whose presence changed: a tenth of the
    /// shorter threshold, between 50 ms and 1 s.
    pub fn tick(&self) -> Duration {
        let shortest = self.stale_after.min(
            self.offline_after
                .saturating_sub(self.stale_after)
                .max(Duration::from_millis(1)),
        );
        (shortest / 10).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    last_ms: u64,
    presence: Presence,
}

/// Tracks every agent's presence and tells the hub when one changes.
#[derive(Debug)]
pub struct PresenceTracker {
    settings: PresenceSettings,
    hub: Hub,
    agents: Mutex<HashMap<String, Seen>>,
    /// Makes the hub events' ids unique.
    seq: AtomicU64,
}

impl PresenceTracker {
    /// A tracker publishing to `hub`.
    pub fn new(settings: PresenceSettings, hub: Hub) -> Self {
        Self {
            settings,
            hub,
            agents: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
        }
    }

    /// `agent` sent a heartbeat that Redis added at `at_ms` (its entry id's time).
    pub fn observe(&self, agent: &str, at_ms: u64) {
        self.observe_at(agent, at_ms, crate::metrics::unix_ms());
    }

    fn observe_at(&self, agent: &str, at_ms: u64, now_ms: u64) {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        let presence = self.settings.presence(at_ms, now_ms);
        match agents.get_mut(agent) {
            Some(seen) => {
                if at_ms <= seen.last_ms {
                    return;
                }
                seen.last_ms = at_ms;
                let presence = self.settings.presence(at_ms, now_ms);
                if presence != seen.presence {
                    seen.presence = presence;
                    self.announce(agent, *seen, now_ms);
                }
            }
            None => {
                let seen = Seen {
                    last_ms: at_ms,
                    presence,
                };
                agents.insert(agent.to_owned(), seen);
                // An agent not tracked was offline; say so only if that changed.
                if presence != Presence::Offline {
                    self.announce(agent, seen, now_ms);
                }
            }
        }
    }

    /// Looks at every agent at `now_ms`; announces those whose presence changed.
    fn tick_at(&self, now_ms: u64) {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        let forget =
            FORGET_AFTER.as_millis() as u64 + self.settings.offline_after.as_millis() as u64;
        agents.retain(|_, seen| now_ms.saturating_sub(seen.last_ms) < forget);
        for (agent, seen) in agents.iter_mut() {
            let presence = self.settings.presence(seen.last_ms, now_ms);
            if presence != seen.presence {
                seen.presence = presence;
                self.announce(agent, *seen, now_ms);
            }
        }
    }

    /// Records agents heard from before this relay started, without announcing them.
    fn seed(&self, heard: impl IntoIterator<Item = (String, u64)>, now_ms: u64) {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        for (agent, last_ms) in heard {
            agents.entry(agent).or_insert(Seen {
                last_ms,
                presence: self.settings.presence(last_ms, now_ms),
            });
        }
    }

    fn announce(&self, agent: &str, seen: Seen, now_ms: u64) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(agent, presence = seen.presence.as_str(), "presence changed");
        self.hub.publish(
            PRESENCE_EVENTS,
            EntryId::new(now_ms, seq),
            Audience::Everyone,
            &ServerFrame::Presence {
                agent: agent.to_owned(),
                presence: seen.presence,
                last_heartbeat_ms: Some(seen.last_ms),
            },
        );
    }

    /// The presence of every tracked agent now.
    pub fn snapshot(&self) -> HashMap<String, Presence> {
        let agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        agents
            .iter()
            .map(|(a, s)| (a.clone(), s.presence))
            .collect()
    }

    /// Records, without announcing them, the agents whose newest heartbeat is at or
    /// before `upto` (the heartbeat stream position the reader starts after; `0-0`
    /// for an empty stream).
    pub async fn seed_from(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        upto: &str,
    ) -> redis::RedisResult<()> {
        if upto == "0-0" {
            return Ok(());
        }
        let heard = newest_heartbeats(conn, upto).await?;
        self.seed(heard, crate::metrics::unix_ms());
        Ok(())
    }

    /// Ticks until `cancel` fires.
    pub async fn run(self: std::sync::Arc<Self>, cancel: CancellationToken) {
        let mut interval = tokio::time::interval(self.settings.tick());
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = interval.tick() => {}
            }
            self.tick_at(crate::metrics::unix_ms());
        }
    }
}

/// Each agent's newest heartbeat time among the newest [`SEED_SCAN`] heartbeats at or
/// before `upto`.
async fn newest_heartbeats(
    conn: &mut impl redis::aio::ConnectionLike,
    upto: &str,
) -> redis::RedisResult<Vec<(String, u64)>> {
    let mut newest: HashMap<String, u64> = HashMap::new();
    for (id, hb) in crate::store::streams::newest_heartbeats(conn, upto, SEED_SCAN).await? {
        newest.entry(hb.agent).or_insert(id.ms);
    }
    Ok(newest.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PresenceSettings {
        PresenceSettings {
            stale_after: Duration::from_millis(1000),
            offline_after: Duration::from_millis(3000),
        }
    }

    /// A feed watching everything, as a dashboard's.
    fn watch_all(hub: &Hub) -> crate::engine::hub::Feed {
        let mut feed = hub.feed();
        feed.watch(&cortex_shared::SubscribeTarget::All);
        feed
    }

    fn frames(rx: &mut crate::engine::hub::Feed) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(event) = rx.try_recv() {
            assert_eq!(event.audience, Audience::Everyone);
            let frame: serde_json::Value = serde_json::from_str(event.frame.as_str()).unwrap();
            out.push(format!(
                "{} {}",
                frame["agent"].as_str().unwrap(),
                frame["presence"].as_str().unwrap()
            ));
        }
        out
    }

    #[test]
    fn presence_moves_online_stale_offline_and_back() {
        let hub = Hub::new(64);
        let mut rx = watch_all(&hub);
        let tracker = PresenceTracker::new(settings(), hub);
        tracker.observe_at("pink", 10_000, 10_000);
        assert_eq!(frames(&mut rx), ["pink online"]);
        tracker.observe_at("pink", 10_500, 10_500); // still online: nothing to say
        tracker.tick_at(11_000);
        assert_eq!(frames(&mut rx), Vec::<String>::new());
        tracker.tick_at(11_500);
        assert_eq!(frames(&mut rx), ["pink stale"]);
        tracker.tick_at(13_499);
        assert_eq!(frames(&mut rx), Vec::<String>::new());
        tracker.tick_at(13_500);
        assert_eq!(frames(&mut rx), ["pink offline"]);
        tracker.observe_at("pink", 20_000, 20_000);
        assert_eq!(frames(&mut rx), ["pink online"]);
        // An old heartbeat changes nothing.
        tracker.observe_at("pink", 15_000, 20_001);
        assert_eq!(frames(&mut rx), Vec::<String>::new());
        assert_eq!(tracker.snapshot()["pink"], Presence::Online);
    }

    #[test]
    fn seeded_agents_are_not_announced_until_they_change() {
        let hub = Hub::new(64);
        let mut rx = watch_all(&hub);
        let tracker = PresenceTracker::new(settings(), hub);
        tracker.seed(
            [("pink".to_owned(), 9_500), ("old".to_owned(), 1_000)],
            10_000,
        );
        assert_eq!(frames(&mut rx), Vec::<String>::new());
        tracker.tick_at(10_600);
        assert_eq!(frames(&mut rx), ["pink stale"]);
        // A first heartbeat that is already old: offline, as an unknown agent was.
        tracker.observe_at("ghost", 1_000, 10_600);
        assert_eq!(frames(&mut rx), Vec::<String>::new());
    }

    #[test]
    fn ticks_follow_the_thresholds() {
        assert_eq!(settings().tick(), Duration::from_millis(100));
        let defaults = PresenceSettings {
            stale_after: Duration::from_secs(30),
            offline_after: Duration::from_secs(120),
        };
        assert_eq!(defaults.tick(), Duration::from_secs(1));
        let tiny = PresenceSettings {
            stale_after: Duration::from_millis(10),
            offline_after: Duration::from_millis(10),
        };
        assert_eq!(tiny.tick(), Duration::from_millis(50));
    }
}
