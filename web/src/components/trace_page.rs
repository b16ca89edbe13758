//! `#/traces/<correlation id>`: a trace's tasks as a tree across agents (a task under
//! the one that spawned it), each with its state per agent; from
//! `GET /api/v1/traces/{correlation_id}`, read again every 5 s.

use crate::format::{human_time, rfc3339};
use crate::hooks::{use_now, use_poll};
use crate::route::{Page, Route, View};
use crate::services::{self, ApiError};
use cortex_shared::lifecycle::{TaskState, TraceNode, TraceReply};
use std::rc::Rc;
use std::time::Duration;
use yew::prelude::*;

/// Properties of [`TracePage`].
#[derive(Debug, Properties, PartialEq)]
pub struct TracePageProps {
    /// The correlation id.
    pub id: String,
}

/// How many tasks a trace holds, and how many of them are done for every agent.
pub(crate) fn trace_counts(roots: &[TraceNode]) -> (usize, usize) {
    roots.iter().fold((0, 0), |(all, done), node| {
        let (a, d) = trace_counts(&node.children);
        let finished =
            !node.agents.is_empty() && node.agents.iter().all(|a| a.state == TaskState::Done);
        (all + 1 + a, done + usize::from(finished) + d)
    })
}

fn node_html(node: &TraceNode, now: u64, depth: usize) -> Html {
    let view = &node.task;
    let task = &view.task;
    let to = if task.to.is_empty() {
        "every agent".to_owned()
    } else {
        task.to.clone()
    };
    html! {
        <li class="trace-node" data-task-id={task.id.clone()} data-depth={depth.to_string()}>
            <div class="trace-task">
                <span class={classes!("badge", format!("priority-{}", task.priority.as_str()))}>{ task.priority.as_str() }</span>
                <a class="trace-task-link" href={Page::task(&task.id, &view.stream, &view.entry_id).to_hash()}><code>{ &task.id }</code></a>
                <span class="task-type">{ &task.task_type }</span>
                <span class="task-route">{ format!("{} → {to}", task.from) }</span>
                <time datetime={rfc3339(task.created)}>{ human_time(task.created) }</time>
            </div>
            <ul class="task-states">
                { for node.agents.iter().map(|a| {
                    let state = a.state.as_str();
                    html! {
                        <li class={classes!("task-state", format!("state-{state}"))} data-agent={a.agent.clone()} data-state={state}>
                            <a class="task-state-agent" href={Page::Agent(a.agent.clone()).to_hash()}>{ &a.agent }</a>
                            { ": " }
                            <span class="task-state-text">{ super::task_page::agent_state_text(a, now) }</span>
                        </li>
                    }
                }) }
            </ul>
            if !node.children.is_empty() {
                <ul class="trace-children">
                    { for node.children.iter().map(|c| node_html(c, now, depth + 1)) }
                </ul>
            }
        </li>
    }
}

/// The trace page.
#[function_component(TracePage)]
pub fn trace_page(props: &TracePageProps) -> Html {
    let load = use_state(|| None::<Result<Rc<TraceReply>, ApiError>>);
    {
        let load = load.clone();
        use_effect_with(props.id.clone(), move |_| load.set(None));
    }
    let tick = {
        let load = load.clone();
        let id = props.id.clone();
        Callback::from(move |()| {
            let load = load.clone();
            let id = id.clone();
            yew::platform::spawn_local(async move {
                load.set(Some(services::lifecycle::trace(&id).await.map(Rc::new)));
            });
        })
    };
    use_poll(Duration::from_secs(5), tick);
    let now = use_now(matches!(&*load, Some(Ok(_))));
    let body = match &*load {
        None => html! { <p class="empty">{ "Loading…" }</p> },
        Some(Err(error)) => html! {
            <p id="trace-error" class="field-error" role="alert" data-code={error.code.clone()}>
                { if error.code == "not_found" {
                    format!("No trace {} is known (or it is older than the lifecycle's retention).", props.id)
                } else {
                    format!("Could not load the trace: {error}")
                } }
            </p>
        },
        Some(Ok(reply)) => {
            let (all, done) = trace_counts(&reply.roots);
            html! {
                <section class="panel">
                    <p id="trace-summary" data-tasks={all.to_string()} data-done={done.to_string()}>
                        { format!("{all} task{}, {done} done for every agent they are for.", if all == 1 { "" } else { "s" }) }
                    </p>
                    <ul id="trace-tree" class="trace-tree">
                        { for reply.roots.iter().map(|n| node_html(n, now, 0)) }
                    </ul>
                </section>
            }
        }
    };
    html! {
        <div id="view-trace" class="view page" data-trace={props.id.clone()}
            data-loaded={matches!(&*load, Some(Ok(_))).to_string()}>
            <p class="crumbs"><a href={Route::default().with_view(View::Tasks).to_hash()}>{ "← Tasks" }</a></p>
            <h2>{ "Trace " }<code>{ &props.id }</code></h2>
            { body }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::lifecycle::{TaskAgentState, TaskView};
    use cortex_shared::{Priority, TaskMessage};

    fn node(id: &str, state: TaskState, children: Vec<TraceNode>) -> TraceNode {
        TraceNode {
            task: TaskView {
                task: TaskMessage {
                    id: id.into(),
                    from: "a".into(),
                    to: "b".into(),
                    priority: Priority::Normal,
                    task_type: "t".into(),
                    payload: Default::default(),
                    created: 0,
                    parent_id: None,
                    correlation_id: Some("c".into()),
                },
                stream: "cortex:tasks:normal".into(),
                entry_id: "1-0".into(),
            },
            agents: vec![TaskAgentState {
                agent: "b".into(),
                group: None,
                state,
                consumer: None,
                deliveries: 1,
                since_ms: None,
                dlq_id: None,
                last_error: None,
                retried_as: None,
            }],
            children,
        }
    }

    #[test]
    fn counts_the_tree() {
        let roots = [node(
            "root",
            TaskState::Done,
            vec![
                node("a", TaskState::InProgress, vec![]),
                node(
                    "b",
                    TaskState::Done,
                    vec![node("c", TaskState::Done, vec![])],
                ),
            ],
        )];
        assert_eq!(trace_counts(&roots), (4, 3));
    }
}
