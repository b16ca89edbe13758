//! The dead-letter queue: `/api/v1/messaging/dlq…`.

use super::{delete as http_delete, get, post, ApiError};
use crate::route::encode;
use cortex_shared::rest::{
    BulkRequest, BulkResult, Deleted, DlqFilter, DlqPage, Retried, RetryRequest,
};

/// The query string of a listing: the filter's fields, `limit` and `cursor`.
pub fn list_query(filter: &DlqFilter, limit: usize, cursor: Option<&str>) -> String {
    let mut pairs = vec![format!("limit={limit}")];
    let mut push = |key: &str, value: &Option<String>| {
        if let Some(value) = value {
            pairs.push(format!("{key}={}", encode(value)));
        }
    };
    push("agent", &filter.agent);
    push("priority", &filter.priority);
    push("type", &filter.task_type);
    push("error", &filter.error);
    push("payload", &filter.payload);
    if let Some(cursor) = cursor {
        pairs.push(format!("cursor={}", encode(cursor)));
    }
    pairs.join("&")
}

/// One page of letters matching `filter`, newest first.
pub async fn list(
    filter: &DlqFilter,
    limit: usize,
    cursor: Option<&str>,
) -> Result<DlqPage, ApiError> {
    get(&format!(
        "/api/v1/messaging/dlq?{}",
        list_query(filter, limit, cursor)
    ))
    .await
}

/// Retries one letter (optionally at another priority, with another payload).
pub async fn retry(dlq_id: &str, request: &RetryRequest) -> Result<Retried, ApiError> {
    post(
        &format!("/api/v1/messaging/dlq/retry/{}", encode(dlq_id)),
        request,
    )
    .await
}

/// Deletes one letter.
pub async fn delete(dlq_id: &str) -> Result<Deleted, ApiError> {
    http_delete(&format!("/api/v1/messaging/dlq/{}", encode(dlq_id))).await
}

/// Retries every letter matching `filter`.
pub async fn retry_matching(
    filter: DlqFilter,
    priority: Option<cortex_shared::Priority>,
) -> Result<BulkResult, ApiError> {
    let body = BulkRequest {
        ids: None,
        filter: Some(filter),
        priority,
    };
    post("/api/v1/messaging/dlq/retry", &body).await
}

/// Deletes every letter matching `filter`.
pub async fn delete_matching(filter: DlqFilter) -> Result<BulkResult, ApiError> {
    let body = BulkRequest {
        ids: None,
        filter: Some(filter),
        priority: None,
    };
    post("/api/v1/messaging/dlq/delete", &body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_listing_query() {
        let filter = DlqFilter {
            agent: Some("pink".into()),
            error: Some("time out".into()),
            ..DlqFilter::default()
        };
        assert_eq!(
            list_query(&filter, 20, Some("1-0")),
            "limit=20&agent=pink&error=time%20out&cursor=1-0"
        );
    }
}
