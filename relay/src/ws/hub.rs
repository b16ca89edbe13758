//! The hub: fans out what the stream reader reads to every WebSocket session.
//!
//! One blocking read per relay feeds one `broadcast` channel; each session holds a
//! receiver and keeps what its subscriptions see. A frame is serialized once, when it
//! is published, and shared by every session that sends it.

use axum::extract::ws::Utf8Bytes;
use cortex_shared::{EntryId, ServerFrame, SubscribeTarget};
use std::sync::Arc;
use tokio::sync::broadcast;

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
}

impl Audience {
    /// Whether a session subscribed to `target` sees this.
    pub fn is_seen_by(&self, target: &SubscribeTarget) -> bool {
        match self {
            Audience::TaskFor(to) => target.sees_task_for(to),
            Audience::HeartbeatOf(agent) => target.sees_heartbeat_of(agent),
            Audience::Everyone => true,
        }
    }
}

/// The fan-out point between the stream reader and the sessions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Hub {
    /// A hub whose slowest session may fall `capacity` events behind before it is told
    /// it lagged (and disconnected to resume).
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }

    /// Publishes `frame`, read as `entry_id` of `stream`, to every session;
    /// `audience` decides which of them send it.
    pub fn publish(
        &self,
        stream: &'static str,
        entry_id: EntryId,
        audience: Audience,
        frame: &ServerFrame,
    ) {
        // No receiver means no session is connected: nothing to do.
        let _ = self.tx.send(Arc::new(Event {
            stream,
            entry_id,
            audience,
            frame: frame.to_json().into(),
        }));
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// How many sessions are connected.
    pub fn sessions(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_follows_subscriptions() {
        let pink = SubscribeTarget::parse("pink").unwrap();
        assert!(Audience::TaskFor("pink".into()).is_seen_by(&pink));
        assert!(Audience::TaskFor(String::new()).is_seen_by(&pink));
        assert!(!Audience::TaskFor("harold".into()).is_seen_by(&pink));
        assert!(Audience::HeartbeatOf("pink".into()).is_seen_by(&pink));
        assert!(!Audience::HeartbeatOf("harold".into()).is_seen_by(&pink));
        assert!(Audience::HeartbeatOf("harold".into()).is_seen_by(&SubscribeTarget::All));
        assert!(Audience::Everyone.is_seen_by(&pink));
        assert!(Audience::Everyone.is_seen_by(&SubscribeTarget::All));
    }

    #[tokio::test]
    async fn one_publish_reaches_every_receiver_once() {
        let hub = Hub::new(16);
        let mut a = hub.subscribe();
        let mut b = hub.subscribe();
        assert_eq!(hub.sessions(), 2);
        hub.publish(
            "cortex:heartbeats",
            EntryId::new(1, 0),
            Audience::HeartbeatOf("pink".into()),
            &ServerFrame::Pong,
        );
        let (ea, eb) = (a.recv().await.unwrap(), b.recv().await.unwrap());
        assert!(Arc::ptr_eq(&ea, &eb));
        assert_eq!(ea.frame.as_str(), r#"{"type":"pong"}"#);
        assert!(a.try_recv().is_err());
    }
}
