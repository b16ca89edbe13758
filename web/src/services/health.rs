//! `GET /readyz`.

use gloo_net::http::Request;

/// Whether the relay reaches Redis (`/readyz` answers 200); `None` when the relay did
/// not answer at all.
pub async fn redis_ready() -> Option<bool> {
    Request::get("/readyz")
        .send()
        .await
        .ok()
        .map(|response| response.ok())
}
