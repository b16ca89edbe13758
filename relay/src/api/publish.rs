//! Publishing: `POST /api/v1/tasks` checks a [`PublishRequest`] by the one rule for
//! published tasks ([`cortex_shared::publish`]) and writes the seven task
//! fields, with a new UUID id, to its priority's stream ([`crate::store::publish`]).

use super::ApiBody;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::publish::{new_task, publish_task};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use cortex_shared::publish::PublishError;
use cortex_shared::rest::{PublishRequest, Published};

/// The sender of a task published without `from`.
pub const DEFAULT_FROM: &str = "operator";

/// A refused task as a 400 with the rule's code (`invalid_agent`, `invalid_type`,
/// `invalid_payload`).
pub(crate) fn refused(error: PublishError) -> ApiError {
    ApiError::bad_request(error.code(), error.to_string())
}

/// `POST /api/v1/tasks`: 201 with the task id and its entry id.
pub async fn publish(
    State(state): State<AppState>,
    body: ApiBody,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let request: PublishRequest = body.required()?;
    let task = new_task(request, DEFAULT_FROM).map_err(refused)?;
    let entry_id = publish_task(
        &mut state.services.redis.clone(),
        &task,
        &state.services.lifecycle,
    )
    .await?;
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
            parent_id: None,
            correlation_id: None,
        };
        f(&mut r);
        r
    }

    #[test]
    fn a_valid_request_becomes_a_task_in_the_redis_layout() {
        let task = new_task(request(|_| {}), DEFAULT_FROM).unwrap();
        assert_eq!(task.to, "pink");
        assert_eq!(task.from, DEFAULT_FROM);
        assert_eq!(task.payload["description"], "Fix auth bug");
        assert!(uuid::Uuid::parse_str(&task.id).is_ok());
        assert!(task.created > 1_700_000_000);
    }

    #[test]
    fn bad_requests_are_400s_with_the_rules_code() {
        for (r, code) in [
            (request(|r| r.to = "pi nk".into()), "invalid_agent"),
            (
                request(|r| r.task_type = "two words".into()),
                "invalid_type",
            ),
            (request(|r| r.payload = Some(json!([1]))), "invalid_payload"),
        ] {
            let e = refused(new_task(r, DEFAULT_FROM).unwrap_err());
            assert_eq!((e.status().as_u16(), e.code()), (400, code));
        }
    }
}
