//! Writing tasks and heartbeats (`XADD`, in the README's Redis layout), for every way in: the
//! HTTP API's `POST /api/v1/tasks`, the WebSocket `publish` and `heartbeat` frames, and
//! the CLI's `publish` and `heartbeat`. What may be published is
//! [`cortex_shared::publish`]'s one rule; the callers check it.

use cortex_shared::publish::PublishError;
use cortex_shared::rest::PublishRequest;
use cortex_shared::{Heartbeat, JsonObject, TaskMessage};
use redis::aio::ConnectionLike;
use redis::RedisResult;

/// The task `request` describes, checked, with a new UUID id and `created` now;
/// `from` defaults to `default_from`.
pub(crate) fn new_task(
    request: PublishRequest,
    default_from: &str,
) -> Result<TaskMessage, PublishError> {
    request.into_task(
        default_from,
        uuid::Uuid::new_v4().to_string(),
        crate::metrics::unix_secs(),
    )
}

/// `agent`'s heartbeat, `time` now.
pub(crate) fn heartbeat_now(agent: &str, status: JsonObject) -> Heartbeat {
    Heartbeat {
        agent: agent.to_owned(),
        time: crate::metrics::unix_secs(),
        status,
    }
}

/// Appends `task` as it is to its priority's stream; returns the entry id.
pub(crate) async fn publish_task<C: ConnectionLike>(
    conn: &mut C,
    task: &TaskMessage,
) -> RedisResult<String> {
    xadd(
        conn,
        super::keys::task_stream(task.priority),
        task.to_fields(),
    )
    .await
}

/// Appends `heartbeat` to the heartbeat stream; returns the entry id.
pub(crate) async fn publish_heartbeat<C: ConnectionLike>(
    conn: &mut C,
    heartbeat: &Heartbeat,
) -> RedisResult<String> {
    xadd(conn, super::keys::HEARTBEATS, heartbeat.to_fields()).await
}

async fn xadd<C: ConnectionLike>(
    conn: &mut C,
    stream: &str,
    fields: Vec<(&'static str, String)>,
) -> RedisResult<String> {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (field, value) in fields {
        cmd.arg(field).arg(value);
    }
    cmd.query_async(conn).await
}
