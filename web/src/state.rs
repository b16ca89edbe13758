//! The dashboard's state and the one reducer that changes it.

use crate::connection::ConnState;
use crate::format::pretty_json;
use cortex_shared::{ErrorCode, ServerFrame, SubscribeTarget, TaskMessage, HEARTBEAT_STREAM};
use std::collections::VecDeque;
use std::rc::Rc;
use yew::Reducible;

/// How many rows (tasks and gaps) the feed keeps; older ones fall off the end.
pub const MAX_TASKS: usize = 500;

/// A row of the feed: a task, or a note that entries were lost before they could be
/// shown.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedRow {
    /// A task.
    Task(Rc<TaskRow>),
    /// Entries of a stream trimmed from Redis (or too many to replay) while the
    /// dashboard was away.
    Gap(Rc<GapRow>),
}

impl FeedRow {
    /// The task, if this row is one.
    pub fn task(&self) -> Option<&TaskRow> {
        match self {
            FeedRow::Task(row) => Some(row),
            FeedRow::Gap(_) => None,
        }
    }

    /// A key unique within the feed.
    pub fn key(&self) -> String {
        match self {
            FeedRow::Task(row) => format!("task/{}/{}", row.stream, row.entry_id),
            FeedRow::Gap(gap) => format!("gap/{}/{}", gap.stream, gap.after),
        }
    }
}

/// Entries of `stream` after `after` that were removed before they could be shown;
/// what follows starts at `resumed_from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapRow {
    /// The stream, e.g. `cortex:tasks:high`.
    pub stream: String,
    /// The last entry shown before the gap.
    pub after: String,
    /// The oldest entry still there after it.
    pub resumed_from: String,
}

/// A task in the feed, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// The task.
    pub task: TaskMessage,
    /// The stream it was read from, e.g. `cortex:tasks:high`.
    pub stream: String,
    /// Its entry id in that stream.
    pub entry_id: String,
    /// The payload, indented (computed once, not at every render).
    pub payload: String,
}

/// The latest heartbeat of the watched agent.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatView {
    /// The agent that sent it.
    pub agent: String,
    /// When, unix seconds.
    pub time: i64,
    /// Its status, indented.
    pub status: String,
}

/// An `error` frame from the relay.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayError {
    /// Its stable code.
    pub code: ErrorCode,
    /// Its explanation.
    pub message: String,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DashboardState {
    /// Changes with every change of the state: a cheap equality for contexts and props.
    pub revision: u64,
    /// Where the connection to the relay is.
    pub connection: ConnState,
    /// What the operator asked to watch.
    pub target: Option<SubscribeTarget>,
    /// The agent the relay confirmed (`subscribed`) on the current connection.
    pub watching: Option<String>,
    /// Tasks for the target and gaps, newest first, at most [`MAX_TASKS`]. Rows never
    /// change once made, and the list is replaced (not edited in place) when it
    /// changes, so pointer equality is equality. No task appears twice (by stream and
    /// entry id), nor a gap (by stream and the entry it follows).
    pub tasks: Rc<VecDeque<FeedRow>>,
    /// The target's latest heartbeat.
    pub heartbeat: Option<Rc<HeartbeatView>>,
    /// The relay's last error frame, until dismissed.
    pub error: Option<RelayError>,
}

/// Everything that changes the dashboard's state.
// Actions are moved once, into the reducer; boxing the frame would only add an
// allocation per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The connection changed state.
    Connection(ConnState),
    /// A frame arrived from the relay.
    Frame(ServerFrame),
    /// The operator chose what to watch.
    Watch(SubscribeTarget),
    /// The operator dismissed the error banner.
    DismissError,
}

impl Reducible for DashboardState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = Rc::unwrap_or_clone(self);
        if next.apply(action) {
            next.revision += 1;
        }
        Rc::new(next)
    }
}

impl DashboardState {
    /// Applies `action`; whether anything changed.
    fn apply(&mut self, action: Action) -> bool {
        match action {
            Action::Connection(state) => {
                if state != ConnState::Connected {
                    // Confirmations belong to a connection; the next one confirms anew.
                    self.watching = None;
                }
                self.connection = state;
            }
            Action::Watch(target) => {
                if self.target.as_ref() == Some(&target) {
                    return false;
                }
                self.target = Some(target);
                self.watching = None;
                self.tasks = Rc::default();
                self.heartbeat = None;
            }
            Action::DismissError => self.error = None,
            Action::Frame(frame) => return self.apply_frame(frame),
        }
        true
    }

    fn apply_frame(&mut self, frame: ServerFrame) -> bool {
        match frame {
            ServerFrame::Subscribed { agent, .. } if self.target_is(&agent) => {
                self.watching = Some(agent);
            }
            ServerFrame::Unsubscribed { agent } => {
                let ours = self
                    .watching
                    .as_deref()
                    .is_some_and(|w| w == agent || agent == cortex_shared::ALL_AGENTS);
                if !ours {
                    return false;
                }
                self.watching = None;
            }
            ServerFrame::Task {
                data,
                stream,
                entry_id,
                ..
            } => {
                let visible = self
                    .target
                    .as_ref()
                    .is_some_and(|t| t.sees_task_for(&data.to));
                let seen = self.tasks.iter().any(|row| {
                    row.task()
                        .is_some_and(|row| row.entry_id == entry_id && row.stream == stream)
                });
                if !visible || seen {
                    return false;
                }
                let payload = pretty_json(&data.payload);
                self.push_row(FeedRow::Task(Rc::new(TaskRow {
                    task: data,
                    stream,
                    entry_id,
                    payload,
                })));
            }
            ServerFrame::Gap {
                stream,
                after,
                resumed_from,
            } => {
                // The same gap comes again if the dashboard reconnects before anything
                // newer arrives on that stream.
                let seen = self.tasks.iter().any(|row| {
                    matches!(row, FeedRow::Gap(gap) if gap.stream == stream && gap.after == after)
                });
                // Only the latest heartbeat is shown, so missing older ones hides nothing.
                if self.target.is_none() || seen || stream == HEARTBEAT_STREAM {
                    return false;
                }
                self.push_row(FeedRow::Gap(Rc::new(GapRow {
                    stream,
                    after,
                    resumed_from,
                })));
            }
            ServerFrame::Heartbeat {
                agent,
                status,
                time,
                ..
            } => {
                if !self
                    .target
                    .as_ref()
                    .is_some_and(|t| t.sees_heartbeat_of(&agent))
                {
                    return false;
                }
                self.heartbeat = Some(Rc::new(HeartbeatView {
                    agent,
                    time,
                    status: pretty_json(&status),
                }));
            }
            ServerFrame::Error { code, message } => {
                self.error = Some(RelayError { code, message });
            }
            // Replies the dashboard does not show (pong, acks, and frame types added to
            // the protocol since this was written).
            _ => return false,
        }
        true
    }

    fn push_row(&mut self, row: FeedRow) {
        let rows = Rc::make_mut(&mut self.tasks);
        rows.push_front(row);
        rows.truncate(MAX_TASKS);
    }

    fn target_is(&self, agent: &str) -> bool {
        self.target.as_ref().is_some_and(|t| t.as_str() == agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::Priority;
    use serde_json::json;

    fn reduce(state: DashboardState, actions: impl IntoIterator<Item = Action>) -> DashboardState {
        let mut state = Rc::new(state);
        for action in actions {
            state = state.reduce(action);
        }
        Rc::unwrap_or_clone(state)
    }

    fn watch(agent: &str) -> Action {
        Action::Watch(SubscribeTarget::parse(agent).unwrap())
    }

    fn subscribed(agent: &str) -> Action {
        Action::Frame(ServerFrame::Subscribed {
            agent: agent.into(),
            status: "ok".into(),
            mode: cortex_shared::SubscribeMode::Watch,
            consumer: None,
        })
    }

    fn task(id: &str, to: &str, entry_id: &str) -> Action {
        Action::Frame(ServerFrame::Task {
            data: TaskMessage {
                id: id.into(),
                from: "harold".into(),
                to: to.into(),
                priority: Priority::High,
                task_type: "coding".into(),
                payload: json!({"a": 1}).as_object().unwrap().clone(),
                created: 1_704_556_800,
            },
            stream: "cortex:tasks:high".into(),
            entry_id: entry_id.into(),
            delivery_count: None,
        })
    }

    fn heartbeat(agent: &str, time: i64) -> Action {
        Action::Frame(ServerFrame::Heartbeat {
            agent: agent.into(),
            status: json!({"state": "idle"}).as_object().unwrap().clone(),
            time,
            entry_id: format!("{time}000-0"),
        })
    }

    fn ids(state: &DashboardState) -> Vec<&str> {
        state
            .tasks
            .iter()
            .map(|r| match r {
                FeedRow::Task(row) => row.task.id.as_str(),
                FeedRow::Gap(_) => "gap",
            })
            .collect()
    }

    fn gap(stream: &str, after: &str, resumed_from: &str) -> Action {
        Action::Frame(ServerFrame::Gap {
            stream: stream.into(),
            after: after.into(),
            resumed_from: resumed_from.into(),
        })
    }

    #[test]
    fn watching_is_confirmed_by_the_relay_and_lost_with_the_connection() {
        let state = reduce(
            DashboardState::default(),
            [Action::Connection(ConnState::Connected), watch("pink")],
        );
        assert_eq!(state.watching, None);
        let state = reduce(state, [subscribed("harold")]);
        assert_eq!(state.watching, None, "not what was asked for");
        let state = reduce(state, [subscribed("pink")]);
        assert_eq!(state.watching.as_deref(), Some("pink"));
        let state = reduce(state, [Action::Connection(ConnState::Reconnecting)]);
        assert_eq!(state.watching, None);
        let state = reduce(
            state,
            [Action::Connection(ConnState::Connected), subscribed("pink")],
        );
        assert_eq!(state.watching.as_deref(), Some("pink"));
    }

    #[test]
    fn tasks_are_newest_first_deduplicated_filtered_and_capped() {
        let state = reduce(
            DashboardState::default(),
            [
                task("early", "pink", "1-0"),
                watch("pink"),
                task("t1", "pink", "2-0"),
                task("t2", "", "3-0"),
                task("other", "harold", "4-0"),
                task("t1-again", "pink", "2-0"),
            ],
        );
        assert_eq!(ids(&state), ["t2", "t1"]);
        assert_eq!(state.tasks[0].task().unwrap().payload, "{\n  \"a\": 1\n}");

        let many =
            (0..MAX_TASKS + 10).map(|i| task(&format!("n{i}"), "pink", &format!("{}-0", 10 + i)));
        let state = reduce(state, many);
        assert_eq!(state.tasks.len(), MAX_TASKS);
        assert_eq!(ids(&state)[0], format!("n{}", MAX_TASKS + 9));

        let state = reduce(state, [watch("harold")]);
        assert!(state.tasks.is_empty());
        let state = reduce(state, [watch("*"), task("other", "harold", "4-0")]);
        assert_eq!(ids(&state), ["other"]);
    }

    #[test]
    fn heartbeats_of_the_target_only() {
        let state = reduce(
            DashboardState::default(),
            [watch("pink"), heartbeat("harold", 5), heartbeat("pink", 7)],
        );
        let hb = state.heartbeat.as_ref().unwrap();
        assert_eq!((hb.agent.as_str(), hb.time), ("pink", 7));
        assert!(hb.status.contains("\"state\": \"idle\""));
    }

    #[test]
    fn errors_show_until_dismissed() {
        let state = reduce(
            DashboardState::default(),
            [Action::Frame(ServerFrame::error(
                ErrorCode::InvalidAgent,
                "bad name",
            ))],
        );
        assert_eq!(state.error.as_ref().unwrap().code, ErrorCode::InvalidAgent);
        let state = reduce(state, [Action::DismissError]);
        assert_eq!(state.error, None);
    }

    #[test]
    fn the_revision_moves_only_on_change() {
        let state = reduce(DashboardState::default(), [watch("pink")]);
        let revision = state.revision;
        let state = reduce(
            state,
            [
                watch("pink"),
                Action::Frame(ServerFrame::Pong),
                task("x", "harold", "1-0"),
            ],
        );
        assert_eq!(state.revision, revision);
        let state = reduce(state, [task("y", "pink", "2-0")]);
        assert_eq!(state.revision, revision + 1);
    }

    #[test]
    fn gaps_show_once_in_the_feed_and_other_frames_change_nothing() {
        let state = reduce(
            DashboardState::default(),
            [
                gap("cortex:tasks:high", "1-0", "5-0"),
                watch("pink"),
                task("t1", "pink", "1-0"),
                gap("cortex:tasks:high", "1-0", "5-0"),
                gap(HEARTBEAT_STREAM, "1-0", "5-0"),
                task("t5", "pink", "5-0"),
                // After a second reconnection with nothing newer: the same gap again.
                gap("cortex:tasks:high", "1-0", "5-0"),
                task("t5", "pink", "5-0"),
            ],
        );
        assert_eq!(ids(&state), ["t5", "gap", "t1"]);
        match &state.tasks[1] {
            FeedRow::Gap(gap) => assert_eq!(
                (
                    gap.stream.as_str(),
                    gap.after.as_str(),
                    gap.resumed_from.as_str()
                ),
                ("cortex:tasks:high", "1-0", "5-0")
            ),
            other => panic!("{other:?}"),
        }
        let revision = state.revision;
        let state = reduce(
            state,
            [
                Action::Frame(ServerFrame::Unknown),
                Action::Frame(ServerFrame::Acked {
                    stream: "s".into(),
                    entry_id: "1-0".into(),
                }),
                Action::Frame(ServerFrame::Nacked {
                    stream: "s".into(),
                    entry_id: "1-0".into(),
                    dead_lettered: false,
                }),
            ],
        );
        assert_eq!(state.revision, revision);
    }
}
