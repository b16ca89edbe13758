//! The live list of tasks for the watched agent, with a row wherever entries were lost.

use super::{GapItem, TaskItem};
use crate::live::LiveStates;
use crate::state::{FeedRow, TaskRow, MAX_TASKS};
use std::collections::VecDeque;
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`TaskFeed`].
#[derive(Debug, Properties)]
pub struct TaskFeedProps {
    /// The rows, newest first.
    pub tasks: Rc<VecDeque<FeedRow>>,
    /// The tasks' states per agent (from `lifecycle` frames).
    #[prop_or_default]
    pub live: Rc<LiveStates>,
    /// The operator asked to see a task's payload.
    #[prop_or_default]
    pub onview: Callback<Rc<TaskRow>>,
    /// What the heading says besides the count (e.g. filters, pause).
    #[prop_or_default]
    pub children: Html,
}

impl PartialEq for TaskFeedProps {
    fn eq(&self, other: &Self) -> bool {
        // The list is replaced whenever it changes (see `DashboardState::tasks`).
        Rc::ptr_eq(&self.tasks, &other.tasks)
            && Rc::ptr_eq(&self.live, &other.live)
            && self.onview == other.onview
            && self.children == other.children
    }
}

/// The task feed, newest first.
#[function_component(TaskFeed)]
pub fn task_feed(props: &TaskFeedProps) -> Html {
    let count = props
        .tasks
        .iter()
        .filter(|row| row.task().is_some())
        .count();
    html! {
        <section class="panel feed">
            <h2>
                { "Tasks" }
                <span id="task-count" class="count" title={format!("the last {MAX_TASKS} are kept")}>{ count }</span>
            </h2>
            { props.children.clone() }
            if props.tasks.is_empty() {
                <p class="empty">{ "No tasks yet. New ones appear here as they are published." }</p>
            }
            <ol id="task-feed" class="task-feed">
                { for props.tasks.iter().map(|row| match row {
                    FeedRow::Task(task) => html! {
                        <TaskItem key={row.key()} row={Rc::clone(task)} onview={props.onview.clone()}
                            states={props.live.get(&task.stream, &task.entry_id).cloned()} />
                    },
                    FeedRow::Gap(gap) => html! {
                        <GapItem key={row.key()} gap={Rc::clone(gap)} />
                    },
                }) }
            </ol>
        </section>
    }
}
