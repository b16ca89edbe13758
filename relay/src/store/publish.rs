//! Writing tasks and heartbeats (`XADD`, in the README's Redis layout), for every way in: the
//! HTTP API's `POST /api/v1/tasks`, the WebSocket `publish` and `heartbeat` frames, and
//! the CLI's `publish` and `heartbeat`. What may be published is
//! [`cortex_shared::publish`]'s one rule; the callers check it. With the lifecycle
//! record on, a task's `published` record is written by the same script as its `XADD`
//! ([`super::lifecycle`]).

use super::lifecycle::{LifecycleSettings, ScriptArgs, LUA};
use cortex_shared::publish::PublishError;
use cortex_shared::rest::PublishRequest;
use cortex_shared::{Heartbeat, JsonObject, TaskMessage};
use redis::aio::ConnectionLike;
use redis::RedisResult;
use std::sync::LazyLock;

/// KEYS: the task's stream. ARGV: the lifecycle settings ([`ScriptArgs`]), the task's
/// id, its correlation id (or `''`), then its fields. Adds the task, then its
/// `published` record; returns the entry id.
static PUBLISH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r#"{LUA}
local L, at = lifecycle_args(1)
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, at + 2))
lifecycle(L, L.at_ms, 'published', ARGV[at], KEYS[1], id, '', '', '', ARGV[at + 1])
return id
"#
    ))
});

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

/// Appends `task` as it is to its priority's stream, with its `published` record when
/// `lifecycle` has it on (one script: the record is never written without the task);
/// returns the entry id.
pub(crate) async fn publish_task<C: ConnectionLike>(
    conn: &mut C,
    task: &TaskMessage,
    lifecycle: &LifecycleSettings,
) -> RedisResult<String> {
    let stream = super::keys::task_stream(task.priority);
    if !lifecycle.enabled {
        return xadd(conn, stream, task.to_fields()).await;
    }
    let mut invocation = PUBLISH.key(stream);
    ScriptArgs(lifecycle).add(&mut invocation);
    invocation
        .arg(&task.id)
        .arg(task.correlation_id.as_deref().unwrap_or_default());
    for (field, value) in task.to_fields() {
        invocation.arg(field).arg(value);
    }
    invocation.invoke_async(conn).await
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
