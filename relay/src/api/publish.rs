//! Publishing: `POST /api/v1/tasks` checks a [`PublishRequest`] and writes the plan's
//! seven task fields, with a new UUID id, to its priority's stream (as
//! [`cortex_agent::Publisher`] does).

use super::ApiBody;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cortex_shared::rest::{PublishRequest, Published};
use cortex_shared::{AgentName, TaskMessage, ALL_AGENTS};

/// The sender of a task published without `from`.
pub const DEFAULT_FROM: &str = "operator";
/// The longest task type accepted.
const MAX_TYPE_LEN: usize = 64;

/// The task a request describes, checked: `to` empty, `*` or an agent name; `from` an
/// agent name; `type` a word; `payload` an object.
pub(crate) fn task_of(request: PublishRequest) -> Result<TaskMessage, ApiError> {
    let to = checked_to(&request.to)?;
    let from = checked_from(request.from.as_deref().unwrap_or(DEFAULT_FROM))?;
    checked_type(&request.task_type)?;
    let payload = match request.payload {
        None => serde_json::Map::new(),
        Some(serde_json::Value::Object(map)) => map,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_payload",
                format!("payload must be a JSON object, not {other}"),
            ))
        }
    };
    Ok(TaskMessage {
        id: uuid::Uuid::new_v4().to_string(),
        from,
        to,
        priority: request.priority,
        task_type: request.task_type,
        payload,
        created: (crate::metrics::unix_ms() / 1000) as i64,
    })
}

/// A task's `to`, checked: empty or `*` (every agent, written empty) or an agent name.
pub(crate) fn checked_to(to: &str) -> Result<String, ApiError> {
    match to {
        "" | ALL_AGENTS => Ok(String::new()),
        to => Ok(AgentName::parse(to)
            .map_err(|e| ApiError::bad_request("invalid_agent", format!("to: {e}")))?
            .to_string()),
    }
}

/// A task's `from`, checked: an agent name.
pub(crate) fn checked_from(from: &str) -> Result<String, ApiError> {
    Ok(AgentName::parse(from)
        .map_err(|e| ApiError::bad_request("invalid_agent", format!("from: {e}")))?
        .to_string())
}

/// A task's `type`, checked: a word.
pub(crate) fn checked_type(task_type: &str) -> Result<(), ApiError> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if task_type.is_empty() || task_type.len() > MAX_TYPE_LEN || !task_type.chars().all(word) {
        return Err(ApiError::bad_request(
            "invalid_type",
            format!(
                "type {task_type:?} is not a word ([A-Za-z0-9_-], 1 to {MAX_TYPE_LEN} characters)"
            ),
        ));
    }
    Ok(())
}

/// `POST /api/v1/tasks`: 201 with the task id and its entry id.
pub async fn publish(
    State(state): State<AppState>,
    body: ApiBody,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let task = task_of(body.required()?)?;
    let mut cmd = redis::cmd("XADD");
    cmd.arg(task.priority.stream()).arg("*");
    for (field, value) in task.to_fields() {
        cmd.arg(field).arg(value);
    }
    let entry_id: String = cmd.query_async(&mut state.services.redis.clone()).await?;
    Ok((
        StatusCode::CREATED,
        Json(Published {
            task_id: task.id,
            stream: task.priority.stream().to_owned(),
            entry_id,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::Priority;
    use serde_json::json;

    fn request(f: impl FnOnce(&mut PublishRequest)) -> PublishRequest {
        let mut r = PublishRequest {
            to: "pink".into(),
            priority: Priority::High,
            task_type: "coding".into(),
            payload: Some(json!({"description":"Fix auth bug"})),
            from: None,
        };
        f(&mut r);
        r
    }

    #[test]
    fn a_valid_request_becomes_the_plans_task() {
        let task = task_of(request(|_| {})).unwrap();
        assert_eq!(task.to, "pink");
        assert_eq!(task.from, DEFAULT_FROM);
        assert_eq!(task.payload["description"], "Fix auth bug");
        assert!(uuid::Uuid::parse_str(&task.id).is_ok());
        assert_eq!(task_of(request(|r| r.to = "*".into())).unwrap().to, "");
        assert!(task_of(request(|r| r.payload = None))
            .unwrap()
            .payload
            .is_empty());
    }

    #[test]
    fn bad_requests_name_the_field() {
        for (r, code) in [
            (request(|r| r.to = "pi nk".into()), "invalid_agent"),
            (request(|r| r.from = Some("a/b".into())), "invalid_agent"),
            (
                request(|r| r.task_type = "two words".into()),
                "invalid_type",
            ),
            (request(|r| r.task_type = String::new()), "invalid_type"),
            (request(|r| r.payload = Some(json!([1]))), "invalid_payload"),
            (
                request(|r| r.payload = Some(json!("text"))),
                "invalid_payload",
            ),
        ] {
            assert_eq!(task_of(r).unwrap_err().code(), code);
        }
    }
}
