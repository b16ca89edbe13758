//! State shared by every request handler.

use crate::ws::hub::Hub;
use crate::ws::session::SessionLimits;
use tokio_util::sync::CancellationToken;

/// What handlers need: the hub, Redis, limits, and the shutdown signal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Fan-out of stream events to WebSocket sessions.
    pub hub: Hub,
    /// The Redis the relay bridges.
    pub redis: redis::Client,
    /// Limits applied to each WebSocket session.
    pub session_limits: SessionLimits,
    /// Cancelled when the relay shuts down.
    pub shutdown: CancellationToken,
}
