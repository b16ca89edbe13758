//! The tasks of a time range, read with the HTTP API when the URL names one.

use crate::format::pretty_json;
use crate::route::Route;
use crate::services::{self, streams};
use crate::state::{FeedRow, TaskRow};
use cortex_shared::{EntryId, Priority};
use std::collections::VecDeque;
use std::rc::Rc;
use yew::prelude::*;

/// Rows the history shows at most (the newest of the range).
pub const HISTORY_ROWS: usize = 1000;

/// Pages of [`streams::PAGE`] entries read per stream at most.
const MAX_PAGES: usize = 5;

/// Where the history is.
#[derive(Debug, Clone, PartialEq)]
pub enum History {
    /// The URL names no range: the live feed.
    Off,
    /// Reading.
    Loading,
    /// Read.
    Loaded {
        /// The picked agents' tasks in the range, newest first, at most
        /// [`HISTORY_ROWS`].
        rows: Rc<VecDeque<FeedRow>>,
        /// Tasks in the range for the picked agents (may exceed the rows shown).
        matched: usize,
        /// Some stream holds more in the range than was read.
        truncated: bool,
    },
    /// A read failed.
    Failed(String),
}

/// Orders rows newest first (by entry id time, then stream) and keeps [`HISTORY_ROWS`].
fn newest_first(mut rows: Vec<TaskRow>) -> VecDeque<FeedRow> {
    let id = |row: &TaskRow| row.entry_id.parse::<EntryId>().unwrap_or(EntryId::ZERO);
    rows.sort_by(|a, b| id(b).cmp(&id(a)).then_with(|| a.stream.cmp(&b.stream)));
    rows.into_iter()
        .take(HISTORY_ROWS)
        .map(|row| FeedRow::Task(Rc::new(row)))
        .collect()
}

/// Reads the four task streams in the route's range (`from`, `to`) and keeps the picked
/// agents' tasks; again whenever the range or the agents change.
#[hook]
pub fn use_history(route: &Route) -> History {
    let history = use_state(|| History::Off);
    let key = (route.history_range(), route.agents.clone());
    {
        let history = history.clone();
        let route = route.clone();
        use_effect_with(key, move |(range, _)| {
            let alive = Rc::new(std::cell::Cell::new(true));
            match *range {
                None => history.set(History::Off),
                Some((since, until)) => {
                    history.set(History::Loading);
                    let alive = Rc::clone(&alive);
                    yew::platform::spawn_local(async move {
                        let reads = futures_util::future::join_all(
                            Priority::ALL
                                .into_iter()
                                .map(|p| streams::range(p.stream(), since, until, MAX_PAGES)),
                        )
                        .await;
                        if !alive.get() {
                            return;
                        }
                        history.set(collect(&route, reads));
                    });
                }
            }
            move || alive.set(false)
        });
    }
    (*history).clone()
}

fn collect(route: &Route, reads: Vec<Result<streams::RangeRead, services::ApiError>>) -> History {
    let mut rows = Vec::new();
    let mut truncated = false;
    for (priority, read) in Priority::ALL.into_iter().zip(reads) {
        let read = match read {
            Ok(read) => read,
            Err(e) => return History::Failed(e.to_string()),
        };
        truncated |= read.truncated;
        rows.extend(read.entries.into_iter().filter_map(|entry| {
            let task = entry.task?;
            route.picks_task_for(&task.to).then(|| TaskRow {
                payload: pretty_json(&task.payload),
                task,
                stream: priority.stream().to_owned(),
                entry_id: entry.entry_id,
            })
        }));
    }
    let matched = rows.len();
    History::Loaded {
        rows: Rc::new(newest_first(rows)),
        matched,
        truncated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::TaskMessage;

    fn row(stream: &str, entry_id: &str) -> TaskRow {
        let task: TaskMessage = serde_json::from_value(serde_json::json!({
            "id": entry_id, "from": "harold", "to": "pink", "priority": "high",
            "type": "coding", "payload": {}, "created": 1
        }))
        .unwrap();
        TaskRow {
            task,
            stream: stream.into(),
            entry_id: entry_id.into(),
            payload: "{}".into(),
        }
    }

    #[test]
    fn orders_newest_first_across_streams() {
        let rows = newest_first(vec![
            row("cortex:tasks:low", "5-0"),
            row("cortex:tasks:high", "10-0"),
            row("cortex:tasks:high", "9-1"),
            row("cortex:tasks:critical", "9-1"),
        ]);
        let keys: Vec<String> = rows.iter().map(FeedRow::key).collect();
        assert_eq!(
            keys,
            [
                "task/cortex:tasks:high/10-0",
                "task/cortex:tasks:critical/9-1",
                "task/cortex:tasks:high/9-1",
                "task/cortex:tasks:low/5-0",
            ]
        );
    }
}
