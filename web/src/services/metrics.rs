//! `GET /api/v1/messaging/metrics`.

use super::{get, ApiError};
use cortex_shared::rest::MessagingMetrics;

/// Streams, groups, consumers, latency and counters.
pub async fn messaging() -> Result<MessagingMetrics, ApiError> {
    get("/api/v1/messaging/metrics").await
}
