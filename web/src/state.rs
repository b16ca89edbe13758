//! The dashboard's state and the one reducer that changes it.

use crate::connection::ConnState;
use crate::format::pretty_json;
use crate::live::{LifecycleFrame, LiveStates};
use cortex_shared::rest::{AgentInfo, AgentsReply, MessagingMetrics, Presence};
use cortex_shared::{
    ErrorCode, ServerFrame, SubscribeTarget, TaskMessage, DLQ_STREAM, HEARTBEAT_STREAM,
};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use yew::Reducible;

/// How many rows (tasks and gaps) the feed keeps; older ones fall off the end.
pub const MAX_TASKS: usize = 500;

/// How many throughput samples the chart keeps (one per metrics poll).
pub const MAX_SAMPLES: usize = 150;

/// Entries per second added to the task streams, between two metrics polls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThroughputSample {
    /// When (the relay's `at_ms`).
    pub at_ms: u64,
    /// Entries added per second since the previous poll.
    pub per_second: f64,
}

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
    /// The tasks' states per agent from `lifecycle` frames (bounded: see
    /// [`crate::live`]); replaced, not edited in place, when it changes.
    pub live: Rc<LiveStates>,
    /// The target's latest heartbeat.
    pub heartbeat: Option<Rc<HeartbeatView>>,
    /// The relay's last error frame, until dismissed.
    pub error: Option<RelayError>,
    /// Every known agent by name: `GET /api/v1/agents`, kept current by `presence`
    /// and `heartbeat` frames.
    pub agents: Rc<BTreeMap<String, AgentInfo>>,
    /// Whether `GET /api/v1/agents` answered at least once.
    pub agents_loaded: bool,
    /// Moves with every `dlq` frame: the DLQ view reloads when it changes.
    pub dlq_revision: u64,
    /// DLQ ids retried or deleted (from `dlq` frames) since the DLQ view last loaded.
    pub dlq_gone: Rc<Vec<String>>,
    /// The latest `GET /api/v1/messaging/metrics`.
    pub metrics: Option<Rc<MessagingMetrics>>,
    /// Task-stream throughput, oldest first, at most [`MAX_SAMPLES`].
    pub throughput: Rc<VecDeque<ThroughputSample>>,
    /// `/readyz`: Redis reachable (`Some(true)`), not (`Some(false)`), unknown (`None`).
    pub redis_ready: Option<bool>,
    /// While reconnecting: when the next attempt starts (unix ms, the page's clock).
    pub retry_at_ms: Option<u64>,
    /// The relay wants a (valid) token: why, as the dashboard says it. Set by a
    /// WebSocket closed with 4401 or an HTTP 401; the login form shows it.
    pub auth_required: Option<String>,
}

/// Entries ever added to the task streams, by the metrics (`entries_added`, or the
/// length on Redis before 7).
pub fn task_entries_added(metrics: &MessagingMetrics) -> u64 {
    metrics
        .streams
        .iter()
        .filter(|s| s.stream.starts_with("cortex:tasks:") && s.stream != DLQ_STREAM)
        .map(|s| s.entries_added.unwrap_or(s.length))
        .sum()
}

fn unknown_agent(name: &str) -> AgentInfo {
    AgentInfo {
        name: name.to_owned(),
        presence: Presence::Offline,
        last_heartbeat_ms: None,
        last_heartbeat_time: None,
        status: None,
        pending: 0,
        consumers: Vec::new(),
        consumer_alive: false,
        pending_on_dead_consumers: 0,
        stuck: false,
    }
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
    /// `GET /api/v1/agents` answered.
    Agents(AgentsReply),
    /// `GET /api/v1/messaging/metrics` answered.
    Metrics(MessagingMetrics),
    /// `/readyz` answered (or not: `None`).
    Ready(Option<bool>),
    /// The DLQ view loaded a page: the ids gone so far are in it no more.
    DlqLoaded,
    /// The connection waits until this time (unix ms) before its next attempt.
    Retrying(u64),
    /// The relay refused the token, or asked for one (why).
    AuthRequired(String),
    /// Several actions in order, applied as one change (one render for a burst of
    /// frames, such as a watch's history).
    Batch(Vec<Action>),
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
                if state != ConnState::Reconnecting {
                    self.retry_at_ms = None;
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
                self.live = Rc::default();
                self.heartbeat = None;
            }
            Action::DismissError => self.error = None,
            Action::Frame(frame) => return self.apply_frame(frame),
            Action::Batch(actions) => {
                let mut changed = false;
                for action in actions {
                    changed |= self.apply(action);
                }
                return changed;
            }
            Action::Agents(reply) => {
                self.agents = Rc::new(
                    reply
                        .agents
                        .into_iter()
                        .map(|a| (a.name.clone(), a))
                        .collect(),
                );
                self.agents_loaded = true;
            }
            Action::Metrics(metrics) => {
                if let Some(previous) = &self.metrics {
                    let dt = metrics.at_ms.saturating_sub(previous.at_ms);
                    if dt > 0 {
                        let added = task_entries_added(&metrics)
                            .saturating_sub(task_entries_added(previous));
                        let samples = Rc::make_mut(&mut self.throughput);
                        samples.push_back(ThroughputSample {
                            at_ms: metrics.at_ms,
                            per_second: added as f64 * 1000.0 / dt as f64,
                        });
                        while samples.len() > MAX_SAMPLES {
                            samples.pop_front();
                        }
                    }
                }
                self.metrics = Some(Rc::new(metrics));
            }
            Action::Ready(ready) => {
                if self.redis_ready == ready {
                    return false;
                }
                self.redis_ready = ready;
            }
            Action::DlqLoaded => {
                if self.dlq_gone.is_empty() {
                    return false;
                }
                self.dlq_gone = Rc::default();
            }
            Action::Retrying(at_ms) => {
                if self.connection != ConnState::Reconnecting {
                    return false;
                }
                self.retry_at_ms = Some(at_ms);
            }
            Action::AuthRequired(why) => {
                // The first reason stays: later 401s only repeat it.
                if self.auth_required.is_some() {
                    return false;
                }
                self.auth_required = Some(why);
            }
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
                let known = self.agents.contains_key(&agent);
                if known {
                    if let Some(info) = Rc::make_mut(&mut self.agents).get_mut(&agent) {
                        info.status = Some(status.clone());
                        info.last_heartbeat_time = Some(time);
                    }
                }
                if !self
                    .target
                    .as_ref()
                    .is_some_and(|t| t.sees_heartbeat_of(&agent))
                {
                    return known;
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
            ServerFrame::Presence {
                agent,
                presence,
                last_heartbeat_ms,
            } => {
                let agents = Rc::make_mut(&mut self.agents);
                let info = agents
                    .entry(agent.clone())
                    .or_insert_with(|| unknown_agent(&agent));
                info.presence = presence;
                if last_heartbeat_ms.is_some() {
                    info.last_heartbeat_ms = last_heartbeat_ms;
                }
            }
            ServerFrame::Lifecycle {
                stream,
                entry_id,
                agent,
                state,
                event,
                consumer,
                at_ms,
                detail,
                ..
            } => {
                if self.target.is_none() {
                    return false;
                }
                let frame = LifecycleFrame {
                    stream,
                    entry_id,
                    agent,
                    event,
                    state,
                    consumer,
                    at_ms,
                    detail,
                };
                // Checked before the copy-on-write, so that a repeat clones nothing.
                if self.live.is_repeat(&frame) {
                    return false;
                }
                Rc::make_mut(&mut self.live).apply(&frame);
            }
            ServerFrame::Dlq {
                action, dlq_ids, ..
            } => {
                self.dlq_revision += 1;
                if action != cortex_shared::rest::DlqAction::Added {
                    Rc::make_mut(&mut self.dlq_gone).extend(dlq_ids);
                }
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

    #[test]
    fn live_states_outlast_the_feed_twice() {
        assert_eq!(crate::live::MAX_LIVE_TASKS, 2 * MAX_TASKS);
    }
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
                parent_id: None,
                correlation_id: None,
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

#[cfg(test)]
mod lifecycle_tests {
    use super::*;
    use cortex_shared::lifecycle::LifecycleEvent;

    fn lifecycle(entry_id: &str, agent: &str, event: LifecycleEvent, at_ms: u64) -> Action {
        Action::Frame(ServerFrame::Lifecycle {
            task_id: "t1".into(),
            stream: "cortex:tasks:high".into(),
            entry_id: entry_id.into(),
            agent: Some(agent.into()),
            state: event.state_after(),
            event,
            consumer: Some(format!("{agent}-1")),
            at_ms,
            detail: Default::default(),
        })
    }

    fn reduce(state: DashboardState, actions: impl IntoIterator<Item = Action>) -> DashboardState {
        let mut state = Rc::new(state);
        for action in actions {
            state = state.reduce(action);
        }
        Rc::unwrap_or_clone(state)
    }

    #[test]
    fn lifecycle_frames_give_rows_their_states_once_and_a_new_watch_forgets_them() {
        let state = reduce(
            DashboardState::default(),
            [lifecycle("1-0", "pink", LifecycleEvent::Delivered, 1_000)],
        );
        assert!(state.live.is_empty(), "nothing watched");
        let state = reduce(
            state,
            [
                Action::Watch(SubscribeTarget::parse("*").unwrap()),
                lifecycle("1-0", "pink", LifecycleEvent::Delivered, 1_000),
                lifecycle("1-0", "pink", LifecycleEvent::Acked, 1_340),
            ],
        );
        let pink = &state.live.get("cortex:tasks:high", "1-0").unwrap()[0];
        assert_eq!(pink.text(0), "done in 340 ms");
        let revision = state.revision;
        let live = Rc::clone(&state.live);
        let state = reduce(
            state,
            [lifecycle("1-0", "pink", LifecycleEvent::Acked, 1_340)],
        );
        assert_eq!(state.revision, revision, "a repeat changes nothing");
        assert!(Rc::ptr_eq(&live, &state.live), "nor copies the states");
        let state = reduce(
            state,
            [Action::Watch(SubscribeTarget::parse("pink").unwrap())],
        );
        assert!(state.live.is_empty());
    }
}

#[cfg(test)]
mod live_tests {
    use super::*;
    use cortex_shared::rest::{DlqAction, MessagingMetrics, StreamMetrics};

    fn reduce(state: DashboardState, actions: impl IntoIterator<Item = Action>) -> DashboardState {
        let mut state = Rc::new(state);
        for action in actions {
            state = state.reduce(action);
        }
        Rc::unwrap_or_clone(state)
    }

    fn presence(agent: &str, presence: Presence) -> Action {
        Action::Frame(ServerFrame::Presence {
            agent: agent.into(),
            presence,
            last_heartbeat_ms: Some(5),
        })
    }

    #[test]
    fn presence_frames_update_or_add_agents() {
        let reply = AgentsReply {
            agents: vec![unknown_agent("pink")],
            stale_after_ms: 1,
            offline_after_ms: 2,
            consumer_dead_after_ms: 3,
        };
        let state = reduce(
            DashboardState::default(),
            [
                Action::Agents(reply),
                presence("pink", Presence::Online),
                presence("harold", Presence::Stale),
            ],
        );
        assert!(state.agents_loaded);
        assert_eq!(state.agents["pink"].presence, Presence::Online);
        assert_eq!(state.agents["harold"].presence, Presence::Stale);
        assert_eq!(state.agents["harold"].last_heartbeat_ms, Some(5));
    }

    #[test]
    fn dlq_frames_move_the_revision_and_collect_gone_ids() {
        let frame = |action, ids: &[&str]| {
            Action::Frame(ServerFrame::Dlq {
                action,
                dlq_ids: ids.iter().map(|s| s.to_string()).collect(),
                letter: None,
            })
        };
        let state = reduce(
            DashboardState::default(),
            [
                frame(DlqAction::Added, &["1-0"]),
                frame(DlqAction::Retried, &["1-0", "2-0"]),
            ],
        );
        assert_eq!(state.dlq_revision, 2);
        assert_eq!(*state.dlq_gone, ["1-0", "2-0"]);
        let state = reduce(state, [Action::DlqLoaded]);
        assert!(state.dlq_gone.is_empty());
    }

    fn metrics(at_ms: u64, added: u64) -> MessagingMetrics {
        MessagingMetrics {
            streams: vec![
                StreamMetrics {
                    stream: "cortex:tasks:high".into(),
                    length: 1,
                    first_id: None,
                    last_id: None,
                    last_generated_id: "0-0".into(),
                    entries_added: Some(added),
                    groups: Vec::new(),
                },
                StreamMetrics {
                    stream: DLQ_STREAM.into(),
                    length: 1,
                    first_id: None,
                    last_id: None,
                    last_generated_id: "0-0".into(),
                    entries_added: Some(1000),
                    groups: Vec::new(),
                },
            ],
            latency: cortex_shared::rest::LatencyMetrics {
                window_seconds: 300,
                publish_to_delivery: Default::default(),
                delivery_to_ack: Default::default(),
            },
            relay: Default::default(),
            dlq: cortex_shared::rest::DlqSummary {
                length: 0,
                warn_length: 0,
                over_warn_length: false,
            },
            at_ms,
        }
    }

    #[test]
    fn the_retry_time_is_kept_only_while_reconnecting() {
        let state = reduce(DashboardState::default(), [Action::Retrying(5)]);
        assert_eq!(state.retry_at_ms, None, "not reconnecting");
        let state = reduce(
            state,
            [
                Action::Connection(ConnState::Reconnecting),
                Action::Retrying(1_000),
                Action::Retrying(2_000),
            ],
        );
        assert_eq!(state.retry_at_ms, Some(2_000));
        let state = reduce(state, [Action::Connection(ConnState::Connected)]);
        assert_eq!(state.retry_at_ms, None);
    }

    #[test]
    fn a_batch_is_its_actions_in_order_and_one_revision() {
        let state = reduce(
            DashboardState::default(),
            [Action::Watch(SubscribeTarget::parse("pink").unwrap())],
        );
        let revision = state.revision;
        let batch = Action::Batch(vec![
            Action::Frame(ServerFrame::Subscribed {
                agent: "pink".into(),
                status: "ok".into(),
                mode: cortex_shared::SubscribeMode::Watch,
                consumer: None,
            }),
            Action::Connection(ConnState::Reconnecting),
            Action::DismissError,
        ]);
        let state = reduce(state, [batch]);
        assert_eq!(state.revision, revision + 1);
        assert_eq!(state.watching, None, "the later action wins");
        let state = reduce(state, [Action::Batch(vec![Action::DlqLoaded])]);
        assert_eq!(state.revision, revision + 1, "nothing changed");
    }

    #[test]
    fn the_first_reason_for_a_token_stays() {
        let state = reduce(
            DashboardState::default(),
            [
                Action::AuthRequired("closed with 4401".into()),
                Action::AuthRequired("401".into()),
            ],
        );
        assert_eq!(state.auth_required.as_deref(), Some("closed with 4401"));
    }

    #[test]
    fn throughput_is_entries_added_per_second_between_polls() {
        let state = reduce(
            DashboardState::default(),
            [
                Action::Metrics(metrics(1000, 10)),
                Action::Metrics(metrics(3000, 30)),
                Action::Metrics(metrics(4000, 30)),
            ],
        );
        let rates: Vec<f64> = state.throughput.iter().map(|s| s.per_second).collect();
        assert_eq!(rates, [10.0, 0.0]);
    }
}
