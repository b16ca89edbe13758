//! `GET /api/v1/agents`.

use super::{get, ApiError};
use cortex_shared::rest::AgentsReply;

/// Every agent with presence, pending tasks and consumers.
pub async fn list() -> Result<AgentsReply, ApiError> {
    get("/api/v1/agents").await
}
