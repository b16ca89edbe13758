//! The `/ws` endpoint: WebSocket upgrade, then one [`session`] per connection, fed by
//! the [`hub`] (watch) and its consumer (consume).

pub(crate) mod consume;
pub mod session;
pub(crate) mod watch;

use crate::auth::{bearer, AuthError};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

/// `GET /ws`: upgrades to the WebSocket protocol of the README's "WebSocket protocol", after the checks a
/// handshake can fail: its `Origin` (403), its token when it sends one (401), and the
/// connection limit (503).
pub(crate) async fn handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !state.services.origins.allows(&headers) {
        return ApiError::forbidden(
            "origin_not_allowed",
            "this page's origin may not open a WebSocket to the relay",
        )
        .into_response();
    }
    // A token in the handshake is checked now; without one, a relay that needs one
    // takes it in the first frame (browsers cannot set the header).
    let grant = match state.services.auth.check(bearer(&headers)) {
        Ok(grant) => Some(grant),
        Err(AuthError::Missing) => None,
        Err(AuthError::Unknown) => {
            return ApiError::unauthorized("the token is not valid").into_response()
        }
    };
    let max_connections = state.services.limits.max_connections;
    if state.services.metrics.connections.get() >= max_connections as u64 {
        return ApiError::unavailable(
            "too_many_connections",
            format!("the relay holds {max_connections} connections already; retry later"),
        )
        .into_response();
    }
    let limits = state.services.limits;
    // The hard cap drops the connection; below it, oversized messages get an error frame
    // from the session and the connection stays.
    let hard_cap = limits.max_message_bytes.saturating_mul(4).max(1024 * 1024);
    // Small per-connection buffers (tungstenite's defaults are 128 KiB each): idle
    // connections must stay cheap.
    upgrade
        // tungstenite zero-fills the free part of its read buffer before each read;
        // with 4 KiB that was half the relay's instructions under fan-out (callgrind).
        // It grows on demand for larger frames.
        .read_buffer_size(512)
        // Frames are gathered up to this size and written with one syscall; the
        // session's writer flushes after each burst (`session::write_batch`).
        .write_buffer_size(16 * 1024)
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_upgrade(move |socket| async move {
            let feed = state.hub.feed();
            let (sink, stream) = socket.split();
            let end = session::serve(
                sink,
                stream,
                feed,
                state.services.clone(),
                grant,
                state.shutdown.clone(),
            )
            .await;
            tracing::debug!(?end, "websocket session ended");
        })
}
