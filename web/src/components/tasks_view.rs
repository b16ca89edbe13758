//! The live task feed for the picked agents, with filters, search and pause; or, when
//! the URL names a time range, the picked agents' tasks in that range.

use super::{AgentPicker, HeartbeatPanel, PayloadViewer, TaskFeed};
use crate::format::{parse_utc_ms, utc_ms};
use crate::hooks::{use_history, History, HISTORY_ROWS};
use crate::live::LiveStates;
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
    /// The tasks' states per agent.
    #[prop_or_default]
    pub live: Rc<LiveStates>,
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
    let history = use_history(route);
    let history_source: Option<Rc<VecDeque<FeedRow>>> = match &history {
        History::Off => None,
        History::Loaded { rows, .. } => Some(Rc::clone(rows)),
        History::Loading | History::Failed(_) => Some(Rc::default()),
    };
    let shown_source = history_source
        .as_ref()
        .or(frozen.as_ref())
        .unwrap_or(&props.tasks);
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
    let history_form =
        html! { <HistoryForm route={route.clone()} onroute={props.onroute.clone()} /> };
    let history_status = match &history {
        History::Off => Html::default(),
        History::Loading => html! {
            <p id="history-status" class="history-status" data-state="loading" role="status">
                { "Loading the range…" }
            </p>
        },
        History::Failed(error) => html! {
            <p id="history-status" class="history-status field-error" data-state="failed" role="alert">
                { format!("Could not load the range: {error}") }
            </p>
        },
        History::Loaded {
            rows,
            matched,
            truncated,
        } => {
            let to = if route.to.is_empty() {
                "now"
            } else {
                route.to.as_str()
            };
            let mut text = format!("History {} to {to}: {matched} tasks", route.from);
            if *matched > rows.len() {
                text.push_str(&format!(", the newest {HISTORY_ROWS} shown"));
            }
            if *truncated {
                text.push_str("; the range holds more than was read, narrow it to see the rest");
            }
            html! {
                <p id="history-status" class="history-status" data-state="loaded" role="status"
                    data-count={rows.len().to_string()} data-matched={matched.to_string()}
                    data-truncated={truncated.to_string()}>
                    { text }
                </p>
            }
        }
    };
    let in_history = !matches!(history, History::Off);
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
                if !in_history {
                    <button id="pause-btn" type="button" onclick={onpause} data-paused={paused.to_string()}
                        aria-pressed={paused.to_string()}>
                        { if paused { "Resume" } else { "Pause" } }
                    </button>
                }
                if paused && !in_history {
                    <span id="paused-count" class="paused-count" role="status" data-count={held.to_string()}>
                        { format!("Paused: {held} new") }
                    </span>
                }
            </form>
            { history_form }
            { history_status }
            <div class="columns">
                <TaskFeed tasks={filtered} live={props.live.clone()} {onview} />
                <HeartbeatPanel heartbeat={props.heartbeat.clone()} />
            </div>
            <PayloadViewer row={(*viewing).clone()} {onclose} />
        </div>
    }
}

/// Properties of [`HistoryForm`].
#[derive(Debug, Properties, PartialEq)]
pub struct HistoryFormProps {
    /// The route (its `from` and `to`).
    pub route: Route,
    /// The range changed.
    pub onroute: Callback<Route>,
}

/// Checks the form's text: the range as the URL holds it (`from`, `to`), or what is
/// wrong with it.
pub fn history_range_text(from: &str, to: &str) -> Result<(String, String), String> {
    let since = parse_utc_ms(from).ok_or_else(|| {
        format!(
            "From: \u{201c}{}\u{201d} is not a UTC time like 2024-01-06 16:00:00.",
            from.trim()
        )
    })?;
    let until = match to.trim() {
        "" => None,
        text => Some(parse_utc_ms(text).ok_or_else(|| {
            format!("To: \u{201c}{text}\u{201d} is not a UTC time like 2024-01-06 17:00:00.")
        })?),
    };
    if until.is_some_and(|until| until < since) {
        return Err("To is before From.".to_owned());
    }
    Ok((utc_ms(since), until.map(utc_ms).unwrap_or_default()))
}

/// The from/to control: times in UTC; Load puts the range in the URL, Live clears it.
#[function_component(HistoryForm)]
pub fn history_form(props: &HistoryFormProps) -> Html {
    let from = use_state(|| props.route.from.clone());
    let to = use_state(|| props.route.to.clone());
    let error = use_state(String::new);
    {
        let (from, to) = (from.clone(), to.clone());
        use_effect_with(
            (props.route.from.clone(), props.route.to.clone()),
            move |(f, t)| {
                from.set(f.clone());
                to.set(t.clone());
            },
        );
    }
    let text_input = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |e: InputEvent| {
            state.set(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let onsubmit = {
        let (from, to, error) = (from.clone(), to.clone(), error.clone());
        let onroute = props.onroute.clone();
        let route = props.route.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            match history_range_text(&from, &to) {
                Ok((from, to)) => {
                    error.set(String::new());
                    onroute.emit(Route {
                        from,
                        to,
                        ..route.clone()
                    });
                }
                Err(why) => error.set(why),
            }
        })
    };
    let onlive = {
        let onroute = props.onroute.clone();
        let route = props.route.clone();
        let error = error.clone();
        Callback::from(move |_: MouseEvent| {
            error.set(String::new());
            onroute.emit(Route {
                from: String::new(),
                to: String::new(),
                ..route.clone()
            })
        })
    };
    let active = props.route.history_range().is_some();
    html! {
        <form id="history-form" class="history" {onsubmit} aria-label="History by time range">
            <label>{ "From " }
                <input id="history-from" type="text" value={(*from).clone()} oninput={text_input(&from)}
                    placeholder="2024-01-06 16:00:00" autocomplete="off" spellcheck="false"
                    aria-describedby="history-error" />
            </label>
            <label>{ "To " }
                <input id="history-to" type="text" value={(*to).clone()} oninput={text_input(&to)}
                    placeholder="now" autocomplete="off" spellcheck="false"
                    aria-describedby="history-error" />
            </label>
            <span class="muted">{ "UTC" }</span>
            <button id="history-load" type="submit">{ "Load range" }</button>
            if active {
                <button id="history-live" type="button" onclick={onlive}>{ "Back to live" }</button>
            }
            <p id="history-error" class="field-error" role="alert">{ (*error).clone() }</p>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_range_text() {
        assert_eq!(
            history_range_text("2024-01-06 16:00", ""),
            Ok(("2024-01-06T16:00:00Z".into(), String::new()))
        );
        assert_eq!(
            history_range_text("2024-01-06 16:00", "2024-01-06T17:00:00Z"),
            Ok(("2024-01-06T16:00:00Z".into(), "2024-01-06T17:00:00Z".into()))
        );
        assert!(history_range_text("soon", "")
            .unwrap_err()
            .starts_with("From:"));
        assert!(history_range_text("2024-01-06", "later")
            .unwrap_err()
            .starts_with("To:"));
        assert_eq!(
            history_range_text("2024-01-06 17:00", "2024-01-06 16:00"),
            Err("To is before From.".into())
        );
    }
}
