//! One task in the feed.

use super::TaskStates;
use crate::format::{human_time, rfc3339};
use crate::live::AgentLive;
use crate::route::Page;
use crate::state::TaskRow;
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`TaskItem`].
#[derive(Debug, Properties)]
pub struct TaskItemProps {
    /// The task and where it came from.
    pub row: Rc<TaskRow>,
    /// The operator asked to see the payload.
    #[prop_or_default]
    pub onview: Callback<Rc<TaskRow>>,
    /// Its state per agent, once a `lifecycle` frame named it.
    #[prop_or_default]
    pub states: Option<Rc<Vec<AgentLive>>>,
}

impl PartialEq for TaskItemProps {
    fn eq(&self, other: &Self) -> bool {
        // Rows never change once made; states are replaced when they change.
        let same_states = match (&self.states, &other.states) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        Rc::ptr_eq(&self.row, &other.row) && self.onview == other.onview && same_states
    }
}

/// A task: priority, route, type, time, ids and payload.
#[function_component(TaskItem)]
pub fn task_item(props: &TaskItemProps) -> Html {
    let TaskRow {
        task,
        stream,
        entry_id,
        payload,
    } = &*props.row;
    let priority = task.priority.as_str();
    let onview = {
        let row = Rc::clone(&props.row);
        props.onview.reform(move |_: MouseEvent| Rc::clone(&row))
    };
    let to = if task.to.is_empty() {
        html! { <span class="task-to broadcast" title="addressed to every agent">{ "all agents" }</span> }
    } else {
        html! { <span class="task-to">{ &task.to }</span> }
    };
    html! {
        <li class="task" data-task-id={task.id.clone()} data-entry-id={entry_id.clone()}
            data-stream={stream.clone()}>
            <div class="task-head">
                <span class={classes!("badge", format!("priority-{priority}"))}>{ priority }</span>
                <span class="task-type">{ &task.task_type }</span>
                <span class="task-route">
                    <span class="task-from">{ &task.from }</span>
                    <span class="arrow" aria-label="to">{ " → " }</span>
                    { to }
                </span>
                <time class="task-created" datetime={rfc3339(task.created)}
                    title={format!("unix {}", task.created)}>{ human_time(task.created) }</time>
                <button type="button" class="task-view small" onclick={onview}
                    aria-label={format!("View the payload of {}", task.id)}>{ "View" }</button>
                <a class="task-open small" href={Page::task(&task.id, stream, entry_id).to_hash()}
                    aria-label={format!("Open task {}: its states and timeline", task.id)}>{ "Open" }</a>
            </div>
            if let Some(states) = &props.states {
                <TaskStates states={Rc::clone(states)} to={task.to.clone()} />
            }
            <div class="task-meta">
                <span class="label">{ "id" }</span>
                <code class="task-id">{ &task.id }</code>
                <span class="label">{ "entry" }</span>
                <code class="task-entry">{ format!("{stream} {entry_id}") }</code>
            </div>
            <pre class="task-payload">{ payload }</pre>
        </li>
    }
}
