//! The hub: routes what the stream reader reads to the WebSocket sessions that watch it.
//!
//! Each watching session holds a [`Feed`]: a bounded queue of its own, registered under
//! the agents it watches (or under `*`). Publishing an event looks up its audience and
//! offers it to those feeds only, so a session wakes for the events it sends and for no
//! others: with 10,000 sessions watching one agent each, a task costs one wake-up, not
//! 10,000. A frame is serialized once, and only when some feed takes it.
//!
//! The reader publishes in stream order from one task, and each feed is one FIFO queue,
//! so every session sees its events in the order they were read: what
//! [`super::watch::Watches`] relies on for its per-stream marks. A feed that falls
//! `capacity` events behind is cut off and told so ([`Lagged`]); its session closes and
//! the client resumes from its last entry ids.

use axum::extract::ws::Utf8Bytes;
use cortex_shared::{EntryId, ServerFrame, SubscribeTarget};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::sync::mpsc;

/// Something read from Redis that watchers may want, with its frame already encoded.
#[derive(Debug)]
pub struct Event {
    /// The stream it was read from.
    pub stream: &'static str,
    /// Its entry id there.
    pub entry_id: EntryId,
    /// Who may see it.
    pub audience: Audience,
    /// The frame's JSON text.
    pub frame: Utf8Bytes,
}

/// Who an [`Event`] is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// A task addressed to this agent (empty: every agent).
    TaskFor(String),
    /// A heartbeat of this agent.
    HeartbeatOf(String),
    /// Every watcher, whatever agents it watches: DLQ changes and presence changes,
    /// which a dashboard shows for the whole bus.
    Everyone,
    /// A lifecycle record (README, Task lifecycle): of this agent, for the sessions
    /// watching it and those watching `*`; without an agent (`published`), for those
    /// watching `*` only.
    Lifecycle(Option<String>),
}

impl Audience {
    /// Whether a session subscribed to `target` sees this.
    pub fn is_seen_by(&self, target: &SubscribeTarget) -> bool {
        match self {
            Audience::TaskFor(to) => target.sees_task_for(to),
            Audience::HeartbeatOf(agent) => target.sees_heartbeat_of(agent),
            Audience::Everyone => true,
            Audience::Lifecycle(Some(agent)) => target.sees_heartbeat_of(agent),
            Audience::Lifecycle(None) => *target == SubscribeTarget::All,
        }
    }

    /// The one agent this is for, if it is not for every watcher.
    fn agent(&self) -> Option<&str> {
        match self {
            Audience::TaskFor(to) if !to.is_empty() => Some(to),
            Audience::HeartbeatOf(agent) | Audience::Lifecycle(Some(agent)) => Some(agent),
            _ => None,
        }
    }

    /// Whether only the feeds watching `*` may see this.
    fn only_all(&self) -> bool {
        *self == Audience::Lifecycle(None)
    }
}

/// The feed fell too far behind and was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session fell behind the hub")]
pub struct Lagged;

/// The fan-out point between the stream reader and the sessions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    capacity: usize,
    next_id: AtomicU64,
    routes: RwLock<Routes>,
}

/// Which feeds watch what.
#[derive(Debug, Default)]
struct Routes {
    feeds: HashMap<u64, Route>,
    /// Feeds watching one agent by name (and not `*`).
    by_agent: HashMap<String, Vec<u64>>,
    /// Feeds watching `*`.
    all: Vec<u64>,
}

#[derive(Debug)]
struct Route {
    tx: mpsc::Sender<Arc<Event>>,
    lagged: Arc<AtomicBool>,
    watches_all: bool,
    agents: Vec<String>,
}

impl Route {
    fn watches_anything(&self) -> bool {
        self.watches_all || !self.agents.is_empty()
    }
}

impl Routes {
    /// Removes feed `id` from the agent index (and from `*`).
    fn unindex(&mut self, id: u64, route: &Route) {
        if route.watches_all {
            self.all.retain(|f| *f != id);
        }
        for agent in &route.agents {
            if let Some(ids) = self.by_agent.get_mut(agent) {
                ids.retain(|f| *f != id);
                if ids.is_empty() {
                    self.by_agent.remove(agent);
                }
            }
        }
    }

    fn remove(&mut self, id: u64) -> Option<Route> {
        let route = self.feeds.remove(&id)?;
        self.unindex(id, &route);
        Some(route)
    }
}

/// One publish's offers: encodes the event when a first feed takes it.
struct Offer<'a, F> {
    stream: &'static str,
    entry_id: EntryId,
    audience: &'a Audience,
    encode: Option<F>,
    event: Option<Arc<Event>>,
    lagging: Vec<u64>,
}

impl<F: FnOnce() -> String> Offer<'_, F> {
    fn to(&mut self, id: u64, route: &Route) {
        let event = match &self.event {
            Some(event) => event.clone(),
            None => {
                let encode = self.encode.take().expect("encoded once");
                let event = Arc::new(Event {
                    stream: self.stream,
                    entry_id: self.entry_id,
                    audience: self.audience.clone(),
                    frame: encode().into(),
                });
                self.event = Some(event.clone());
                event
            }
        };
        match route.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.lagging.push(id),
            // The session is ending; its feed is removed when dropped.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl Hub {
    /// A hub whose feeds may each fall `capacity` events behind before they are cut
    /// off.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                capacity: capacity.max(1),
                next_id: AtomicU64::new(0),
                routes: RwLock::default(),
            }),
        }
    }

    /// Publishes `frame`, read as `entry_id` of `stream`, to the feeds whose
    /// subscriptions see `audience`.
    pub fn publish(
        &self,
        stream: &'static str,
        entry_id: EntryId,
        audience: Audience,
        frame: &ServerFrame,
    ) {
        self.publish_with(stream, entry_id, audience, || frame.to_json());
    }

    /// [`Hub::publish`] with the frame's JSON made by `encode`, called only when some
    /// feed takes the event. Returns how many feeds were offered it.
    pub fn publish_with(
        &self,
        stream: &'static str,
        entry_id: EntryId,
        audience: Audience,
        encode: impl FnOnce() -> String,
    ) -> usize {
        let mut offer = Offer {
            stream,
            entry_id,
            audience: &audience,
            encode: Some(encode),
            event: None,
            lagging: Vec::new(),
        };
        let mut offered = 0;
        {
            let routes = self.read();
            match audience.agent() {
                None if audience.only_all() => {
                    for id in &routes.all {
                        offer.to(*id, &routes.feeds[id]);
                        offered += 1;
                    }
                }
                Some(agent) => {
                    for id in &routes.all {
                        offer.to(*id, &routes.feeds[id]);
                        offered += 1;
                    }
                    for id in routes.by_agent.get(agent).into_iter().flatten() {
                        let route = &routes.feeds[id];
                        // A feed watching `*` as well has had it.
                        if !route.watches_all {
                            offer.to(*id, route);
                            offered += 1;
                        }
                    }
                }
                None => {
                    for (id, route) in &routes.feeds {
                        if route.watches_anything() {
                            offer.to(*id, route);
                            offered += 1;
                        }
                    }
                }
            }
        }
        if !offer.lagging.is_empty() {
            let mut routes = self.write();
            for id in offer.lagging {
                // Dropping its sender ends the feed once it has taken what is queued;
                // the flag makes it stop at once.
                if let Some(route) = routes.remove(id) {
                    route.lagged.store(true, Ordering::Release);
                }
            }
        }
        offered
    }

    /// Whether any feed would be offered an event for `audience`: when none would, the
    /// reader need not even decode the entry.
    pub fn reaches(&self, audience: &Audience) -> bool {
        let routes = self.read();
        if !routes.all.is_empty() {
            return true;
        }
        if audience.only_all() {
            return false;
        }
        match audience.agent() {
            Some(agent) => routes.by_agent.contains_key(agent),
            None => routes.feeds.values().any(Route::watches_anything),
        }
    }

    /// A feed for one session; it receives nothing until it [`Feed::watch`]es.
    pub fn feed(&self) -> Feed {
        Feed {
            hub: self.clone(),
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            rx: None,
            lagged: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether any feed watches anything (cheap: no walk over the feeds).
    pub fn any_watching(&self) -> bool {
        let routes = self.read();
        !routes.all.is_empty() || !routes.by_agent.is_empty()
    }

    /// How many feeds watch something.
    pub fn watching(&self) -> usize {
        self.read()
            .feeds
            .values()
            .filter(|r| r.watches_anything())
            .count()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Routes> {
        self.inner
            .routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Routes> {
        self.inner
            .routes
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// One session's queue of hub events. Removed from the hub when dropped.
#[derive(Debug)]
pub struct Feed {
    hub: Hub,
    id: u64,
    /// Made on the first watch: a session that only consumes never has one.
    rx: Option<mpsc::Receiver<Arc<Event>>>,
    lagged: Arc<AtomicBool>,
}

impl Feed {
    /// Receives events for `target` as well, from now on.
    pub fn watch(&mut self, target: &SubscribeTarget) {
        if self.lagged.load(Ordering::Acquire) {
            return;
        }
        let mut routes = self.hub.write();
        let route = match routes.feeds.entry(self.id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let (tx, rx) = mpsc::channel(self.hub.inner.capacity);
                self.rx = Some(rx);
                e.insert(Route {
                    tx,
                    lagged: self.lagged.clone(),
                    watches_all: false,
                    agents: Vec::new(),
                })
            }
        };
        match target {
            SubscribeTarget::All if !route.watches_all => {
                route.watches_all = true;
                routes.all.push(self.id);
            }
            SubscribeTarget::Agent(name) if !route.agents.iter().any(|a| a == name.as_str()) => {
                route.agents.push(name.as_str().to_owned());
                routes
                    .by_agent
                    .entry(name.as_str().to_owned())
                    .or_default()
                    .push(self.id);
            }
            _ => {}
        }
    }

    /// Stops receiving events for `target`, or for everything when `None`.
    pub fn unwatch(&mut self, target: Option<&SubscribeTarget>) {
        let mut routes = self.hub.write();
        let Some(mut route) = routes.feeds.remove(&self.id) else {
            return;
        };
        routes.unindex(self.id, &route);
        match target {
            None => {
                route.watches_all = false;
                route.agents.clear();
            }
            Some(SubscribeTarget::All) => route.watches_all = false,
            Some(SubscribeTarget::Agent(name)) => route.agents.retain(|a| a != name.as_str()),
        }
        if route.watches_all {
            routes.all.push(self.id);
        }
        for agent in &route.agents {
            routes
                .by_agent
                .entry(agent.clone())
                .or_default()
                .push(self.id);
        }
        routes.feeds.insert(self.id, route);
    }

    /// The next event; [`Lagged`] once the feed was cut off for falling behind.
    /// Never resolves while the feed watches nothing and holds nothing.
    pub async fn recv(&mut self) -> Result<Arc<Event>, Lagged> {
        if self.lagged.load(Ordering::Acquire) {
            return Err(Lagged);
        }
        match &mut self.rx {
            Some(rx) => rx.recv().await.ok_or(Lagged),
            None => std::future::pending().await,
        }
    }

    /// The next event if one is queued now.
    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        self.rx.as_mut()?.try_recv().ok()
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.hub.write().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> SubscribeTarget {
        SubscribeTarget::parse(name).unwrap()
    }

    fn publish(hub: &Hub, ms: u64, audience: Audience) -> usize {
        hub.publish_with("cortex:tasks:high", EntryId::new(ms, 0), audience, || {
            format!("{ms}")
        })
    }

    fn drain(feed: &mut Feed) -> Vec<String> {
        std::iter::from_fn(|| feed.try_recv())
            .map(|e| e.frame.as_str().to_owned())
            .collect()
    }

    #[test]
    fn audience_follows_subscriptions() {
        let pink = target("pink");
        assert!(Audience::TaskFor("pink".into()).is_seen_by(&pink));
        assert!(Audience::TaskFor(String::new()).is_seen_by(&pink));
        assert!(!Audience::TaskFor("harold".into()).is_seen_by(&pink));
        assert!(Audience::HeartbeatOf("pink".into()).is_seen_by(&pink));
        assert!(!Audience::HeartbeatOf("harold".into()).is_seen_by(&pink));
        assert!(Audience::HeartbeatOf("harold".into()).is_seen_by(&SubscribeTarget::All));
        assert!(Audience::Everyone.is_seen_by(&pink));
        assert!(Audience::Everyone.is_seen_by(&SubscribeTarget::All));
    }

    #[test]
    fn events_go_only_to_the_feeds_that_watch_them_once_each() {
        let hub = Hub::new(16);
        let (mut pink, mut harold, mut all, mut idle) =
            (hub.feed(), hub.feed(), hub.feed(), hub.feed());
        pink.watch(&target("pink"));
        harold.watch(&target("harold"));
        all.watch(&SubscribeTarget::All);
        all.watch(&target("pink")); // and pink: still once
        assert_eq!(hub.watching(), 3);

        assert_eq!(publish(&hub, 1, Audience::TaskFor("pink".into())), 2);
        assert_eq!(publish(&hub, 2, Audience::HeartbeatOf("harold".into())), 2);
        assert_eq!(publish(&hub, 3, Audience::TaskFor(String::new())), 3);
        assert_eq!(publish(&hub, 4, Audience::Everyone), 3);
        assert_eq!(publish(&hub, 5, Audience::TaskFor("nobody".into())), 1);

        assert_eq!(drain(&mut pink), ["1", "3", "4"]);
        assert_eq!(drain(&mut harold), ["2", "3", "4"]);
        assert_eq!(drain(&mut all), ["1", "2", "3", "4", "5"]);
        assert_eq!(drain(&mut idle), Vec::<String>::new());
    }

    #[test]
    fn lifecycle_records_go_to_their_agents_watchers_and_to_star_only_without_one() {
        let hub = Hub::new(16);
        let (mut pink, mut harold, mut all) = (hub.feed(), hub.feed(), hub.feed());
        pink.watch(&target("pink"));
        harold.watch(&target("harold"));
        assert!(!hub.reaches(&Audience::Lifecycle(None)));
        assert!(hub.reaches(&Audience::Lifecycle(Some("pink".into()))));
        assert!(!hub.reaches(&Audience::Lifecycle(Some("blue".into()))));
        all.watch(&SubscribeTarget::All);
        assert_eq!(
            publish(&hub, 1, Audience::Lifecycle(Some("pink".into()))),
            2
        );
        assert_eq!(publish(&hub, 2, Audience::Lifecycle(None)), 1);
        assert_eq!(
            publish(&hub, 3, Audience::Lifecycle(Some("blue".into()))),
            1
        );
        assert_eq!(drain(&mut pink), ["1"]);
        assert_eq!(drain(&mut harold), Vec::<String>::new());
        assert_eq!(drain(&mut all), ["1", "2", "3"]);
        let none = Audience::Lifecycle(None);
        assert!(none.is_seen_by(&SubscribeTarget::All) && !none.is_seen_by(&target("pink")));
        let of_pink = Audience::Lifecycle(Some("pink".into()));
        assert!(of_pink.is_seen_by(&target("pink")) && !of_pink.is_seen_by(&target("harold")));
    }

    #[test]
    fn nothing_is_encoded_when_nobody_watches() {
        let hub = Hub::new(16);
        let mut feed = hub.feed();
        feed.watch(&target("pink"));
        let offered = hub.publish_with(
            "cortex:tasks:high",
            EntryId::new(1, 0),
            Audience::TaskFor("harold".into()),
            || panic!("encoded a frame nobody receives"),
        );
        assert_eq!(offered, 0);
        assert!(!hub.reaches(&Audience::TaskFor("harold".into())));
        assert!(hub.reaches(&Audience::TaskFor("pink".into())));
        assert!(hub.reaches(&Audience::Everyone));
    }

    #[test]
    fn unwatching_and_dropping_remove_routes() {
        let hub = Hub::new(16);
        let mut feed = hub.feed();
        feed.watch(&target("pink"));
        feed.watch(&target("harold"));
        feed.unwatch(Some(&target("pink")));
        assert_eq!(publish(&hub, 1, Audience::TaskFor("pink".into())), 0);
        assert_eq!(publish(&hub, 2, Audience::TaskFor("harold".into())), 1);
        feed.unwatch(None);
        assert_eq!(publish(&hub, 3, Audience::Everyone), 0);
        assert_eq!(drain(&mut feed), ["2"]);
        feed.watch(&SubscribeTarget::All);
        drop(feed);
        assert_eq!(publish(&hub, 4, Audience::Everyone), 0);
        assert!(hub.read().feeds.is_empty() && hub.read().all.is_empty());
        assert!(hub.read().by_agent.is_empty());
    }

    #[tokio::test]
    async fn a_feed_that_falls_behind_is_cut_off_and_the_others_go_on() {
        let hub = Hub::new(4);
        let (mut slow, mut fast) = (hub.feed(), hub.feed());
        slow.watch(&target("pink"));
        fast.watch(&target("pink"));
        for ms in 1..=5 {
            publish(&hub, ms, Audience::TaskFor("pink".into()));
            assert_eq!(fast.recv().await.unwrap().frame.as_str(), ms.to_string());
        }
        assert_eq!(slow.recv().await.unwrap_err(), Lagged);
        assert_eq!(publish(&hub, 6, Audience::TaskFor("pink".into())), 1);
        assert_eq!(fast.recv().await.unwrap().frame.as_str(), "6");
    }
}
