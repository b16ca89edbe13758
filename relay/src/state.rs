//! State shared by every request handler.

use crate::ws::hub::Hub;
use crate::ws::session::SessionContext;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What handlers need: the hub, the sessions' context (with Redis), and the shutdown
/// signal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Fan-out of stream events to WebSocket sessions.
    pub hub: Hub,
    /// What every WebSocket session shares: limits, Redis, delivery settings.
    pub session: Arc<SessionContext>,
    /// Cancelled when the relay shuts down.
    pub shutdown: CancellationToken,
    /// What the operations API (`/api/v1`) takes from the configuration.
    pub api: crate::api::ApiSettings,
    /// The hosts and origins requests are taken for (see [`crate::guard`]).
    pub guard: Arc<crate::guard::Guard>,
}
