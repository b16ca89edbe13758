//! Cortex Relay: bridges the agents' Redis streams to WebSocket and HTTP, and serves
//! the dashboard.
//!
//! - [`config`]: flags and environment.
//! - [`redis_server`]: which Redis to use; the managed `redis-server` (embedded default).
//! - [`bridge`]: reading the streams ([`bridge::reader`]) and decoding entries.
//! - [`ws`]: the `/ws` endpoint, the [`ws::hub`] that fans entries out, and sessions.
//! - [`http`]: the router (every route in one place).
//!
//! [`run`] serves a bound listener until a cancellation token fires; `main.rs` only
//! parses the configuration, binds, and calls it.

pub mod bridge;
pub mod config;
pub mod error;
pub mod http;
pub mod redis_server;
pub mod state;
pub mod ws;

pub use config::Config;
pub use error::RelayError;

use bridge::reader::WatchReader;
use state::AppState;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use ws::hub::Hub;
use ws::session::SessionLimits;

/// Events the hub holds for its slowest session before that session counts as lagging.
const HUB_CAPACITY: usize = 4096;

/// Serves `listener` with Redis at `redis_url` until `shutdown` is cancelled; then
/// closes every WebSocket (telling clients to reconnect), stops the readers, and
/// returns once they have all finished.
pub async fn run(
    listener: TcpListener,
    config: Config,
    redis_url: &str,
    shutdown: CancellationToken,
) -> Result<(), RelayError> {
    let redis = redis::Client::open(redis_url).map_err(|source| RelayError::RedisUrl {
        url: redis_url.to_owned(),
        source,
    })?;
    let hub = Hub::new(HUB_CAPACITY);
    let tasks = TaskTracker::new();
    tasks.spawn(WatchReader::new(redis.clone(), hub.clone(), config.block()).run(shutdown.clone()));

    let state = AppState {
        hub,
        redis,
        session_limits: SessionLimits {
            send_queue: config.send_queue,
            max_message_bytes: config.max_message_bytes,
        },
        shutdown: shutdown.clone(),
    };
    let app = http::router(state, &config.dashboard_dir)
        .layer(tower_http::trace::TraceLayer::new_for_http());
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await;
    shutdown.cancel();
    tasks.close();
    tasks.wait().await;
    served.map_err(RelayError::from)
}
