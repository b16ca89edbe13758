//! Where a task is, for each agent: the state rule (README, "Tasks and traces"), as
//! pure functions of what Redis says about the task's entry (its groups' last
//! delivered ids and pending entries), the task's lifecycle records and the dead
//! letters they name. [`super::tasks`] reads those and calls these.
//!
//! For each agent's group `agent:<name>` on the task's stream (and each other group,
//! shown by its name):
//! - pending → `in_progress` (its consumer, deliveries, since idle began), or
//!   `retrying` when it was nacked since its last delivery or has been idle for the
//!   visibility timeout;
//! - not pending, after the group's last delivered id (or no group yet) → `waiting`;
//! - not pending, at or before it → `dead` when a `dead_lettered` record names the
//!   agent, `retried` when a `retried` record follows that, else `done`.

use crate::store::keys;
use cortex_shared::lifecycle::{
    EntryRef, LifecycleEvent, LifecycleRecord, TaskAgentState, TaskState, TimelineItem,
};
use cortex_shared::{DeadLetter, EntryId, JsonObject};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub(crate) use crate::store::tasks::Pending;

/// One consumer group on the task's stream, as far as the task is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupOnStream {
    /// The group's name (`agent:pink`, `workers`, …).
    pub(crate) name: String,
    /// Its last delivered id.
    pub(crate) last_delivered: EntryId,
    /// The task's entry in its pending list, if it is there.
    pub(crate) pending: Option<Pending>,
}

/// Everything the rule looks at for one task entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    /// The entry's stream.
    pub(crate) stream: &'a str,
    /// The entry's id.
    pub(crate) entry_id: EntryId,
    /// The task's `to` (empty or `*`: every agent).
    pub(crate) to: &'a str,
    /// The groups on the entry's stream.
    pub(crate) groups: &'a [GroupOnStream],
    /// Every agent known (groups `agent:*` on any task stream, recent heartbeats):
    /// those a task for every agent is listed for.
    pub(crate) known_agents: &'a BTreeSet<String>,
    /// The task's lifecycle records (of every entry with its id), oldest first.
    pub(crate) records: &'a [LifecycleRecord],
    /// The dead letters the records name, by DLQ id (those still in the DLQ).
    pub(crate) letters: &'a HashMap<String, DeadLetter>,
    /// Now, unix milliseconds.
    pub(crate) now_ms: u64,
    /// The visibility timeout: a task pending this long is due again.
    pub(crate) visibility_ms: u64,
}

/// Whether a task with this `to` is for every agent.
pub(crate) fn for_every_agent(to: &str) -> bool {
    to.is_empty() || to == cortex_shared::ALL_AGENTS
}

fn detail_str<'r>(record: &'r LifecycleRecord, key: &str) -> Option<&'r str> {
    record.detail.get(key).and_then(|v| v.as_str())
}

fn detail_u64(record: &LifecycleRecord, key: &str) -> Option<u64> {
    record.detail.get(key).and_then(|v| v.as_u64())
}

/// Whether `record` is of the entry `stream` / `entry_id`.
fn of_entry(record: &LifecycleRecord, stream: &str, entry_id: EntryId) -> bool {
    record.stream == stream && record.entry_id.parse::<EntryId>().ok() == Some(entry_id)
}

impl Facts<'_> {
    /// The task's state for every agent it is addressed to (by name), then for every
    /// group on its stream that is not an agent's (by name, with `group` set).
    pub(crate) fn agent_states(&self) -> Vec<TaskAgentState> {
        let mut agent_groups: BTreeMap<&str, &GroupOnStream> = BTreeMap::new();
        let mut other_groups: Vec<&GroupOnStream> = Vec::new();
        for group in self.groups {
            match keys::agent_of_group(&group.name) {
                Some(agent) => {
                    agent_groups.insert(agent, group);
                }
                None => other_groups.push(group),
            }
        }
        let agents: BTreeSet<&str> = if for_every_agent(self.to) {
            self.known_agents
                .iter()
                .map(String::as_str)
                .chain(agent_groups.keys().copied())
                .collect()
        } else {
            BTreeSet::from([self.to])
        };
        other_groups.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<TaskAgentState> = agents
            .into_iter()
            .map(|agent| self.state_of(agent, agent_groups.get(agent).copied(), false))
            .collect();
        out.extend(
            other_groups
                .into_iter()
                .map(|g| self.state_of(&g.name, Some(g), true)),
        );
        out
    }

    /// The task's state for `agent` (whose group is `group`, if it exists; `named`:
    /// a group that is not an agent's, shown by its name).
    pub(crate) fn state_of(
        &self,
        agent: &str,
        group: Option<&GroupOnStream>,
        named: bool,
    ) -> TaskAgentState {
        let mine: Vec<&LifecycleRecord> = self
            .records
            .iter()
            .filter(|r| r.agent.as_deref() == Some(agent))
            .filter(|r| of_entry(r, self.stream, self.entry_id))
            .collect();
        let last_error = mine.iter().rev().find_map(|r| match r.event {
            LifecycleEvent::Nacked | LifecycleEvent::DeadLettered => {
                detail_str(r, "error").map(str::to_owned)
            }
            _ => None,
        });
        let recorded_deliveries = mine
            .iter()
            .filter(|r| r.event == LifecycleEvent::Delivered)
            .filter_map(|r| detail_u64(r, "delivery"))
            .max();
        let mut state = TaskAgentState {
            agent: agent.to_owned(),
            group: named.then(|| agent.to_owned()),
            state: TaskState::Waiting,
            consumer: None,
            deliveries: 0,
            since_ms: Some(self.entry_id.ms),
            dlq_id: None,
            last_error,
            retried_as: None,
        };
        let Some(group) = group else {
            // The agent has not read this stream yet: everything on it is waiting.
            return state;
        };
        if let Some(pending) = &group.pending {
            let last_turn = mine.iter().rev().find(|r| {
                matches!(
                    r.event,
                    LifecycleEvent::Delivered | LifecycleEvent::Reclaimed | LifecycleEvent::Nacked
                )
            });
            let nacked = last_turn.filter(|r| r.event == LifecycleEvent::Nacked);
            let idle_since = self.now_ms.saturating_sub(pending.idle_ms);
            state.consumer = Some(pending.consumer.clone());
            state.deliveries = pending.deliveries;
            if let Some(nack) = nacked {
                state.state = TaskState::Retrying;
                state.since_ms = Some(nack.at_ms);
            } else if pending.idle_ms >= self.visibility_ms {
                state.state = TaskState::Retrying;
                state.since_ms = Some(idle_since.saturating_add(self.visibility_ms));
            } else {
                state.state = TaskState::InProgress;
                state.since_ms = Some(idle_since);
            }
            return state;
        }
        if self.entry_id > group.last_delivered {
            return state;
        }
        // Delivered and no longer pending: acked, or acked with its letter written.
        state.deliveries = recorded_deliveries.unwrap_or(1);
        let dead = mine
            .iter()
            .rev()
            .find(|r| r.event == LifecycleEvent::DeadLettered);
        let Some(dead) = dead else {
            state.state = TaskState::Done;
            state.since_ms = mine
                .iter()
                .rev()
                .find(|r| r.event == LifecycleEvent::Acked)
                .map(|r| r.at_ms);
            return state;
        };
        let dlq_id = detail_str(dead, "dlq_id");
        state.state = TaskState::Dead;
        state.since_ms = Some(dead.at_ms);
        state.dlq_id = dlq_id.map(str::to_owned);
        if let Some(letter) = dlq_id.and_then(|id| self.letters.get(id)) {
            state.deliveries = state.deliveries.max(u64::from(letter.retry_count));
            if !letter.error.is_empty() {
                state.last_error = Some(letter.error.clone());
            }
        }
        // Its retry: a `retried` record of the same letter, or (when either does not
        // name one) of the same agent, written after it.
        let retried = self.records.iter().rev().find(|r| {
            r.event == LifecycleEvent::Retried
                && r.at_ms >= dead.at_ms
                && match (dlq_id, detail_str(r, "dlq_id")) {
                    (Some(dead), Some(retried)) => dead == retried,
                    _ => r.agent.as_deref() == Some(agent),
                }
        });
        if let Some(retried) = retried {
            state.state = TaskState::Retried;
            state.since_ms = Some(retried.at_ms);
            state.retried_as = retried_as(retried);
        }
        state
    }
}

/// The new entry a `retried` record names.
pub(crate) fn retried_as(record: &LifecycleRecord) -> Option<EntryRef> {
    Some(EntryRef {
        stream: detail_str(record, "stream")?.to_owned(),
        entry_id: detail_str(record, "entry_id")?.to_owned(),
    })
}

/// Every entry the records name: their own, and the new entries of retries.
pub(crate) fn entries_named(records: &[LifecycleRecord]) -> Vec<(String, EntryId)> {
    let mut out: Vec<(String, EntryId)> = Vec::new();
    let mut add = |stream: &str, id: &str| {
        if let Ok(id) = id.parse::<EntryId>() {
            if !out.iter().any(|(s, i)| s == stream && *i == id) {
                out.push((stream.to_owned(), id));
            }
        }
    };
    for record in records {
        add(&record.stream, &record.entry_id);
        if record.event == LifecycleEvent::Retried {
            if let Some(new) = retried_as(record) {
                add(&new.stream, &new.entry_id);
            }
        }
    }
    out
}

/// The DLQ ids the records name (`dead_lettered`, `retried`, `deleted`).
pub(crate) fn letters_named(records: &[LifecycleRecord]) -> Vec<EntryId> {
    let mut out: Vec<EntryId> = records
        .iter()
        .filter(|r| r.event == LifecycleEvent::DeadLettered)
        .filter_map(|r| detail_str(r, "dlq_id")?.parse().ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A task's timeline: its records, and for each of `entries` (those of the task
/// still in their streams) without a `published` record, a `published` item at the
/// entry id's time (`detail.from_entry_id: true`); oldest first.
pub(crate) fn timeline(
    records: &[LifecycleRecord],
    entries: &[(String, EntryId)],
) -> Vec<TimelineItem> {
    let mut items: Vec<TimelineItem> = Vec::with_capacity(records.len() + entries.len());
    for (stream, id) in entries {
        let recorded = records
            .iter()
            .any(|r| r.event == LifecycleEvent::Published && of_entry(r, stream, *id));
        if !recorded {
            let mut detail = JsonObject::new();
            detail.insert("from_entry_id".into(), true.into());
            detail.insert("stream".into(), stream.clone().into());
            detail.insert("entry_id".into(), id.to_string().into());
            items.push(TimelineItem {
                at_ms: id.ms,
                event: LifecycleEvent::Published,
                agent: None,
                consumer: None,
                detail,
            });
        }
    }
    items.extend(records.iter().cloned().map(TimelineItem::from));
    // Stable: an entry's own `published` stays before records of the same
    // millisecond, and records of one millisecond keep their order.
    items.sort_by_key(|item| item.at_ms);
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const STREAM: &str = "cortex:tasks:high";
    const ENTRY: EntryId = EntryId { ms: 1_000, seq: 0 };
    const NOW: u64 = 100_000;
    const VISIBILITY: u64 = 30_000;

    fn record(
        event: LifecycleEvent,
        at_ms: u64,
        agent: &str,
        detail: serde_json::Value,
    ) -> LifecycleRecord {
        LifecycleRecord {
            at_ms,
            event,
            task_id: "t-1".into(),
            stream: STREAM.into(),
            entry_id: ENTRY.to_string(),
            agent: (!agent.is_empty()).then(|| agent.to_owned()),
            consumer: (!agent.is_empty()).then(|| format!("{agent}-1")),
            detail: detail.as_object().cloned().unwrap_or_default(),
        }
    }

    fn group(name: &str, last: EntryId, pending: Option<(u64, u64)>) -> GroupOnStream {
        GroupOnStream {
            name: name.into(),
            last_delivered: last,
            pending: pending.map(|(idle_ms, deliveries)| Pending {
                consumer: format!("{}-1", name.trim_start_matches("agent:")),
                idle_ms,
                deliveries,
            }),
        }
    }

    struct Case {
        to: &'static str,
        groups: Vec<GroupOnStream>,
        known: BTreeSet<String>,
        records: Vec<LifecycleRecord>,
        letters: HashMap<String, DeadLetter>,
    }

    impl Case {
        fn new(to: &'static str, groups: Vec<GroupOnStream>) -> Self {
            Self {
                to,
                groups,
                known: BTreeSet::new(),
                records: Vec::new(),
                letters: HashMap::new(),
            }
        }

        fn records(mut self, records: Vec<LifecycleRecord>) -> Self {
            self.records = records;
            self
        }

        fn states(&self) -> Vec<TaskAgentState> {
            Facts {
                stream: STREAM,
                entry_id: ENTRY,
                to: self.to,
                groups: &self.groups,
                known_agents: &self.known,
                records: &self.records,
                letters: &self.letters,
                now_ms: NOW,
                visibility_ms: VISIBILITY,
            }
            .agent_states()
        }

        fn one(&self) -> TaskAgentState {
            let states = self.states();
            assert_eq!(states.len(), 1, "{states:?}");
            states.into_iter().next().unwrap()
        }
    }

    #[test]
    fn an_agent_without_a_group_is_waiting() {
        let s = Case::new("pink", vec![group("agent:blue", ENTRY, None)]).one();
        assert_eq!(s.agent, "pink");
        assert_eq!(s.state, TaskState::Waiting);
        assert_eq!(
            (s.deliveries, s.consumer, s.since_ms),
            (0, None, Some(ENTRY.ms))
        );
    }

    #[test]
    fn after_the_last_delivered_id_is_waiting_at_or_before_it_done() {
        let before = EntryId::new(999, 5);
        let s = Case::new("pink", vec![group("agent:pink", before, None)]).one();
        assert_eq!(s.state, TaskState::Waiting);
        let s = Case::new("pink", vec![group("agent:pink", ENTRY, None)]).one();
        assert_eq!(
            (s.state, s.deliveries, s.since_ms),
            (TaskState::Done, 1, None)
        );
        // With records: the ack's time and the deliveries they counted.
        let s = Case::new(
            "pink",
            vec![group("agent:pink", EntryId::new(5_000, 0), None)],
        )
        .records(vec![
            record(
                LifecycleEvent::Delivered,
                1_100,
                "pink",
                json!({"delivery":1}),
            ),
            record(
                LifecycleEvent::Nacked,
                1_200,
                "pink",
                json!({"error":"boom"}),
            ),
            record(
                LifecycleEvent::Delivered,
                1_300,
                "pink",
                json!({"delivery":2}),
            ),
            record(LifecycleEvent::Acked, 1_400, "pink", json!({"ms":100})),
        ])
        .one();
        assert_eq!(s.state, TaskState::Done);
        assert_eq!((s.deliveries, s.since_ms), (2, Some(1_400)));
        assert_eq!(s.last_error.as_deref(), Some("boom"));
    }

    #[test]
    fn pending_is_in_progress_with_its_consumer_since_idle_began() {
        let s = Case::new("pink", vec![group("agent:pink", ENTRY, Some((4_000, 2)))]).one();
        assert_eq!(s.state, TaskState::InProgress);
        assert_eq!(s.consumer.as_deref(), Some("pink-1"));
        assert_eq!((s.deliveries, s.since_ms), (2, Some(NOW - 4_000)));
        assert_eq!((s.dlq_id, s.last_error), (None, None));
    }

    #[test]
    fn pending_past_the_visibility_timeout_is_retrying() {
        let s = Case::new(
            "pink",
            vec![group("agent:pink", ENTRY, Some((VISIBILITY, 1)))],
        )
        .one();
        assert_eq!(s.state, TaskState::Retrying);
        assert_eq!(s.since_ms, Some(NOW));
        let s = Case::new(
            "pink",
            vec![group("agent:pink", ENTRY, Some((VISIBILITY - 1, 1)))],
        )
        .one();
        assert_eq!(s.state, TaskState::InProgress);
    }

    #[test]
    fn nacked_since_its_last_delivery_is_retrying_and_redelivered_in_progress() {
        let nacked = vec![
            record(
                LifecycleEvent::Delivered,
                1_100,
                "pink",
                json!({"delivery":1}),
            ),
            record(
                LifecycleEvent::Nacked,
                1_200,
                "pink",
                json!({"error":"timeout"}),
            ),
        ];
        let s = Case::new("pink", vec![group("agent:pink", ENTRY, Some((10, 1)))])
            .records(nacked.clone())
            .one();
        assert_eq!(s.state, TaskState::Retrying);
        assert_eq!(s.since_ms, Some(1_200));
        assert_eq!(s.last_error.as_deref(), Some("timeout"));
        let mut again = nacked;
        again.push(record(
            LifecycleEvent::Reclaimed,
            1_300,
            "pink",
            json!({"from":"pink-2"}),
        ));
        let s = Case::new("pink", vec![group("agent:pink", ENTRY, Some((10, 2)))])
            .records(again)
            .one();
        assert_eq!(s.state, TaskState::InProgress);
        assert_eq!(
            s.last_error.as_deref(),
            Some("timeout"),
            "the last attempt's error"
        );
        // Another agent's nack, or one of another entry, is not pink's.
        let blue = record(LifecycleEvent::Nacked, 1_200, "blue", json!({"error":"x"}));
        let mut other = record(LifecycleEvent::Nacked, 1_200, "pink", json!({"error":"y"}));
        other.entry_id = "2000-0".into();
        let s = Case::new("pink", vec![group("agent:pink", ENTRY, Some((10, 1)))])
            .records(vec![blue, other])
            .one();
        assert_eq!((s.state, s.last_error), (TaskState::InProgress, None));
    }

    fn letter(error: &str, retry_count: u32) -> DeadLetter {
        let fields = [
            ("original_id", "t-1"),
            ("original_from", "harold"),
            ("original_to", "pink"),
            ("original_priority", "high"),
            ("original_type", "coding"),
            ("original_payload", "{}"),
            ("original_created", "1"),
            ("error", error),
            ("dead_at", "1"),
        ];
        let count = retry_count.to_string();
        DeadLetter::from_fields(fields.into_iter().chain([("retry_count", count.as_str())]))
            .unwrap()
    }

    #[test]
    fn dead_lettered_is_dead_with_its_letter_and_its_error() {
        let mut case = Case::new("pink", vec![group("agent:pink", ENTRY, None)]).records(vec![
            record(
                LifecycleEvent::Delivered,
                1_100,
                "pink",
                json!({"delivery":3}),
            ),
            record(
                LifecycleEvent::DeadLettered,
                1_200,
                "pink",
                json!({"dlq_id":"1200-0","error":"record's error"}),
            ),
        ]);
        let s = case.one();
        assert_eq!(s.state, TaskState::Dead);
        assert_eq!(s.dlq_id.as_deref(), Some("1200-0"));
        assert_eq!(s.last_error.as_deref(), Some("record's error"));
        assert_eq!((s.since_ms, s.deliveries), (Some(1_200), 3));
        // The letter's own error, and its count, when the letter is there.
        case.letters
            .insert("1200-0".into(), letter("letter's error", 4));
        let s = case.one();
        assert_eq!(s.last_error.as_deref(), Some("letter's error"));
        assert_eq!(s.deliveries, 4);
        // Deleted later: still dead.
        case.records.push(record(
            LifecycleEvent::Deleted,
            1_300,
            "pink",
            json!({"dlq_id":"1200-0"}),
        ));
        assert_eq!(case.one().state, TaskState::Dead);
    }

    #[test]
    fn retried_after_dead_names_the_new_entry() {
        let mut retried = record(
            LifecycleEvent::Retried,
            1_300,
            "",
            json!({"dlq_id":"1200-0","stream":"cortex:tasks:low","entry_id":"1300-0"}),
        );
        let case = Case::new("pink", vec![group("agent:pink", ENTRY, None)]).records(vec![
            record(
                LifecycleEvent::DeadLettered,
                1_200,
                "pink",
                json!({"dlq_id":"1200-0","error":"e"}),
            ),
            retried.clone(),
        ]);
        let s = case.one();
        assert_eq!(s.state, TaskState::Retried);
        assert_eq!(
            (s.dlq_id.as_deref(), s.since_ms),
            (Some("1200-0"), Some(1_300))
        );
        assert_eq!(
            s.retried_as,
            Some(EntryRef {
                stream: "cortex:tasks:low".into(),
                entry_id: "1300-0".into()
            })
        );
        // A retry of another letter is not this one's.
        retried.detail.insert("dlq_id".into(), "9-0".into());
        let case = Case::new("pink", vec![group("agent:pink", ENTRY, None)]).records(vec![
            record(
                LifecycleEvent::DeadLettered,
                1_200,
                "pink",
                json!({"dlq_id":"1200-0"}),
            ),
            retried,
        ]);
        assert_eq!(case.one().state, TaskState::Dead);
        // A retry before the death (an earlier life) does not count either.
        let case = Case::new("pink", vec![group("agent:pink", ENTRY, None)]).records(vec![
            record(LifecycleEvent::Retried, 1_100, "pink", json!({})),
            record(LifecycleEvent::DeadLettered, 1_200, "pink", json!({})),
        ]);
        assert_eq!(case.one().state, TaskState::Dead);
    }

    #[test]
    fn a_task_for_every_agent_lists_every_agent_known_and_other_groups_by_name() {
        let mut case = Case::new(
            "",
            vec![
                group("agent:pink", ENTRY, Some((10, 1))),
                group("workers", ENTRY, None),
                group("agent:blue", EntryId::new(5, 0), None),
                group("agents", EntryId::ZERO, None),
            ],
        );
        case.known = ["green".to_owned(), "pink".to_owned()].into();
        let states = case.states();
        let got: Vec<(&str, Option<&str>, TaskState)> = states
            .iter()
            .map(|s| (s.agent.as_str(), s.group.as_deref(), s.state))
            .collect();
        assert_eq!(
            got,
            [
                ("blue", None, TaskState::Waiting),
                ("green", None, TaskState::Waiting),
                ("pink", None, TaskState::InProgress),
                ("agents", Some("agents"), TaskState::Waiting),
                ("workers", Some("workers"), TaskState::Done),
            ]
        );
        // `*` is every agent too; a task for pink lists pink and the other groups only.
        case.to = "*";
        assert_eq!(case.states().len(), 5);
        case.to = "pink";
        let names: Vec<String> = case.states().into_iter().map(|s| s.agent).collect();
        assert_eq!(names, ["pink", "agents", "workers"]);
    }

    #[test]
    fn records_name_their_entries_letters_and_retries() {
        let records = vec![
            record(
                LifecycleEvent::DeadLettered,
                1_200,
                "pink",
                json!({"dlq_id":"1200-0"}),
            ),
            record(
                LifecycleEvent::DeadLettered,
                1_201,
                "blue",
                json!({"dlq_id":"bad"}),
            ),
            record(
                LifecycleEvent::Retried,
                1_300,
                "pink",
                json!({"dlq_id":"1200-0","stream":"cortex:tasks:low","entry_id":"1300-0"}),
            ),
        ];
        assert_eq!(
            entries_named(&records),
            [
                (STREAM.to_owned(), ENTRY),
                ("cortex:tasks:low".to_owned(), EntryId::new(1_300, 0))
            ]
        );
        assert_eq!(letters_named(&records), [EntryId::new(1_200, 0)]);
    }

    #[test]
    fn the_timeline_is_oldest_first_with_a_published_item_from_the_entry_id() {
        let records = vec![
            record(LifecycleEvent::Acked, 1_400, "pink", json!({"ms":300})),
            record(
                LifecycleEvent::Delivered,
                1_000,
                "pink",
                json!({"delivery":1}),
            ),
        ];
        let items = timeline(&records, &[(STREAM.to_owned(), ENTRY)]);
        let events: Vec<LifecycleEvent> = items.iter().map(|i| i.event).collect();
        assert_eq!(
            events,
            [
                LifecycleEvent::Published,
                LifecycleEvent::Delivered,
                LifecycleEvent::Acked
            ]
        );
        assert_eq!(items[0].at_ms, ENTRY.ms);
        assert_eq!(items[0].detail["from_entry_id"], json!(true));
        assert_eq!(items[0].detail["entry_id"], json!("1000-0"));
        // A `published` record: no item made up.
        let mut with_published = records.clone();
        with_published.push(record(LifecycleEvent::Published, 990, "", json!({})));
        let items = timeline(&with_published, &[(STREAM.to_owned(), ENTRY)]);
        assert_eq!(items.len(), 3);
        assert_eq!(
            (items[0].event, items[0].at_ms),
            (LifecycleEvent::Published, 990)
        );
        assert!(items[0].detail.is_empty());
        // Two entries (a retry republished it): one made-up item for each.
        let items = timeline(
            &records,
            &[
                (STREAM.to_owned(), ENTRY),
                ("cortex:tasks:low".into(), EntryId::new(1_500, 0)),
            ],
        );
        assert_eq!(items.len(), 4);
        assert_eq!(items[3].event, LifecycleEvent::Published);
        assert_eq!(items[3].at_ms, 1_500);
    }
}
