//! A task's timeline drawn as one: a lane per agent, its events on a shared time axis,
//! the time between them as bars coloured by state, with durations in human units; and
//! the same events as a list below.

use crate::format::{duration_ms, human_time};
use cortex_shared::lifecycle::{LifecycleEvent, TaskAgentState, TaskState, TimelineItem};
use cortex_shared::JsonObject;
use std::rc::Rc;
use yew::prelude::*;

/// One event on a lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// When (unix ms).
    pub at_ms: u64,
    /// What.
    pub event: LifecycleEvent,
    /// What it says: `delivered to pink-1 (delivery 2)`.
    pub text: String,
}

/// A stretch of a lane in one state.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// From (unix ms).
    pub from_ms: u64,
    /// To (unix ms; now for a state still going on).
    pub to_ms: u64,
    /// The state.
    pub state: TaskState,
    /// Whether it is still going on.
    pub open: bool,
}

/// One agent's lane (or the `published` lane: events for no agent).
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    /// The agent, or `published`.
    pub name: String,
    /// Its events, oldest first.
    pub marks: Vec<Mark>,
    /// Its states between them.
    pub spans: Vec<Span>,
}

/// What an event says, from its detail.
pub(crate) fn event_text(item: &TimelineItem) -> String {
    let detail = &item.detail;
    let text = |key: &str| detail.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let number = |key: &str| detail.get(key).and_then(|v| v.as_u64());
    let on = item
        .consumer
        .as_ref()
        .map(|c| format!(" on {c}"))
        .unwrap_or_default();
    match item.event {
        LifecycleEvent::Published => "published".to_owned(),
        LifecycleEvent::Delivered => match number("delivery") {
            Some(n) => format!("delivered{on} (delivery {n})"),
            None => format!("delivered{on}"),
        },
        LifecycleEvent::Acked => match number("ms") {
            Some(ms) => format!("acked{on}, done in {}", duration_ms(ms)),
            None => format!("acked{on}"),
        },
        LifecycleEvent::Nacked => match text("error") {
            Some(e) => format!("nacked{on}: \u{201c}{e}\u{201d}"),
            None => format!("nacked{on}"),
        },
        LifecycleEvent::Reclaimed => match text("from") {
            Some(from) => format!("reclaimed from {from}{on}"),
            None => format!("reclaimed{on}"),
        },
        LifecycleEvent::DeadLettered => match text("error") {
            Some(e) => format!("dead-lettered: \u{201c}{e}\u{201d}"),
            None => "dead-lettered".to_owned(),
        },
        LifecycleEvent::Retried => match (text("stream"), text("entry_id")) {
            (Some(s), Some(e)) => format!("retried as {s} {e}"),
            _ => "retried".to_owned(),
        },
        LifecycleEvent::Deleted => "its dead letter was deleted".to_owned(),
    }
}

/// The lanes of a timeline at `now_ms`: one per agent with events or a state (in
/// `agents` order, then by first event), the `published` lane first. Also the axis:
/// its start and end (unix ms).
pub fn lanes(
    timeline: &[TimelineItem],
    agents: &[TaskAgentState],
    now_ms: u64,
) -> (u64, u64, Vec<Lane>) {
    let mut lanes: Vec<Lane> = Vec::new();
    let lane = |lanes: &mut Vec<Lane>, name: &str| -> usize {
        match lanes.iter().position(|l| l.name == name) {
            Some(i) => i,
            None => {
                lanes.push(Lane {
                    name: name.to_owned(),
                    marks: Vec::new(),
                    spans: Vec::new(),
                });
                lanes.len() - 1
            }
        }
    };
    if timeline.iter().any(|i| i.agent.is_none()) {
        lane(&mut lanes, "published");
    }
    for agent in agents {
        lane(&mut lanes, &agent.agent);
    }
    let published_at = timeline
        .iter()
        .find(|i| i.event == LifecycleEvent::Published)
        .map(|i| i.at_ms);
    for item in timeline {
        let name = item.agent.as_deref().unwrap_or("published");
        let i = lane(&mut lanes, name);
        lanes[i].marks.push(Mark {
            at_ms: item.at_ms,
            event: item.event,
            text: event_text(item),
        });
    }
    for lane in &mut lanes {
        if lane.name == "published" && agents.iter().all(|a| a.agent != "published") {
            continue;
        }
        let state_now = agents
            .iter()
            .find(|a| a.agent == lane.name)
            .map(|a| a.state);
        // Waiting from the publish until the lane's first event.
        let mut from = published_at.map(|at| (at, TaskState::Waiting));
        for mark in &lane.marks {
            if let Some((at, state)) = from {
                lane.spans.push(Span {
                    from_ms: at,
                    to_ms: mark.at_ms.max(at),
                    state,
                    open: false,
                });
            }
            from = Some((mark.at_ms, mark.event.state_after()));
        }
        if let Some((at, state)) = from {
            let state = state_now.unwrap_or(state);
            if matches!(
                state,
                TaskState::Waiting | TaskState::InProgress | TaskState::Retrying
            ) {
                lane.spans.push(Span {
                    from_ms: at,
                    to_ms: now_ms.max(at),
                    state,
                    open: true,
                });
            }
        }
    }
    let start = timeline.iter().map(|i| i.at_ms).min().unwrap_or(now_ms);
    let end = lanes
        .iter()
        .flat_map(|l| {
            l.spans
                .iter()
                .map(|s| s.to_ms)
                .chain(l.marks.iter().map(|m| m.at_ms))
        })
        .max()
        .unwrap_or(start)
        .max(start);
    (start, end, lanes)
}

/// Properties of [`Timeline`].
#[derive(Debug, Properties, PartialEq)]
pub struct TimelineProps {
    /// The events, oldest first.
    pub timeline: Rc<Vec<TimelineItem>>,
    /// The states now, by agent.
    pub agents: Rc<Vec<TaskAgentState>>,
    /// Now (unix ms).
    pub now_ms: u64,
}

const WIDTH: f64 = 880.0;
const LABEL: f64 = 120.0;
const LANE: f64 = 34.0;
const AXIS: f64 = 26.0;

fn detail_text(detail: &JsonObject) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        serde_json::to_string(detail).unwrap_or_default()
    }
}

/// The drawn timeline and its list.
#[function_component(Timeline)]
pub fn timeline(props: &TimelineProps) -> Html {
    let (start, end, lanes) = lanes(&props.timeline, &props.agents, props.now_ms);
    if props.timeline.is_empty() {
        return html! {
            <p id="timeline-empty" class="empty">
                { "No lifecycle records for this task (published before the relay kept them, older than their retention, or the record is off)." }
            </p>
        };
    }
    let span = (end - start).max(1) as f64;
    let x = |t: u64| LABEL + (t.saturating_sub(start) as f64 / span) * (WIDTH - LABEL - 16.0);
    let height = AXIS + LANE * lanes.len() as f64 + 8.0;
    let ticks = 5u64;
    html! {
        <figure class="timeline" id="timeline">
            <svg id="timeline-chart" class="timeline-chart" role="img"
                viewBox={format!("0 0 {WIDTH} {height}")} width="100%"
                aria-label={format!("Timeline over {}", duration_ms(end - start))}
                data-lanes={lanes.len().to_string()} data-span-ms={(end - start).to_string()}>
                // The axis: offsets from the first event.
                { for (0..=ticks).map(|i| {
                    let t = start + (end - start) * i / ticks;
                    let tx = x(t);
                    html! {
                        <g class="timeline-tick">
                            <line x1={tx.to_string()} x2={tx.to_string()} y1={(AXIS - 6.0).to_string()}
                                y2={(height - 4.0).to_string()} class="timeline-grid" />
                            <text x={tx.to_string()} y={(AXIS - 10.0).to_string()}
                                text-anchor={if i == 0 { "start" } else if i == ticks { "end" } else { "middle" }}>
                                { if i == 0 { "0".to_owned() } else { format!("+{}", duration_ms(t - start)) } }
                            </text>
                        </g>
                    }
                }) }
                { for lanes.iter().enumerate().map(|(row, lane)| {
                    let y = AXIS + LANE * row as f64;
                    let mid = y + LANE / 2.0;
                    html! {
                        <g class="timeline-lane" data-lane={lane.name.clone()}>
                            <text class="timeline-lane-name" x="4" y={(mid + 4.0).to_string()}>{ &lane.name }</text>
                            <line class="timeline-lane-line" x1={LABEL.to_string()} x2={(WIDTH - 16.0).to_string()}
                                y1={mid.to_string()} y2={mid.to_string()} />
                            { for lane.spans.iter().map(|s| {
                                let (x1, x2) = (x(s.from_ms), x(s.to_ms));
                                let label = duration_ms(s.to_ms - s.from_ms);
                                let state = s.state.as_str();
                                let title = format!("{} for {label}{}", state.replace('_', " "),
                                    if s.open { " (so far)" } else { "" });
                                html! {
                                    <g class={classes!("timeline-span", format!("state-{state}"), s.open.then_some("open"))}
                                        data-state={state} data-ms={(s.to_ms - s.from_ms).to_string()}>
                                        <rect x={x1.to_string()} y={(mid - 7.0).to_string()}
                                            width={(x2 - x1).max(2.0).to_string()} height="14" rx="3">
                                            <title>{ title }</title>
                                        </rect>
                                        if x2 - x1 > 56.0 {
                                            <text class="timeline-span-label" x={((x1 + x2) / 2.0).to_string()}
                                                y={(mid + 4.0).to_string()} text-anchor="middle">{ label }</text>
                                        }
                                    </g>
                                }
                            }) }
                            { for lane.marks.iter().map(|m| html! {
                                <circle class={classes!("timeline-mark", format!("event-{}", m.event.as_str()))}
                                    cx={x(m.at_ms).to_string()} cy={mid.to_string()} r="5"
                                    data-event={m.event.as_str()}>
                                    <title>{ format!("{} (+{})", m.text, duration_ms(m.at_ms - start)) }</title>
                                </circle>
                            }) }
                        </g>
                    }
                }) }
            </svg>
            <ol id="timeline-list" class="timeline-list">
                { for props.timeline.iter().map(|item| {
                    let agent = item.agent.clone().unwrap_or_default();
                    html! {
                        <li class="timeline-item" data-event={item.event.as_str()} data-agent={agent.clone()}>
                            <span class="timeline-offset">{ format!("+{}", duration_ms(item.at_ms.saturating_sub(start))) }</span>
                            <time class="timeline-at" title={format!("unix ms {}", item.at_ms)}>
                                { human_time((item.at_ms / 1000) as i64) }
                            </time>
                            if !agent.is_empty() {
                                <span class="timeline-agent">{ agent }</span>
                            }
                            <span class="timeline-text">{ event_text(item) }</span>
                            <code class="timeline-detail">{ detail_text(&item.detail) }</code>
                        </li>
                    }
                }) }
            </ol>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(
        at_ms: u64,
        event: LifecycleEvent,
        agent: Option<&str>,
        detail: serde_json::Value,
    ) -> TimelineItem {
        TimelineItem {
            at_ms,
            event,
            agent: agent.map(str::to_owned),
            consumer: agent.map(|a| format!("{a}-1")),
            detail: detail.as_object().cloned().unwrap_or_default(),
        }
    }

    fn state(agent: &str, state: TaskState) -> TaskAgentState {
        TaskAgentState {
            agent: agent.into(),
            group: None,
            state,
            consumer: None,
            deliveries: 0,
            since_ms: None,
            dlq_id: None,
            last_error: None,
            retried_as: None,
        }
    }

    #[test]
    fn a_lane_per_agent_with_its_states_between_events() {
        use LifecycleEvent::*;
        let timeline = [
            item(1_000, Published, None, json!({})),
            item(1_200, Delivered, Some("pink"), json!({"delivery":1})),
            item(1_540, Acked, Some("pink"), json!({"ms":340})),
            item(1_300, Delivered, Some("blue"), json!({"delivery":1})),
            item(2_000, Nacked, Some("blue"), json!({"error":"timeout"})),
        ];
        let agents = [
            state("pink", TaskState::Done),
            state("blue", TaskState::Retrying),
            state("green", TaskState::Waiting),
        ];
        let (start, end, lanes) = lanes(&timeline, &agents, 5_000);
        assert_eq!((start, end), (1_000, 5_000));
        let names: Vec<_> = lanes.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["published", "pink", "blue", "green"]);
        assert!(lanes[0].spans.is_empty());
        let pink: Vec<_> = lanes[1]
            .spans
            .iter()
            .map(|s| (s.from_ms, s.to_ms, s.state, s.open))
            .collect();
        assert_eq!(
            pink,
            [
                (1_000, 1_200, TaskState::Waiting, false),
                (1_200, 1_540, TaskState::InProgress, false)
            ]
        );
        assert_eq!(lanes[1].marks[1].text, "acked on pink-1, done in 340 ms");
        let blue = lanes[2].spans.last().unwrap();
        assert_eq!(
            (blue.from_ms, blue.to_ms, blue.state, blue.open),
            (2_000, 5_000, TaskState::Retrying, true)
        );
        assert_eq!(
            lanes[2].marks[1].text,
            "nacked on blue-1: \u{201c}timeout\u{201d}"
        );
        // An agent with no event yet waits from the publish until now.
        let green: Vec<_> = lanes[3]
            .spans
            .iter()
            .map(|s| (s.from_ms, s.to_ms, s.state))
            .collect();
        assert_eq!(green, [(1_000, 5_000, TaskState::Waiting)]);
    }

    #[test]
    fn events_say_what_happened() {
        use LifecycleEvent::*;
        assert_eq!(
            event_text(&item(0, Reclaimed, Some("pink"), json!({"from":"pink-0"}))),
            "reclaimed from pink-0 on pink-1"
        );
        assert_eq!(
            event_text(&item(
                0,
                DeadLettered,
                Some("pink"),
                json!({"error":"x","dlq_id":"1-0"})
            )),
            "dead-lettered: \u{201c}x\u{201d}"
        );
        assert_eq!(
            event_text(&item(
                0,
                Retried,
                Some("pink"),
                json!({"stream":"cortex:tasks:low","entry_id":"2-0"})
            )),
            "retried as cortex:tasks:low 2-0"
        );
        assert_eq!(event_text(&item(0, Acked, None, json!({}))), "acked");
        let (start, end, lanes) = lanes(&[], &[], 7);
        assert_eq!((start, end, lanes.len()), (7, 7, 0));
    }
}
