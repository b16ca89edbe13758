//! Changing the dead letter queue: retry (`POST /api/v1/messaging/dlq/retry/{dlq_id}`),
//! delete (`DELETE …/dlq/{dlq_id}`), and both in bulk (`POST …/dlq/retry`,
//! `POST …/dlq/delete`) by filter or by ids.
//!
//! The handlers check the request and answer; the actions, their atomicity, the
//! tombstones behind the 409s and the events every relay's watchers hear are the
//! store's ([`crate::store::dlq`]), shared with the CLI.

use super::dlq::parse_dlq_id;
use super::publish::refused;
use super::{ApiBody, ApiPath};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::dlq::{self, Bulk, Edits, Selection, Target};
use axum::extract::State;
use axum::Json;
use cortex_shared::publish::{checked_from, checked_payload, checked_to, checked_type};
use cortex_shared::rest::{BulkFailure, BulkRequest, BulkResult, Deleted, Retried, RetryRequest};
use cortex_shared::EntryId;
use std::collections::BTreeSet;

/// Ids one bulk request may list.
const MAX_IDS: usize = 100_000;
/// Failures a bulk result details.
const MAX_FAILURES: usize = 100;

/// The edits a [`RetryRequest`] asks for, checked as a published task's fields are
/// (400 `invalid_payload`, `invalid_agent`, `invalid_type`; `invalid_body` for an
/// empty `id`).
fn edits(request: RetryRequest) -> Result<Edits, ApiError> {
    let mut fields = Vec::new();
    if let Some(id) = request.id {
        if id.is_empty() {
            return Err(ApiError::bad_request(
                "invalid_body",
                "id must not be empty",
            ));
        }
        fields.push(("id", id));
    }
    if let Some(from) = request.from {
        fields.push(("from", checked_from(&from).map_err(refused)?));
    }
    if let Some(to) = request.to {
        fields.push(("to", checked_to(&to).map_err(refused)?));
    }
    if let Some(task_type) = request.task_type {
        checked_type(&task_type).map_err(refused)?;
        fields.push(("type", task_type));
    }
    if let Some(payload) = request.payload {
        let payload = checked_payload(Some(payload)).map_err(refused)?;
        fields.push(("payload", serde_json::Value::Object(payload).to_string()));
    }
    if let Some(created) = request.created {
        fields.push(("created", created.to_string()));
    }
    Ok(Edits {
        priority: request.priority,
        fields,
    })
}

/// `POST /api/v1/messaging/dlq/retry/{dlq_id}`, with an optional [`RetryRequest`].
pub async fn retry(
    State(state): State<AppState>,
    ApiPath(dlq_id): ApiPath<String>,
    body: ApiBody,
) -> Result<Json<Retried>, ApiError> {
    let id = parse_dlq_id(&dlq_id)?;
    let request: RetryRequest = body.json()?.unwrap_or_default();
    let edits = edits(request)?;
    let retried = dlq::retry(
        &mut state.services.redis.clone(),
        id,
        &edits,
        &state.services.lifecycle,
    )
    .await?;
    Ok(Json(retried))
}

/// `DELETE /api/v1/messaging/dlq/{dlq_id}`.
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(dlq_id): ApiPath<String>,
) -> Result<Json<Deleted>, ApiError> {
    let id = parse_dlq_id(&dlq_id)?;
    dlq::delete(
        &mut state.services.redis.clone(),
        id,
        &state.services.lifecycle,
    )
    .await?;
    Ok(Json(Deleted {
        dlq_id: id.to_string(),
        deleted: true,
    }))
}

/// What a bulk request selects: its ids (checked, without duplicates, in the order
/// given), or its filter.
fn target(request: &BulkRequest) -> Result<Target, ApiError> {
    match (&request.ids, &request.filter) {
        (Some(_), Some(_)) | (None, None) => Err(ApiError::bad_request(
            "invalid_body",
            "give either \"ids\" (a list of DLQ ids) or \"filter\" ({} selects every letter)",
        )),
        (None, Some(filter)) => Ok(Target::Filter(Selection::parse(filter)?)),
        (Some(ids), None) => {
            if ids.len() > MAX_IDS {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    format!("at most {MAX_IDS} ids per request; use a filter for more"),
                ));
            }
            let mut seen = BTreeSet::new();
            let mut checked = Vec::with_capacity(ids.len());
            for id in ids {
                let id: EntryId = parse_dlq_id(id)?;
                if seen.insert(id) {
                    checked.push(id);
                }
            }
            Ok(Target::Ids(checked))
        }
    }
}

/// A bulk action's answer: its counts, and the first [`MAX_FAILURES`] failures with
/// the code and message a single action would have answered.
fn result(bulk: Bulk) -> BulkResult {
    let failed = bulk.failures.len() as u64;
    let failures = bulk
        .failures
        .into_iter()
        .take(MAX_FAILURES)
        .map(|(id, error)| {
            let error = ApiError::from(error);
            BulkFailure {
                dlq_id: id.to_string(),
                code: error.code().to_owned(),
                message: error.message().to_owned(),
            }
        })
        .collect();
    BulkResult {
        matched: bulk.matched,
        acted: bulk.acted,
        gone: bulk.gone,
        failed,
        failures,
    }
}

/// `POST /api/v1/messaging/dlq/retry`: retries the letters a [`BulkRequest`] selects.
pub async fn bulk_retry(
    State(state): State<AppState>,
    body: ApiBody,
) -> Result<Json<BulkResult>, ApiError> {
    let request: BulkRequest = body.required()?;
    let target = target(&request)?;
    let bulk = dlq::bulk_retry(
        &mut state.services.redis.clone(),
        target,
        request.priority,
        &state.services.lifecycle,
    )
    .await?;
    Ok(Json(result(bulk)))
}

/// `POST /api/v1/messaging/dlq/delete`: deletes the letters a [`BulkRequest`] selects.
pub async fn bulk_delete(
    State(state): State<AppState>,
    body: ApiBody,
) -> Result<Json<BulkResult>, ApiError> {
    let request: BulkRequest = body.required()?;
    if request.priority.is_some() {
        return Err(ApiError::bad_request(
            "invalid_body",
            "\"priority\" is for retries; a delete takes \"ids\" or \"filter\"",
        ));
    }
    let target = target(&request)?;
    let bulk = dlq::bulk_delete(
        &mut state.services.redis.clone(),
        target,
        &state.services.lifecycle,
    )
    .await?;
    Ok(Json(result(bulk)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::DeadLetter;

    fn edited(body: serde_json::Value) -> Edits {
        edits(serde_json::from_value(body).unwrap()).unwrap()
    }

    #[test]
    fn edits_are_checked_as_published_fields_are() {
        for (body, code) in [
            (serde_json::json!({"to":"no/slash"}), "invalid_agent"),
            (serde_json::json!({"from":""}), "invalid_agent"),
            (serde_json::json!({"type":"two words"}), "invalid_type"),
            (serde_json::json!({"id":""}), "invalid_body"),
            (serde_json::json!({"payload":[1]}), "invalid_payload"),
        ] {
            let request: RetryRequest = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(edits(request).unwrap_err().code(), code, "{body}");
        }
        let all = edited(
            serde_json::json!({"id":"t9","from":"blue","to":"*","type":"review",
                                            "created":7,"payload":{"a":1},
                                            "priority":"high"}),
        );
        assert_eq!(all.priority, Some(cortex_shared::Priority::High));
        assert_eq!(
            all.fields,
            [
                ("id", "t9".to_owned()),
                ("from", "blue".to_owned()),
                ("to", String::new()),
                ("type", "review".to_owned()),
                ("payload", r#"{"a":1}"#.to_owned()),
                ("created", "7".to_owned()),
            ]
        );
    }

    #[test]
    fn a_letter_retried_with_edits_is_planned_with_them() {
        let letter = DeadLetter {
            original_id: "task-001".into(),
            original_from: "harold".into(),
            original_priority: "low".into(),
            original_type: "coding".into(),
            original_payload: "{broken".into(),
            original_created: "1".into(),
            original_missing: vec!["to".into()],
            ..Default::default()
        };
        let id = EntryId::new(9, 0);
        let refused = ApiError::from(dlq::plan(id, &letter, &Edits::default()).unwrap_err());
        assert_eq!(
            (refused.status().as_u16(), refused.code()),
            (422, "not_retryable")
        );
        let fixed = edited(serde_json::json!({"to":"pink","payload":{"ok":true}}));
        assert!(dlq::plan(id, &letter, &fixed).is_ok());
    }

    #[test]
    fn bulk_requests_take_ids_or_a_filter() {
        let both = BulkRequest {
            ids: Some(vec![]),
            filter: Some(Default::default()),
            priority: None,
        };
        assert_eq!(target(&both).err().unwrap().code(), "invalid_body");
        assert_eq!(
            target(&BulkRequest::default()).err().unwrap().code(),
            "invalid_body"
        );
        let ids = BulkRequest {
            ids: Some(vec!["1-0".into(), "1-0".into(), "2".into()]),
            ..BulkRequest::default()
        };
        match target(&ids).ok().unwrap() {
            Target::Ids(ids) => assert_eq!(ids, [EntryId::new(1, 0), EntryId::new(2, 0)]),
            Target::Filter(_) => panic!("ids expected"),
        }
        let bad = BulkRequest {
            ids: Some(vec!["x".into()]),
            ..BulkRequest::default()
        };
        assert_eq!(target(&bad).err().unwrap().code(), "invalid_id");
        let filter = BulkRequest {
            filter: Some(cortex_shared::rest::DlqFilter {
                priority: Some("urgent".into()),
                ..Default::default()
            }),
            ..BulkRequest::default()
        };
        assert_eq!(target(&filter).err().unwrap().code(), "invalid_filter");
    }

    #[test]
    fn bulk_failures_are_detailed_as_single_actions_answer_them() {
        let error = cortex_shared::DecodeError::new("payload", cortex_shared::Problem::Missing);
        let bulk = Bulk {
            matched: 150,
            acted: 40,
            gone: 0,
            failures: (0..110)
                .map(|n| {
                    let id = EntryId::new(n, 0);
                    (
                        id,
                        dlq::DlqError::NotRetryable {
                            id,
                            error: error.clone(),
                        },
                    )
                })
                .collect(),
        };
        let r = result(bulk);
        assert_eq!((r.matched, r.acted, r.failed), (150, 40, 110));
        assert_eq!(r.failures.len(), MAX_FAILURES);
        assert_eq!(r.failures[0].code, "not_retryable");
        assert!(
            r.failures[0].message.contains("give `payload`"),
            "{:?}",
            r.failures[0]
        );
    }
}
