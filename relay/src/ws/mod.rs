//! The `/ws` endpoint: WebSocket upgrade, then one [`session`] per connection, fed by
//! the [`hub`] (watch) and its consumer (consume).

pub(crate) mod consume;
pub mod hub;
pub mod session;
pub(crate) mod watch;

use crate::state::AppState;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::Response;
use futures_util::StreamExt;

/// `GET /ws`: upgrades to the WebSocket protocol of SPEC §4.
pub(crate) async fn handler(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let limits = state.session.limits;
    // The hard cap drops the connection; below it, oversized messages get an error frame
    // from the session and the connection stays.
    let hard_cap = limits.max_message_bytes.saturating_mul(4).max(1024 * 1024);
    upgrade
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_upgrade(move |socket| async move {
            let events = state.hub.subscribe();
            let (sink, stream) = socket.split();
            let end = session::serve(
                sink,
                stream,
                events,
                state.session.clone(),
                state.shutdown.clone(),
            )
            .await;
            tracing::debug!(?end, "websocket session ended");
        })
}
