//! The task lifecycle API: `/api/v1/tasks/{id}`, `/api/v1/tasks/by-entry/…`,
//! `/api/v1/tasks?agent=…&state=…`, `/api/v1/traces/{correlation_id}` (README, "Task
//! lifecycle").

use super::{get, ApiError};
use crate::route::encode_segment;
use cortex_shared::lifecycle::{TaskListReply, TaskReply, TaskState, TraceReply};

/// The path of a task: by its entry when known (always there), else by its id.
pub fn task_path(id: &str, stream: &str, entry_id: &str) -> String {
    if stream.is_empty() || entry_id.is_empty() {
        format!("/api/v1/tasks/{}", encode_segment(id))
    } else {
        format!(
            "/api/v1/tasks/by-entry/{}/{}",
            encode_segment(stream),
            encode_segment(entry_id)
        )
    }
}

/// The path of one page of `agent`'s tasks in `state`, oldest first.
pub fn list_path(agent: &str, state: TaskState, after: Option<&str>, count: usize) -> String {
    let mut path = format!(
        "/api/v1/tasks?agent={}&state={}&count={count}",
        encode_segment(agent),
        state.as_str()
    );
    if let Some(after) = after {
        path.push_str(&format!("&after={}", encode_segment(after)));
    }
    path
}

/// A task, its state per agent and its timeline.
pub async fn task(id: &str, stream: &str, entry_id: &str) -> Result<TaskReply, ApiError> {
    get(&task_path(id, stream, entry_id)).await
}

/// Up to `max_pages` pages of `agent`'s tasks in `state`, oldest first, and whether
/// there were more.
pub async fn list(
    agent: &str,
    state: TaskState,
    page: usize,
    max_pages: usize,
) -> Result<(TaskListReply, bool), ApiError> {
    let mut all = TaskListReply {
        items: Vec::new(),
        next: None,
    };
    let mut after: Option<String> = None;
    for _ in 0..max_pages {
        let reply: TaskListReply = get(&list_path(agent, state, after.as_deref(), page)).await?;
        all.items.extend(reply.items);
        match reply.next {
            Some(next) => after = Some(next),
            None => return Ok((all, false)),
        }
    }
    all.next = after;
    Ok((all, true))
}

/// A trace's tasks as a tree.
pub async fn trace(correlation_id: &str) -> Result<TraceReply, ApiError> {
    get(&format!(
        "/api/v1/traces/{}",
        encode_segment(correlation_id)
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(task_path("t/1", "", ""), "/api/v1/tasks/t%2F1");
        assert_eq!(
            task_path("t", "cortex:tasks:high", "1-0"),
            "/api/v1/tasks/by-entry/cortex%3Atasks%3Ahigh/1-0"
        );
        assert_eq!(
            list_path("pink", TaskState::InProgress, None, 100),
            "/api/v1/tasks?agent=pink&state=in_progress&count=100"
        );
        assert_eq!(
            list_path("pink", TaskState::Waiting, Some("5-0"), 10),
            "/api/v1/tasks?agent=pink&state=waiting&count=10&after=5-0"
        );
    }
}
