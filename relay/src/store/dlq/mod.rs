//! The dead letter queue, `cortex:tasks:dlq`, and all the rules about it: letters
//! written by consumers, once per group or once in all ([`write`]); letters read,
//! selected and scanned ([`letters`]); retried and deleted, one or in bulk, with
//! tombstones and events ([`actions`]); the events stream that tells every relay of
//! retries and deletions ([`events`]). The HTTP API and the CLI's on-Redis commands
//! both act through here, so a letter retried either way is announced and remembered
//! the same way.
//!
//! Failures are [`DlqError`]s with stable codes; the transports turn them into their
//! own errors.

mod actions;
pub(crate) mod events;
mod letters;
mod write;

#[cfg(test)]
pub(crate) use actions::plan;
pub(crate) use actions::{bulk_delete, bulk_retry, delete, retry, Bulk, Edits, Target};
pub(crate) use letters::{letter_of, non_empty, read_letter, Scanner, Selection};
pub(crate) use write::attempts_of;
pub use write::{dead_letter, Once};

use cortex_shared::{DecodeError, EntryId};

/// Why an action on a dead letter did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DlqError {
    /// The letter is not in the DLQ, and no tombstone says why.
    #[error("no dead letter {0}")]
    NotFound(EntryId),
    /// It was retried (within the tombstone's hour).
    #[error("dead letter {0} was already retried")]
    AlreadyRetried(EntryId),
    /// It was deleted (within the tombstone's hour).
    #[error("dead letter {0} was already deleted")]
    AlreadyDeleted(EntryId),
    /// Its task does not decode; a retry must supply what `error` names.
    #[error("dead letter {id} cannot be retried: its task does not decode: {error}")]
    NotRetryable {
        /// The letter.
        id: EntryId,
        /// What does not decode.
        error: DecodeError,
    },
    /// Redis failed.
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
}

impl DlqError {
    /// The stable code: `not_found`, `already_retried`, `already_deleted`,
    /// `not_retryable`, or `redis` for a Redis failure.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            DlqError::NotFound(_) => "not_found",
            DlqError::AlreadyRetried(_) => "already_retried",
            DlqError::AlreadyDeleted(_) => "already_deleted",
            DlqError::NotRetryable { .. } => "not_retryable",
            DlqError::Redis(_) => "redis",
        }
    }

    /// Why letter `id` was not found, given its tombstone's value.
    pub(crate) fn gone(id: EntryId, tombstone: Option<&str>) -> Self {
        match tombstone {
            Some("retried") => DlqError::AlreadyRetried(id),
            Some("deleted") => DlqError::AlreadyDeleted(id),
            _ => DlqError::NotFound(id),
        }
    }
}

/// A DLQ filter that cannot select anything sensible (a bad agent name, an unknown
/// priority, a backwards time range).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct FilterError(pub(crate) String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_say_why_a_letter_is_gone() {
        let id = EntryId::new(1, 0);
        assert_eq!(
            DlqError::gone(id, Some("retried")).code(),
            "already_retried"
        );
        assert_eq!(
            DlqError::gone(id, Some("deleted")).code(),
            "already_deleted"
        );
        assert_eq!(DlqError::gone(id, None).code(), "not_found");
        assert_eq!(DlqError::gone(id, None).to_string(), "no dead letter 1-0");
        assert_eq!(
            DlqError::gone(id, Some("retried")).to_string(),
            "dead letter 1-0 was already retried"
        );
    }
}
