//! Cortex Relay: bridges the agents' Redis streams to WebSocket and HTTP, and serves
//! the dashboard.
//!
//! Its modules are layers; each uses only those below it:
//!
//! - transports: [`http`] (every route in one place), [`api`] (the operations API
//!   under `/api/v1`), [`guard`] (what a hostile page could send through a browser),
//!   [`dashboard`] (the app's files), [`ws`] (the `/ws` endpoint and its sessions),
//!   [`cli`] (the operator subcommands);
//! - [`state`]: the services the transports share, and their settings;
//! - the engine: [`engine`] (the watch reader, the hub that fans entries out, history,
//!   presence, DLQ events, trimming, the consumer reaper) and [`consume`] (consume
//!   mode, at least once);
//! - [`store`]: the code that talks to Redis (every key name, replies, codecs, task
//!   and heartbeat writes, `XINFO`, the dead letter queue and its scripts);
//! - beneath all: [`auth`] (tokens, roles, origins), [`metrics`], [`error`].
//!
//! Beside them: [`config`] (file, environment, flags; it builds every layer's
//! settings) and [`redis_server`] (which Redis to use; the managed one). The Rust
//! agent API is its own crate, `cortex-agent`.
//!
//! [`Relay::new`] connects; [`Relay::serve`] serves a bound listener until a
//! cancellation token fires. `main.rs` only parses the configuration, binds, and
//! calls them.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod consume;
pub mod dashboard;
pub mod engine;
pub mod error;
pub mod guard;
pub mod http;
pub mod metrics;
pub mod redis_server;
pub mod state;
pub mod store;
pub mod ws;

pub use config::Config;
pub use error::RelayError;

use engine::hub::Hub;
use engine::reader::WatchReader;
use state::AppState;
use state::{Services, SessionLimits};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Events the hub holds for its slowest session before that session counts as lagging.
const HUB_CAPACITY: usize = 4096;

/// How long start-up waits for Redis before serving anyway.
const STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A relay that is connected and ready to serve: its stream reader knows where the
/// streams end, so every entry added after [`Relay::new`] returns is shown.
#[derive(Debug)]
pub struct Relay {
    app: axum::Router,
    reader: WatchReader,
    /// Announces presence changes; seeded and fed by the reader, ticked by its own
    /// task.
    presence: std::sync::Arc<engine::presence::PresenceTracker>,
    /// The trimmer: task streams when `trim_maxlen` is set, the lifecycle stream
    /// always.
    trimmer: (
        redis::aio::ConnectionManager,
        Option<u64>,
        store::lifecycle::LifecycleSettings,
    ),
    /// The consumer reaper.
    reaper: (
        redis::aio::ConnectionManager,
        engine::reaper::ReaperSettings,
    ),
    shutdown: CancellationToken,
}

impl Relay {
    /// Prepares a relay for Redis at `redis_url`. A Redis that does not answer within
    /// a few seconds is not fatal: the reader keeps trying once serving starts.
    pub async fn new(
        config: &Config,
        redis_url: &str,
        shutdown: CancellationToken,
    ) -> Result<Self, RelayError> {
        let redis = redis::Client::open(redis_url).map_err(|source| RelayError::RedisUrl {
            url: redis_url.to_owned(),
            source,
        })?;
        let hub = Hub::new(HUB_CAPACITY);
        let metrics = std::sync::Arc::new(metrics::Metrics::default());
        let presence = std::sync::Arc::new(engine::presence::PresenceTracker::new(
            config.presence(),
            hub.clone(),
        ));
        let mut reader =
            WatchReader::new(redis.clone(), hub.clone(), config.block(), metrics.clone())
                .with_presence(presence.clone());
        match tokio::time::timeout(STARTUP_WAIT, reader.start_from_now()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "redis not reachable yet; will keep trying"),
            Err(_) => {
                tracing::warn!("redis did not answer within {STARTUP_WAIT:?}; will keep trying")
            }
        }
        let commands = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
            .set_response_timeout(Some(std::time::Duration::from_secs(5)))
            .set_number_of_retries(2);
        let state = AppState {
            hub,
            services: std::sync::Arc::new(Services {
                limits: SessionLimits {
                    send_queue: config.send_queue,
                    max_message_bytes: config.max_message_bytes,
                    max_subscriptions: config.max_subscriptions,
                    max_frames_per_second: config.max_frames_per_second,
                    ping_interval: std::time::Duration::from_millis(config.ping_interval_ms),
                    max_connections: config.max_connections,
                },
                redis: redis
                    .get_connection_manager_lazy(commands)
                    .map_err(|source| RelayError::RedisUrl {
                        url: redis_url.to_owned(),
                        source,
                    })?,
                client: redis,
                delivery: config.delivery(),
                lifecycle: config.lifecycle(),
                metrics,
                auth: auth::Auth::new(&config.tokens),
                origins: auth::Origins::new(&config.allowed_origins),
            }),
            shutdown: shutdown.clone(),
            api: config.api(),
            guard: std::sync::Arc::new(guard::Guard::new(
                auth::Origins::new(&config.allowed_origins),
                &config.public_hosts,
            )),
        };
        let trimmer = (
            state.services.redis.clone(),
            config.trim_maxlen,
            config.lifecycle(),
        );
        let reaper = (state.services.redis.clone(), config.reaper());
        let app = http::router(state, &config.dashboard_dir)
            .layer(tower_http::trace::TraceLayer::new_for_http());
        Ok(Self {
            app,
            reader,
            presence,
            trimmer,
            reaper,
            shutdown,
        })
    }

    /// Serves `listener` until the shutdown token is cancelled; then closes every
    /// WebSocket (telling clients to reconnect), stops the reader, and returns once
    /// everything has finished.
    pub async fn serve(self, listener: TcpListener) -> Result<(), RelayError> {
        let tasks = TaskTracker::new();
        tasks.spawn(self.reader.run(self.shutdown.clone()));
        tasks.spawn(self.presence.run(self.shutdown.clone()));
        let (redis, maxlen, lifecycle) = self.trimmer;
        tasks.spawn(engine::trim::run(
            redis,
            maxlen,
            lifecycle,
            self.shutdown.clone(),
        ));
        let (redis, settings) = self.reaper;
        tasks.spawn(engine::reaper::run(redis, settings, self.shutdown.clone()));
        // Frames are small and latency matters: no Nagle delay on any connection.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let served = axum::serve(listener, self.app)
            .with_graceful_shutdown(self.shutdown.clone().cancelled_owned())
            .await;
        self.shutdown.cancel();
        tasks.close();
        tasks.wait().await;
        served.map_err(RelayError::from)
    }
}

/// [`Relay::new`] then [`Relay::serve`].
pub async fn run(
    listener: TcpListener,
    config: Config,
    redis_url: &str,
    shutdown: CancellationToken,
) -> Result<(), RelayError> {
    Relay::new(&config, redis_url, shutdown)
        .await?
        .serve(listener)
        .await
}
