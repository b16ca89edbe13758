//! State shared by every request handler and WebSocket session: the application's
//! services (the hub, Redis, counters, tokens), the settings the transports take from
//! the configuration, and the shutdown signal.

use crate::auth::{Auth, Origins};
use crate::consume::DeliverySettings;
use crate::engine::hub::Hub;
use crate::metrics::Metrics;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What handlers need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Fan-out of stream events to WebSocket sessions.
    pub hub: Hub,
    /// Redis, counters, tokens, limits: what every handler and session shares.
    pub services: Arc<Services>,
    /// Cancelled when the relay shuts down.
    pub shutdown: CancellationToken,
    /// What the operations API (`/api/v1`) takes from the configuration.
    pub api: ApiSettings,
    /// The hosts and origins requests are taken for (see [`crate::guard`]).
    pub guard: Arc<crate::guard::Guard>,
}

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Frames the relay pushes (live events, pings) queued unwritten for the client
    /// before it counts as too slow. Replies to the client's own frames may queue as
    /// many again; beyond that the session stops reading from the client until the
    /// writer has caught up.
    pub send_queue: usize,
    /// Largest client message answered normally; larger ones get a
    /// `frame_too_large` error frame.
    pub max_message_bytes: usize,
    /// Watch subscriptions one connection may hold.
    pub max_subscriptions: usize,
    /// Client frames per second (and burst).
    pub max_frames_per_second: u32,
    /// Interval of server pings; two without any answer close the connection.
    pub ping_interval: Duration,
    /// WebSocket connections the relay holds at most.
    pub max_connections: usize,
}

/// The services every handler and WebSocket session shares: Redis, the consumers'
/// delivery settings, the counters, tokens and origins, and the per-connection limits.
#[derive(Debug, Clone)]
pub struct Services {
    /// Per-connection limits.
    pub limits: SessionLimits,
    /// Commands (reads for resume, acks, group creation); reconnects by itself.
    pub redis: ConnectionManager,
    /// For the blocking reads of consumers, each on a connection of its own.
    pub client: redis::Client,
    /// Visibility timeout, deliveries, prefetch.
    pub delivery: DeliverySettings,
    /// The relay's counters.
    pub metrics: Arc<Metrics>,
    /// Tokens and roles.
    pub auth: Auth,
    /// Browser origins allowed to open a WebSocket.
    pub origins: Origins,
}

/// What the API handlers take from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiSettings {
    /// A heartbeat older than this makes its agent stale.
    pub stale_after: Duration,
    /// A heartbeat older than this makes its agent offline.
    pub offline_after: Duration,
    /// A consumer that has not read or claimed for this long counts as dead.
    pub consumer_dead_after: Duration,
    /// DLQ length above which stats and metrics raise a warning.
    pub dlq_warn_length: u64,
    /// Entries of each task stream, newest first, the task API searches for a task id
    /// that has no lifecycle records.
    pub task_scan_entries: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(30),
            offline_after: Duration::from_secs(120),
            consumer_dead_after: Duration::from_secs(60),
            dlq_warn_length: 1000,
            task_scan_entries: 10_000,
        }
    }
}
