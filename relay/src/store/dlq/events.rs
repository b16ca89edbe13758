//! The events stream `cortex:events`: DLQ retries and deletions, written by the retry
//! and delete scripts ([`super::actions`]) in the same atomic step as the action, and
//! read by every relay's watch reader so that watchers on any relay get `dlq` frames
//! (letters *added* need no event: the reader reads `cortex:tasks:dlq` itself).
//!
//! An entry: `kind` (`dlq`), `action` (`retried` or `deleted`), `ids` (the DLQ ids,
//! space-separated, at most [`IDS_PER_EVENT`]). The stream is capped near
//! [`EVENTS_MAXLEN`] entries (`XADD … MAXLEN ~`); it is a notification channel, not
//! a record.

use crate::store::reply::Entry;
use crate::store::value::text;
use cortex_shared::rest::DlqAction;

/// About how many entries the stream keeps.
pub(crate) const EVENTS_MAXLEN: u64 = 10_000;

/// Ids per event entry at most (one per script call of a bulk action).
pub(crate) const IDS_PER_EVENT: usize = 500;

/// One event: DLQ letters retried or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DlqEvent {
    /// `Retried` or `Deleted`.
    pub(crate) action: DlqAction,
    /// The letters' DLQ ids.
    pub(crate) ids: Vec<String>,
}

/// Decodes an events entry; `None` for a kind this relay does not know (later relays
/// may add some) or a malformed one.
pub(crate) fn decode(entry: &Entry) -> Option<DlqEvent> {
    let field = |name: &str| entry.field(name).and_then(text);
    if field("kind")? != "dlq" {
        return None;
    }
    let action = DlqAction::parse(&field("action")?)?;
    let ids = field("ids")?
        .split_ascii_whitespace()
        .map(str::to_owned)
        .collect();
    Some(DlqEvent { action, ids })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn entry(fields: &[(&str, &str)]) -> Entry {
        Entry {
            id: "1-0".into(),
            fields: Some(
                fields
                    .iter()
                    .flat_map(|(k, v)| {
                        [
                            Value::BulkString(k.as_bytes().to_vec()),
                            Value::BulkString(v.as_bytes().to_vec()),
                        ]
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn decodes_dlq_events_and_ignores_other_kinds() {
        assert_eq!(
            decode(&entry(&[
                ("kind", "dlq"),
                ("action", "retried"),
                ("ids", "1-0 2-0")
            ])),
            Some(DlqEvent {
                action: DlqAction::Retried,
                ids: vec!["1-0".into(), "2-0".into()]
            })
        );
        assert_eq!(decode(&entry(&[("kind", "future"), ("action", "x")])), None);
        assert_eq!(
            decode(&entry(&[
                ("kind", "dlq"),
                ("action", "exploded"),
                ("ids", "")
            ])),
            None
        );
        assert_eq!(
            decode(&entry(&[("kind", "dlq"), ("action", "deleted")])),
            None
        );
    }
}
