//! The live list of tasks for the watched agent.

use super::TaskItem;
use crate::state::{TaskRow, MAX_TASKS};
use std::collections::VecDeque;
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`TaskFeed`].
#[derive(Debug, Properties)]
pub struct TaskFeedProps {
    /// The tasks, newest first.
    pub tasks: Rc<VecDeque<Rc<TaskRow>>>,
}

impl PartialEq for TaskFeedProps {
    fn eq(&self, other: &Self) -> bool {
        // The list is replaced whenever it changes (see `DashboardState::tasks`).
        Rc::ptr_eq(&self.tasks, &other.tasks)
    }
}

/// The task feed, newest first.
#[function_component(TaskFeed)]
pub fn task_feed(props: &TaskFeedProps) -> Html {
    let count = props.tasks.len();
    html! {
        <section class="panel feed">
            <h2>
                { "Tasks" }
                <span class="count" title={format!("the last {MAX_TASKS} are kept")}>{ count }</span>
            </h2>
            if count == 0 {
                <p class="empty">{ "No tasks yet. New ones appear here as they are published." }</p>
            }
            <ol id="task-feed" class="task-feed">
                { for props.tasks.iter().map(|row| html! {
                    <TaskItem key={format!("{}/{}", row.stream, row.entry_id)} row={Rc::clone(row)} />
                }) }
            </ol>
        </section>
    }
}
