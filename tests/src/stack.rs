//! What a browser test runs against: a `redis-server`, the relay on it and a headless
//! Chromium, each stopped on drop.

use crate::browser::Browser;
use crate::redis::RedisServer;
use crate::relay::Relay;

/// Starts a redis-server, the relay as `relay` starts it given the Redis URL (e.g.
/// `Relay::start`), then a browser (no page open yet):
/// `let (redis, relay, browser) = stack::start(Relay::start).await;`.
pub async fn start(relay: impl FnOnce(&str) -> Relay) -> (RedisServer, Relay, Browser) {
    let redis = RedisServer::start();
    let relay = relay(&redis.url());
    let browser = Browser::start().await;
    (redis, relay, browser)
}
