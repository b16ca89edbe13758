//! `#/tasks/<id>`: one task: its fields, its state per agent, its timeline drawn as
//! one. Read from `GET /api/v1/tasks/by-entry/…` (or by id for a bare deep link), and
//! read again whenever a `lifecycle` frame about it arrives.

use super::Timeline;
use crate::format::{duration_ms, human_time, pretty_json, rfc3339};
use crate::hooks::use_now;
use crate::live::AgentLive;
use crate::route::{DlqFilterText, Page, Route, View};
use crate::services::{self, ApiError};
use cortex_shared::lifecycle::{TaskAgentState, TaskReply, TaskState};
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`TaskPage`].
#[derive(Debug, Properties, PartialEq)]
pub struct TaskPageProps {
    /// The task's id.
    pub id: String,
    /// Its stream, when known.
    #[prop_or_default]
    pub stream: String,
    /// Its entry id, when known.
    #[prop_or_default]
    pub entry_id: String,
    /// Its live states (changes when a frame about it arrives: the page reloads).
    #[prop_or_default]
    pub live: Option<Rc<Vec<AgentLive>>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Load {
    Loading,
    Loaded(Rc<TaskReply>),
    Failed(ApiError),
}

/// What one agent's state says, at `now_ms`.
pub(crate) fn agent_state_text(a: &TaskAgentState, now_ms: u64) -> String {
    let since = a
        .since_ms
        .map(|at| format!(" for {}", duration_ms(now_ms.saturating_sub(at))))
        .unwrap_or_default();
    match a.state {
        TaskState::Waiting => format!("waiting{since}"),
        TaskState::InProgress => {
            let on = a
                .consumer
                .as_ref()
                .map(|c| format!(" on {c}"))
                .unwrap_or_default();
            let attempt = if a.deliveries > 1 {
                format!(" (delivery {})", a.deliveries)
            } else {
                String::new()
            };
            format!("in progress{on}{since}{attempt}")
        }
        TaskState::Retrying => {
            let error = a
                .last_error
                .as_ref()
                .map(|e| format!(": \u{201c}{e}\u{201d}"))
                .unwrap_or_default();
            format!("retrying after delivery {}{error}", a.deliveries)
        }
        TaskState::Done => "done".to_owned(),
        TaskState::Dead => {
            let error = a
                .last_error
                .as_ref()
                .map(|e| format!(": \u{201c}{e}\u{201d}"))
                .unwrap_or_default();
            format!("dead after {} deliveries{error}", a.deliveries)
        }
        TaskState::Retried => "retried from the DLQ".to_owned(),
    }
}

/// The task page.
#[function_component(TaskPage)]
pub fn task_page(props: &TaskPageProps) -> Html {
    let load = use_state(|| Load::Loading);
    {
        let load = load.clone();
        let key = (
            props.id.clone(),
            props.stream.clone(),
            props.entry_id.clone(),
            props.live.as_ref().map(|l| Rc::as_ptr(l) as usize),
        );
        use_effect_with(key, move |(id, stream, entry_id, _)| {
            let (id, stream, entry_id) = (id.clone(), stream.clone(), entry_id.clone());
            yew::platform::spawn_local(async move {
                match services::lifecycle::task(&id, &stream, &entry_id).await {
                    Ok(reply) => load.set(Load::Loaded(Rc::new(reply))),
                    Err(error) => load.set(Load::Failed(error)),
                }
            });
        });
    }
    let ticking = matches!(&*load, Load::Loaded(r) if r.agents.iter().any(|a| matches!(a.state, TaskState::InProgress | TaskState::Waiting | TaskState::Retrying)));
    let now = use_now(ticking);
    let body = match &*load {
        Load::Loading => html! { <p class="empty" id="task-loading">{ "Loading…" }</p> },
        Load::Failed(error) => html! {
            <p id="task-error" class="field-error" role="alert" data-code={error.code.clone()}>
                { if error.code == "not_found" {
                    format!("No task {} is known: it may be older than the lifecycle's retention, or its id is wrong.", props.id)
                } else {
                    format!("Could not load the task: {error}")
                } }
            </p>
        },
        Load::Loaded(reply) => task_body(reply, now),
    };
    html! {
        <div id="view-task" class="view page" data-task-id={props.id.clone()}
            data-loaded={matches!(&*load, Load::Loaded(_)).to_string()}>
            <p class="crumbs"><a href={Route::default().with_view(View::Tasks).to_hash()}>{ "← Tasks" }</a></p>
            <h2>{ "Task " }<code>{ &props.id }</code></h2>
            { body }
        </div>
    }
}

fn task_body(reply: &Rc<TaskReply>, now: u64) -> Html {
    let view = &reply.task;
    let task = &view.task;
    let to = if task.to.is_empty() {
        html! { <span class="broadcast">{ "every agent" }</span> }
    } else {
        html! { <a href={Page::Agent(task.to.clone()).to_hash()}>{ &task.to }</a> }
    };
    let link_or_dash = |text: &Option<String>, page: fn(String) -> Page| match text {
        Some(t) => html! { <a href={page(t.clone()).to_hash()}><code>{ t }</code></a> },
        None => html! { "—" },
    };
    let parent = link_or_dash(&task.parent_id, |id| Page::task(&id, "", ""));
    let trace = link_or_dash(&task.correlation_id, Page::Trace);
    let dlq_link = |agent: &str, id: &str| {
        let mut route = Route::default().with_view(View::Dlq);
        route.dlq = DlqFilterText {
            agent: if task.to.is_empty() {
                String::new()
            } else {
                agent.to_owned()
            },
            ..DlqFilterText::default()
        };
        html! { <a class="dlq-link" href={route.to_hash()} title="the dead letter queue"><code>{ id.to_owned() }</code></a> }
    };
    html! {
        <>
            <section class="panel" id="task-fields">
                <dl class="fields">
                    <dt>{ "from" }</dt><dd class="task-from">{ &task.from }</dd>
                    <dt>{ "to" }</dt><dd class="task-to">{ to }</dd>
                    <dt>{ "priority" }</dt><dd><span class={classes!("badge", format!("priority-{}", task.priority.as_str()))}>{ task.priority.as_str() }</span></dd>
                    <dt>{ "type" }</dt><dd>{ &task.task_type }</dd>
                    <dt>{ "created" }</dt><dd><time datetime={rfc3339(task.created)}>{ human_time(task.created) }</time></dd>
                    <dt>{ "entry" }</dt><dd><code id="task-entry">{ format!("{} {}", view.stream, view.entry_id) }</code></dd>
                    <dt>{ "parent" }</dt><dd id="task-parent">{ parent }</dd>
                    <dt>{ "trace" }</dt><dd id="task-trace">{ trace }</dd>
                </dl>
                <pre class="task-payload">{ pretty_json(&task.payload) }</pre>
            </section>
            <section class="panel" id="task-agents">
                <h3>{ "State per agent" }</h3>
                if reply.agents.is_empty() {
                    <p class="empty">{ "No agent known for it yet." }</p>
                }
                <table class="agent-states">
                    <thead><tr>
                        <th>{ "agent" }</th><th>{ "state" }</th><th>{ "consumer" }</th>
                        <th>{ "deliveries" }</th><th>{ "dead letter" }</th><th>{ "last error" }</th>
                    </tr></thead>
                    <tbody>
                    { for reply.agents.iter().map(|a| {
                        let state = a.state.as_str();
                        html! {
                            <tr class={classes!("agent-state", format!("state-{state}"))} data-agent={a.agent.clone()}
                                data-state={state} data-group={a.group.clone().unwrap_or_default()}>
                                <td>
                                    if a.group.is_some() {
                                        <span title="a consumer group that is not an agent's">{ format!("group {}", a.agent) }</span>
                                    } else {
                                        <a href={Page::Agent(a.agent.clone()).to_hash()}>{ &a.agent }</a>
                                    }
                                </td>
                                <td class="agent-state-text">
                                    <span class={classes!("state-badge", format!("state-{state}"))}>{ state.replace('_', " ") }</span>
                                    { " " }{ agent_state_text(a, now) }
                                </td>
                                <td>{ a.consumer.clone().unwrap_or_default() }</td>
                                <td>{ a.deliveries }</td>
                                <td>{ a.dlq_id.as_deref().map(|id| dlq_link(&a.agent, id)).unwrap_or_default() }
                                    if let Some(to) = &a.retried_as {
                                        { " → " }
                                        <a class="retried-as" href={Page::task(&task.id, &to.stream, &to.entry_id).to_hash()}>
                                            { format!("{} {}", to.stream, to.entry_id) }
                                        </a>
                                    }
                                </td>
                                <td class="letter-error">{ a.last_error.clone().unwrap_or_default() }</td>
                            </tr>
                        }
                    }) }
                    </tbody>
                </table>
            </section>
            <section class="panel" id="task-timeline">
                <h3>{ "Timeline" }</h3>
                <Timeline timeline={Rc::new(reply.timeline.clone())} agents={Rc::new(reply.agents.clone())} now_ms={now} />
            </section>
        </>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_states_in_words() {
        let mut a = TaskAgentState {
            agent: "pink".into(),
            group: None,
            state: TaskState::InProgress,
            consumer: Some("pink-1".into()),
            deliveries: 2,
            since_ms: Some(1_000),
            dlq_id: None,
            last_error: Some("timeout".into()),
            retried_as: None,
        };
        assert_eq!(
            agent_state_text(&a, 13_000),
            "in progress on pink-1 for 12 s (delivery 2)"
        );
        a.state = TaskState::Retrying;
        assert_eq!(
            agent_state_text(&a, 0),
            "retrying after delivery 2: \u{201c}timeout\u{201d}"
        );
        a.state = TaskState::Dead;
        a.deliveries = 3;
        assert_eq!(
            agent_state_text(&a, 0),
            "dead after 3 deliveries: \u{201c}timeout\u{201d}"
        );
        a.state = TaskState::Waiting;
        a.since_ms = Some(0);
        assert_eq!(agent_state_text(&a, 263_324), "waiting for 4 min 23 s");
    }
}
