//! Dead-lettering: a task delivered `max_deliveries` times, or nacked with none left,
//! and an entry that does not decode as a task, go to the DLQ. The letter is written
//! and the entry acked in one step ([`GroupStore::dead_letter`], one script on Redis:
//! see [`crate::store::dlq`]), so a crash can leave it pending, to be dead-lettered
//! again later, but never acked without its letter. A task's letter is written once
//! per agent that failed it; a malformed entry's once in all, whichever group saw it
//! first.

use super::Consumer;
use crate::metrics::Outcome;
use crate::store::consumer::GroupStore;
use crate::store::dlq::Once;
use crate::store::reply::Entry;
use cortex_shared::lifecycle::LifecycleEvent;
use cortex_shared::{Attempt, DeadLetter, DecodeError, Priority, TaskMessage};
use std::collections::HashMap;

/// The most attempts a letter lists (the newest).
const MAX_ATTEMPTS: usize = 32;

impl<S: GroupStore> Consumer<S> {
    /// Dead-letters a well-formed task of this agent's that failed `retry_count` times.
    pub(super) async fn dead_letter_task(
        &mut self,
        task: &TaskMessage,
        priority: Priority,
        entry_id: &str,
        error: &str,
        retry_count: u64,
    ) -> redis::RedisResult<()> {
        let stream = priority.stream();
        let mut letter = task_letter(task, stream, entry_id, error, retry_count);
        let record = self
            .record(LifecycleEvent::DeadLettered, &task.id, priority, entry_id)
            .map(|r| r.detail("error", error).record);
        self.flush_records().await?;
        // The history is the lifecycle record's; without it the letter still goes.
        let mut attempts = match self.store.attempts(&task.id, priority, entry_id).await {
            Ok(attempts) => attempts,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the task's earlier attempts");
                Vec::new()
            }
        };
        attempts.push(Attempt {
            at_ms: crate::metrics::unix_ms(),
            consumer: self.consumer.clone(),
            error: error.to_owned(),
        });
        // The newest, should a task have failed very often.
        let skip = attempts.len().saturating_sub(MAX_ATTEMPTS);
        letter.attempts = attempts.split_off(skip);
        letter.failed_agent = Some(self.agent.to_string());
        letter.failed_consumer = Some(self.consumer.clone());
        self.store
            .dead_letter(priority, entry_id, &letter, Once::PerGroup, record.as_ref())
            .await?;
        self.metrics
            .agent_outcome(self.agent.as_str(), Outcome::DeadLettered);
        tracing::info!(agent = %self.agent, stream, entry_id, error, "task dead-lettered");
        Ok(())
    }

    /// Dead-letters an entry that does not decode as a task, delivered `count` times.
    pub(super) async fn dead_letter_malformed(
        &mut self,
        priority: Priority,
        entry: &Entry,
        error: &DecodeError,
        count: u64,
    ) -> redis::RedisResult<()> {
        let stream = priority.stream();
        let mut letter = raw_letter(entry, stream, &error.to_string(), count);
        letter.failed_agent = Some(self.agent.to_string());
        letter.failed_consumer = Some(self.consumer.clone());
        // Its `id`, if it has one in UTF-8, names its record.
        let task_id = entry
            .field("id")
            .and_then(crate::store::reply::bytes)
            .and_then(|id| std::str::from_utf8(id).ok())
            .filter(|id| !id.is_empty());
        let record = task_id.and_then(|task_id| {
            self.record(LifecycleEvent::DeadLettered, task_id, priority, &entry.id)
                .map(|r| r.detail("error", error.to_string()).record)
        });
        self.flush_records().await?;
        let written = self
            .store
            .dead_letter(priority, &entry.id, &letter, Once::Global, record.as_ref())
            .await?;
        if written {
            self.metrics
                .agent_outcome(self.agent.as_str(), Outcome::DeadLettered);
        }
        tracing::warn!(stream, entry_id = %entry.id, error = %error, "malformed task dead-lettered");
        Ok(())
    }
}

/// A letter from the original entry's fields (looked up by name with `field`).
fn letter(
    field: impl Fn(&str) -> String,
    stream: &str,
    entry_id: &str,
    error: &str,
    retry_count: u64,
) -> DeadLetter {
    DeadLetter {
        original_id: field("id"),
        original_from: field("from"),
        original_to: field("to"),
        original_priority: field("priority"),
        original_type: field("type"),
        original_payload: field("payload"),
        original_created: field("created"),
        error: error.to_owned(),
        retry_count: retry_count.min(u32::MAX as u64) as u32,
        dead_at: crate::metrics::unix_secs(),
        original_stream: Some(stream.to_owned()),
        original_entry_id: Some(entry_id.to_owned()),
        original_parent_id: Some(field("parent_id")).filter(|p| !p.is_empty()),
        original_correlation_id: Some(field("correlation_id")).filter(|c| !c.is_empty()),
        ..Default::default()
    }
}

/// The letter for a well-formed task.
fn task_letter(
    task: &TaskMessage,
    stream: &str,
    entry_id: &str,
    error: &str,
    retry_count: u64,
) -> DeadLetter {
    let fields: HashMap<&str, String> = task.to_fields().into_iter().collect();
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    letter(field, stream, entry_id, error, retry_count)
}

/// The letter for an entry that does not decode: its fields as they are (the last of a
/// repeated field), saying which were missing and keeping the exact bytes of those
/// that are not UTF-8 (see [`DeadLetter::with_original_fields`]).
fn raw_letter(entry: &Entry, stream: &str, error: &str, count: u64) -> DeadLetter {
    letter(|_| String::new(), stream, &entry.id, error, count)
        .with_original_fields(entry.raw_fields())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::streams::StreamId;
    use redis::Value;

    #[test]
    fn letters_keep_the_original_fields() {
        let task = TaskMessage {
            id: "t1".into(),
            from: "harold".into(),
            to: "pink".into(),
            priority: Priority::High,
            task_type: "coding".into(),
            payload: serde_json::json!({"a": 1}).as_object().unwrap().clone(),
            created: 1_704_556_800,
            parent_id: None,
            correlation_id: None,
        };
        let letter = task_letter(&task, "cortex:tasks:high", "5-0", "boom", 3);
        assert_eq!(letter.original_task().unwrap(), task);
        assert_eq!(letter.retry_count, 3);
        assert_eq!(letter.original_entry_id.as_deref(), Some("5-0"));

        let entry = StreamId {
            id: "6-0".into(),
            map: [
                ("id".to_owned(), Value::BulkString(b"t2".to_vec())),
                ("payload".to_owned(), Value::BulkString(b"{bad".to_vec())),
            ]
            .into(),
            ..Default::default()
        };
        let letter = raw_letter(
            &entry.into(),
            "cortex:tasks:low",
            "field `payload`: not valid JSON",
            1,
        );
        assert_eq!(letter.original_id, "t2");
        assert_eq!(letter.original_payload, "{bad");
        assert_eq!(letter.original_to, "");
    }
}
