//! The live task feed for the picked agents, with filters, search and pause.

use super::{AgentPicker, HeartbeatPanel, PayloadViewer, TaskFeed};
use crate::route::Route;
use crate::state::{FeedRow, HeartbeatView, TaskRow};
use cortex_shared::{Priority, SubscribeTarget};
use std::collections::VecDeque;
use std::rc::Rc;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

/// Properties of [`TasksView`].
#[derive(Debug, Properties, PartialEq)]
pub struct TasksViewProps {
    /// Every row the feed holds, newest first.
    pub tasks: Rc<VecDeque<FeedRow>>,
    /// What is subscribed.
    pub target: Option<SubscribeTarget>,
    /// What the relay confirmed.
    pub watching: Option<String>,
    /// The latest heartbeat.
    pub heartbeat: Option<Rc<HeartbeatView>>,
    /// The route: picked agents and filters.
    pub route: Route,
    /// The filters or agents changed.
    pub onroute: Callback<Route>,
}

/// Whether `row` passes the route's agents, priority, type and search.
pub fn row_matches(route: &Route, row: &FeedRow) -> bool {
    let Some(row) = row.task() else {
        return true;
    };
    let task = &row.task;
    let search = route.search.trim().to_lowercase();
    route.picks_task_for(&task.to)
        && (route.priority.is_empty() || task.priority.as_str() == route.priority)
        && (route.task_type.trim().is_empty()
            || task.task_type.eq_ignore_ascii_case(route.task_type.trim()))
        && (search.is_empty()
            || row.payload.to_lowercase().contains(&search)
            || task.id.to_lowercase().contains(&search))
}

/// The tasks view.
#[function_component(TasksView)]
pub fn tasks_view(props: &TasksViewProps) -> Html {
    // While paused, the rows shown stay these.
    let frozen = use_state(|| None::<Rc<VecDeque<FeedRow>>>);
    let viewing = use_state(|| None::<Rc<TaskRow>>);

    let route = &props.route;
    let shown_source = frozen.as_ref().unwrap_or(&props.tasks);
    let filtered: Rc<VecDeque<FeedRow>> = {
        let route = route.clone();
        let source = Rc::clone(shown_source);
        use_memo((route, source), |(route, source)| {
            Rc::new(
                source
                    .iter()
                    .filter(|row| row_matches(route, row))
                    .cloned()
                    .collect::<VecDeque<_>>(),
            )
        })
        .as_ref()
        .clone()
    };
    let held = match &*frozen {
        Some(frozen) => {
            let head = frozen.front().map(FeedRow::key);
            props
                .tasks
                .iter()
                .take_while(|row| Some(row.key()) != head)
                .filter(|row| row.task().is_some() && row_matches(route, row))
                .count()
        }
        None => 0,
    };

    let onwatch = {
        let onroute = props.onroute.clone();
        let route = route.clone();
        Callback::from(move |target: SubscribeTarget| {
            let agents = match target.as_str() {
                cortex_shared::ALL_AGENTS => Vec::new(),
                agent => vec![agent.to_owned()],
            };
            onroute.emit(Route {
                agents,
                ..route.clone()
            });
        })
    };
    let set = |f: fn(&mut Route, String)| {
        let onroute = props.onroute.clone();
        let route = route.clone();
        move |value: String| {
            let mut next = route.clone();
            f(&mut next, value);
            onroute.emit(next);
        }
    };
    let onpriority = {
        let set = set(|r, v| r.priority = v);
        Callback::from(move |e: Event| set(e.target_unchecked_into::<HtmlSelectElement>().value()))
    };
    let ontype = {
        let set = set(|r, v| r.task_type = v);
        Callback::from(move |e: InputEvent| {
            set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let onsearch = {
        let set = set(|r, v| r.search = v);
        Callback::from(move |e: InputEvent| {
            set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let onclear = {
        let onroute = props.onroute.clone();
        let route = route.clone();
        Callback::from(move |_: MouseEvent| {
            onroute.emit(Route {
                priority: String::new(),
                task_type: String::new(),
                search: String::new(),
                ..route.clone()
            })
        })
    };
    let onpause = {
        let frozen = frozen.clone();
        let tasks = Rc::clone(&props.tasks);
        Callback::from(move |_: MouseEvent| {
            if frozen.is_some() {
                frozen.set(None);
            } else {
                frozen.set(Some(Rc::clone(&tasks)));
            }
        })
    };
    let onview = {
        let viewing = viewing.clone();
        Callback::from(move |row: Rc<TaskRow>| viewing.set(Some(row)))
    };
    let onclose = {
        let viewing = viewing.clone();
        Callback::from(move |()| viewing.set(None))
    };
    let paused = frozen.is_some();
    let picked = if route.agents.is_empty() {
        "every agent".to_owned()
    } else {
        route.agents.join(", ")
    };

    html! {
        <div id="view-tasks" class="view">
            <AgentPicker target={props.target.clone()} watching={props.watching.clone()} {onwatch} />
            <p id="picked-agents" class="picked" data-agents={route.agents.join(",")}>
                { "Showing tasks for " }<strong>{ picked }</strong>
            </p>
            <form id="task-filters" class="filters" onsubmit={Callback::from(|e: SubmitEvent| e.prevent_default())}>
                <label>{ "Priority " }
                    <select id="filter-priority" onchange={onpriority}>
                        <option value="" selected={route.priority.is_empty()}>{ "any" }</option>
                        { for Priority::ALL.into_iter().map(|p| html! {
                            <option value={p.as_str()} selected={route.priority == p.as_str()}>{ p.as_str() }</option>
                        }) }
                    </select>
                </label>
                <label>{ "Type " }
                    <input id="filter-type" type="text" value={route.task_type.clone()} oninput={ontype}
                        placeholder="any" autocomplete="off" spellcheck="false" />
                </label>
                <label>{ "Search " }
                    <input id="filter-search" type="search" value={route.search.clone()} oninput={onsearch}
                        placeholder="text in payload or id" autocomplete="off" spellcheck="false" />
                </label>
                <button id="filter-clear" type="button" onclick={onclear}>{ "Clear" }</button>
                <button id="pause-btn" type="button" onclick={onpause} data-paused={paused.to_string()}
                    aria-pressed={paused.to_string()}>
                    { if paused { "Resume" } else { "Pause" } }
                </button>
                if paused {
                    <span id="paused-count" class="paused-count" role="status" data-count={held.to_string()}>
                        { format!("Paused: {held} new") }
                    </span>
                }
            </form>
            <div class="columns">
                <TaskFeed tasks={filtered} {onview} />
                <HeartbeatPanel heartbeat={props.heartbeat.clone()} />
            </div>
            <PayloadViewer row={(*viewing).clone()} {onclose} />
        </div>
    }
}
