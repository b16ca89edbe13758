//! The store: the only code in the relay that talks to Redis. Every key name ([`keys`], the
//! README's "Redis layout"); reply values as text ([`value`]) and replies walked as
//! Redis sent them ([`reply`]); task entries decoded ([`codec`]); tasks and heartbeats
//! written ([`publish`]); ranges, reads and trimming ([`streams`]); `XINFO`
//! ([`xinfo`]); groups' pending entries and consumers' alive keys ([`groups`]); one
//! consumer's commands ([`consumer`], a trait the engine's consumer is tested through);
//! the dead letter queue ([`dlq`]); the task lifecycle record ([`lifecycle`]) and the
//! agents' outcome counters it keeps ([`outcomes`]); the reads that tell where tasks are
//! ([`tasks`]).
//!
//! Nothing here knows about HTTP, WebSocket or the CLI; the engine and the transports
//! call it, and turn its errors into theirs.

pub(crate) mod codec;
pub(crate) mod consumer;
pub mod dlq;
pub(crate) mod groups;
pub(crate) mod keys;
pub mod lifecycle;
pub(crate) mod outcomes;
pub(crate) mod publish;
pub(crate) mod reply;
pub mod streams;
pub(crate) mod tasks;
pub(crate) mod value;
pub mod xinfo;

use redis::aio::ConnectionLike;
use redis::RedisResult;

/// `PING`: whether Redis answers.
pub(crate) async fn ping<C: ConnectionLike>(conn: &mut C) -> RedisResult<()> {
    redis::cmd("PING")
        .query_async::<String>(conn)
        .await
        .map(drop)
}

/// `SHUTDOWN`: stops the server (its answer is the connection closing).
pub(crate) async fn shutdown<C: ConnectionLike>(conn: &mut C) -> RedisResult<()> {
    redis::cmd("SHUTDOWN").query_async::<()>(conn).await
}

/// `url` with its password replaced by `****`.
pub fn mask_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:****{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
