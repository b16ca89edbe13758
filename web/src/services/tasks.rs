//! `POST /api/v1/tasks`.

use super::{post, ApiError};
use cortex_shared::rest::{PublishRequest, Published};

/// Publishes a task.
pub async fn publish(request: &PublishRequest) -> Result<Published, ApiError> {
    post("/api/v1/tasks", request).await
}
