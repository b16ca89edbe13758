//! Task states as the `lifecycle` frames tell them (README, "Task lifecycle"): per task
//! (stream and entry id) and agent, what the feed rows show live. Bounded: at most
//! [`MAX_LIVE_TASKS`] tasks (the ones seen first fall off). Free of Yew, tested on the
//! host. (An agent's outcomes are counted in Redis: the agent page reads them.)

use crate::format::duration_ms;
use cortex_shared::lifecycle::{LifecycleEvent, TaskState};
use cortex_shared::JsonObject;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// How many tasks' states are kept: twice the feed's rows (`state::MAX_TASKS`, which
/// a test there holds to this), so that frames arriving before their task's row
/// (another stream, another read) still find it. A number here, so that this module
/// stands below the reducer and imports nothing of it.
pub const MAX_LIVE_TASKS: usize = 1000;

/// One lifecycle frame, as the reducer takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleFrame {
    /// The task's stream.
    pub stream: String,
    /// Its entry id.
    pub entry_id: String,
    /// The agent it happened for (`None`: published, for its `to`).
    pub agent: Option<String>,
    /// What happened.
    pub event: LifecycleEvent,
    /// The state after it.
    pub state: TaskState,
    /// The consumer.
    pub consumer: Option<String>,
    /// When, unix ms.
    pub at_ms: u64,
    /// The record's detail.
    pub detail: JsonObject,
}

/// A task's state for one agent, from the frames seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLive {
    /// The agent; `None` for the `published` record (the task's `to`).
    pub agent: Option<String>,
    /// The state.
    pub state: TaskState,
    /// The last event.
    pub event: LifecycleEvent,
    /// The consumer holding it (in progress) or that last had it.
    pub consumer: Option<String>,
    /// When it entered the state (unix ms).
    pub since_ms: u64,
    /// When it was last delivered (or reclaimed).
    pub delivered_ms: Option<u64>,
    /// The delivery it is on (1 for the first), 0 before any.
    pub attempt: u64,
    /// Done: how long from delivery to ack.
    pub took_ms: Option<u64>,
    /// The last error a consumer gave.
    pub error: Option<String>,
}

impl AgentLive {
    /// What the row says, at `now_ms`: `in progress on pink-1 for 12 s`,
    /// `done in 340 ms`, `failed attempt 2: "timeout"`, `dead`.
    pub fn text(&self, now_ms: u64) -> String {
        match self.state {
            TaskState::Waiting => "waiting".to_owned(),
            TaskState::InProgress => {
                let mut text = "in progress".to_owned();
                if let Some(consumer) = &self.consumer {
                    text.push_str(&format!(" on {consumer}"));
                }
                text.push_str(&format!(
                    " for {}",
                    duration_ms(now_ms.saturating_sub(self.since_ms))
                ));
                if self.attempt > 1 {
                    text.push_str(&format!(" (attempt {})", self.attempt));
                }
                text
            }
            TaskState::Retrying => {
                let mut text = match self.attempt {
                    0 => "failed".to_owned(),
                    n => format!("failed attempt {n}"),
                };
                if self.event == LifecycleEvent::Reclaimed {
                    text = "timed out".to_owned();
                }
                if let Some(error) = &self.error {
                    text.push_str(&format!(": \u{201c}{error}\u{201d}"));
                }
                text
            }
            TaskState::Done => match self.took_ms {
                Some(ms) => format!("done in {}", duration_ms(ms)),
                None => "done".to_owned(),
            },
            TaskState::Dead => {
                let mut text = if self.event == LifecycleEvent::Deleted {
                    "dead (letter deleted)".to_owned()
                } else {
                    "dead".to_owned()
                };
                if let Some(error) = &self.error {
                    text.push_str(&format!(": \u{201c}{error}\u{201d}"));
                }
                text
            }
            TaskState::Retried => "retried from the DLQ".to_owned(),
        }
    }

    /// Whether the text changes with the clock (in progress: "for 12 s").
    pub fn ticks(&self) -> bool {
        self.state == TaskState::InProgress
    }

    fn apply(&mut self, frame: &LifecycleFrame) {
        let number = |key: &str| frame.detail.get(key).and_then(|v| v.as_u64());
        let text = |key: &str| {
            frame
                .detail
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        if self.state != frame.state {
            self.since_ms = frame.at_ms;
        }
        self.state = frame.state;
        self.event = frame.event;
        if frame.consumer.is_some() {
            self.consumer = frame.consumer.clone();
        }
        match frame.event {
            LifecycleEvent::Delivered | LifecycleEvent::Reclaimed => {
                self.since_ms = frame.at_ms;
                self.delivered_ms = Some(frame.at_ms);
                self.attempt = number("delivery").unwrap_or(self.attempt + 1);
                self.took_ms = None;
            }
            LifecycleEvent::Acked => {
                self.took_ms = number("ms").or_else(|| {
                    self.delivered_ms
                        .map(|delivered| frame.at_ms.saturating_sub(delivered))
                });
            }
            LifecycleEvent::Nacked | LifecycleEvent::DeadLettered => {
                if let Some(error) = text("error") {
                    self.error = Some(error);
                }
            }
            LifecycleEvent::Published | LifecycleEvent::Retried | LifecycleEvent::Deleted => {}
        }
    }
}

/// Every task's states, by stream and entry id; oldest-seen tasks fall off past
/// [`MAX_LIVE_TASKS`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveStates {
    by_entry: HashMap<Rc<str>, Rc<Vec<AgentLive>>>,
    order: VecDeque<Rc<str>>,
    /// The last frame applied per task (duplicates after a reconnection change nothing).
    last: HashMap<Rc<str>, (u64, LifecycleEvent, Option<String>)>,
}

/// The key of a task: `stream/entry_id`.
fn key(stream: &str, entry_id: &str) -> String {
    format!("{stream}/{entry_id}")
}

impl LiveStates {
    /// The states of the task at `stream`/`entry_id`, by agent (the published record
    /// first, then by name), if a frame named it.
    pub fn get(&self, stream: &str, entry_id: &str) -> Option<&Rc<Vec<AgentLive>>> {
        self.by_entry.get(key(stream, entry_id).as_str())
    }

    /// How many tasks are kept.
    pub fn len(&self) -> usize {
        self.by_entry.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_entry.is_empty()
    }

    /// Whether `frame` was applied already: frames come in the order of the lifecycle
    /// stream, so one older than the task's last is a repeat (after a reconnection).
    pub fn is_repeat(&self, frame: &LifecycleFrame) -> bool {
        self.last
            .get(key(&frame.stream, &frame.entry_id).as_str())
            .is_some_and(|(at_ms, event, agent)| {
                *at_ms > frame.at_ms
                    || (*at_ms == frame.at_ms && *event == frame.event && *agent == frame.agent)
            })
    }

    /// Applies a frame; whether anything changed.
    pub fn apply(&mut self, frame: &LifecycleFrame) -> bool {
        if self.is_repeat(frame) {
            return false;
        }
        let k = key(&frame.stream, &frame.entry_id);
        let stamp = (frame.at_ms, frame.event, frame.agent.clone());
        let k: Rc<str> = match self.by_entry.get_key_value(k.as_str()) {
            Some((existing, _)) => Rc::clone(existing),
            None => {
                let k: Rc<str> = Rc::from(k);
                self.order.push_back(Rc::clone(&k));
                while self.order.len() > MAX_LIVE_TASKS {
                    if let Some(old) = self.order.pop_front() {
                        self.by_entry.remove(&old);
                        self.last.remove(&old);
                    }
                }
                k
            }
        };
        self.last.insert(Rc::clone(&k), stamp);
        let agents = Rc::make_mut(self.by_entry.entry(Rc::clone(&k)).or_default());
        match agents.iter_mut().find(|a| a.agent == frame.agent) {
            Some(live) => live.apply(frame),
            None => {
                let mut live = AgentLive {
                    agent: frame.agent.clone(),
                    state: frame.state,
                    event: frame.event,
                    consumer: None,
                    since_ms: frame.at_ms,
                    delivered_ms: None,
                    attempt: 0,
                    took_ms: None,
                    error: None,
                };
                live.apply(frame);
                agents.push(live);
                agents.sort_by(|a, b| a.agent.cmp(&b.agent));
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn frame(
        entry_id: &str,
        agent: Option<&str>,
        event: LifecycleEvent,
        consumer: Option<&str>,
        at_ms: u64,
        detail: serde_json::Value,
    ) -> LifecycleFrame {
        LifecycleFrame {
            stream: "cortex:tasks:high".into(),
            entry_id: entry_id.into(),
            agent: agent.map(str::to_owned),
            event,
            state: event.state_after(),
            consumer: consumer.map(str::to_owned),
            at_ms,
            detail: detail.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn a_task_moves_through_its_states() {
        use LifecycleEvent::*;
        let mut live = LiveStates::default();
        let none = json!({});
        assert!(live.apply(&frame("1-0", None, Published, None, 1_000, none.clone())));
        let texts = |live: &LiveStates, now| -> Vec<String> {
            live.get("cortex:tasks:high", "1-0")
                .unwrap()
                .iter()
                .map(|a| a.text(now))
                .collect()
        };
        assert_eq!(texts(&live, 5_000), ["waiting"]);
        live.apply(&frame(
            "1-0",
            Some("pink"),
            Delivered,
            Some("pink-1"),
            2_000,
            json!({"delivery":1}),
        ));
        assert_eq!(texts(&live, 14_000)[1], "in progress on pink-1 for 12 s");
        live.apply(&frame(
            "1-0",
            Some("pink"),
            Nacked,
            Some("pink-1"),
            3_000,
            json!({"error":"timeout"}),
        ));
        assert_eq!(
            texts(&live, 0)[1],
            "failed attempt 1: \u{201c}timeout\u{201d}"
        );
        live.apply(&frame(
            "1-0",
            Some("pink"),
            Delivered,
            Some("pink-2"),
            4_000,
            json!({"delivery":2}),
        ));
        assert_eq!(
            texts(&live, 5_000)[1],
            "in progress on pink-2 for 1 s (attempt 2)"
        );
        // Without `ms` in the detail: from the delivery's time.
        live.apply(&frame(
            "1-0",
            Some("pink"),
            Acked,
            Some("pink-2"),
            4_340,
            none.clone(),
        ));
        assert_eq!(texts(&live, 9_000)[1], "done in 340 ms");
        live.apply(&frame(
            "1-0",
            Some("blue"),
            DeadLettered,
            Some("blue-1"),
            5_000,
            json!({"error":"boom","dlq_id":"9-0"}),
        ));
        let agents = live.get("cortex:tasks:high", "1-0").unwrap();
        let names: Vec<_> = agents.iter().map(|a| a.agent.as_deref()).collect();
        assert_eq!(names, [None, Some("blue"), Some("pink")]);
        assert_eq!(agents[1].text(0), "dead: \u{201c}boom\u{201d}");
        live.apply(&frame(
            "1-0",
            Some("blue"),
            Retried,
            None,
            6_000,
            none.clone(),
        ));
        assert_eq!(texts(&live, 0)[1], "retried from the DLQ");
    }

    #[test]
    fn acked_ms_wins_and_repeats_change_nothing() {
        use LifecycleEvent::*;
        let mut live = LiveStates::default();
        let f = frame("1-0", Some("pink"), Acked, None, 10, json!({"ms":263_324}));
        assert!(live.apply(&f));
        assert!(!live.apply(&f), "the same frame again");
        assert!(!live.apply(&frame("1-0", Some("pink"), Delivered, None, 5, json!({}))));
        assert_eq!(
            live.get("cortex:tasks:high", "1-0").unwrap()[0].text(0),
            "done in 4 min 23 s"
        );
        assert!(live.get("cortex:tasks:high", "2-0").is_none());
    }

    #[test]
    fn memory_is_bounded() {
        let mut live = LiveStates::default();
        for i in 0..MAX_LIVE_TASKS + 50 {
            live.apply(&frame(
                &format!("{i}-0"),
                Some("pink"),
                LifecycleEvent::Delivered,
                None,
                i as u64,
                json!({}),
            ));
        }
        assert_eq!(live.len(), MAX_LIVE_TASKS);
        assert_eq!(live.order.len(), MAX_LIVE_TASKS);
        assert_eq!(live.last.len(), MAX_LIVE_TASKS);
        assert!(
            live.get("cortex:tasks:high", "49-0").is_none(),
            "the oldest fell off"
        );
        assert!(live.get("cortex:tasks:high", "50-0").is_some());
    }
}
