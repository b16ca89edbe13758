//! Where tasks are (README, "Tasks and traces"): `GET /api/v1/tasks/{task_id}`,
//! `GET /api/v1/tasks/by-entry/{stream}/{entry_id}`, `GET /api/v1/tasks?agent=…&state=…`
//! and `GET /api/v1/traces/{correlation_id}`. The handlers check their input and call
//! [`crate::engine::tasks`]; any role may read them.

use super::{ApiPath, ApiQuery};
use crate::engine::tasks::{self, Cursor, Listable, TaskSettings};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use cortex_shared::lifecycle::{TaskListReply, TaskReply, TraceReply};
use cortex_shared::{AgentName, EntryId};
use serde::{Deserialize, Serialize};

/// Tasks per list page by default, and at most.
pub const DEFAULT_COUNT: usize = 50;
/// See [`DEFAULT_COUNT`].
pub const MAX_COUNT: usize = 1_000;

/// A task id longer than this is refused (400 `invalid_id`) before Redis is asked.
pub const MAX_TASK_ID_BYTES: usize = 1_024;

/// The query of `GET /api/v1/tasks`: `?agent=pink&state=in_progress&after=…&count=50`.
/// Each is text here so that a bad value gets its own code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskListQuery {
    /// The agent (required).
    pub agent: Option<String>,
    /// `waiting`, `in_progress` or `retrying` (required).
    pub state: Option<String>,
    /// The `next` of the page before.
    pub after: Option<String>,
    /// Tasks at most, 1 to 1000; default 50.
    pub count: Option<String>,
}

fn settings(state: &AppState) -> TaskSettings {
    TaskSettings {
        visibility_ms: state.services.delivery.visibility.as_millis() as u64,
        scan_entries: state.api.task_scan_entries,
    }
}

fn not_found(message: String) -> ApiError {
    ApiError::not_found("not_found", message)
}

/// `GET /api/v1/tasks/{task_id}`: the task, its state per agent and its timeline.
pub async fn one(
    State(state): State<AppState>,
    ApiPath(task_id): ApiPath<String>,
) -> Result<Json<TaskReply>, ApiError> {
    if task_id.len() > MAX_TASK_ID_BYTES {
        return Err(ApiError::bad_request(
            "invalid_id",
            format!(
                "a task id is at most {MAX_TASK_ID_BYTES} bytes, not {}",
                task_id.len()
            ),
        ));
    }
    let mut conn = state.services.redis.clone();
    match tasks::by_id(&mut conn, settings(&state), &task_id).await? {
        Some(reply) => Ok(Json(reply)),
        None => Err(not_found(format!("no task {task_id:?}"))),
    }
}

/// `GET /api/v1/tasks/by-entry/{stream}/{entry_id}`: the task at that entry.
pub async fn by_entry(
    State(state): State<AppState>,
    ApiPath((stream, entry_id)): ApiPath<(String, String)>,
) -> Result<Json<TaskReply>, ApiError> {
    let Some(stream) = tasks::task_stream(&stream) else {
        return Err(ApiError::bad_request(
            "not_a_task_stream",
            format!(
                "{stream:?} is not a task stream (cortex:tasks:critical, …:high, …:normal \
                 or …:low)"
            ),
        ));
    };
    let id = entry_id.parse::<EntryId>().map_err(|_| {
        ApiError::bad_request(
            "invalid_id",
            format!("{entry_id:?} is not a stream entry id (<milliseconds>-<sequence>)"),
        )
    })?;
    let mut conn = state.services.redis.clone();
    match tasks::by_entry(&mut conn, settings(&state), stream, id).await? {
        Some(reply) => Ok(Json(reply)),
        None => Err(not_found(format!("no task at {stream} {id}"))),
    }
}

/// `GET /api/v1/tasks?agent=…&state=…`: a page of an agent's tasks in one state,
/// oldest first.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<TaskListQuery>,
) -> Result<Json<TaskListReply>, ApiError> {
    let agent = match query.agent.as_deref() {
        None | Some("") => {
            return Err(ApiError::bad_request(
                "invalid_agent",
                "give the agent: ?agent=<name>",
            ))
        }
        Some(agent) => AgentName::parse(agent)
            .map_err(|e| ApiError::bad_request("invalid_agent", format!("agent: {e}")))?,
    };
    let listable = "waiting, in_progress or retrying";
    let wanted = match query.state.as_deref() {
        None | Some("") => {
            return Err(ApiError::bad_request(
                "invalid_state",
                format!("give the state: ?state= {listable}"),
            ))
        }
        Some(name) => Listable::parse(name).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_state",
                format!("state {name:?} cannot be listed; the states listed are {listable}"),
            )
        })?,
    };
    let count = match query.count.as_deref() {
        None => DEFAULT_COUNT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_COUNT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_count",
                    format!("count must be 1 to {MAX_COUNT}, not {text:?}"),
                )
            })?,
    };
    let after = match query.after.as_deref() {
        None | Some("") => None,
        Some(text) => Some(Cursor::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_cursor",
                format!("after {text:?} is not a cursor (the `next` of a page)"),
            )
        })?),
    };
    let mut conn = state.services.redis.clone();
    let page = tasks::list(&mut conn, settings(&state), &agent, wanted, after, count).await?;
    Ok(Json(page))
}

/// `GET /api/v1/traces/{correlation_id}`: the trace's tasks as a tree.
pub async fn trace(
    State(state): State<AppState>,
    ApiPath(correlation_id): ApiPath<String>,
) -> Result<Json<TraceReply>, ApiError> {
    cortex_shared::publish::checked_trace("correlation_id", Some(&correlation_id))
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
    let mut conn = state.services.redis.clone();
    match tasks::trace(&mut conn, settings(&state), &correlation_id).await? {
        Some(reply) => Ok(Json(reply)),
        None => Err(not_found(format!("no trace {correlation_id:?}"))),
    }
}
