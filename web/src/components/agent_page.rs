//! `#/agents/<name>`: one agent: what it is working on now and for how long, what waits
//! for it per priority (and the oldest's age), its outcomes in the last 5 minutes and
//! hour, its recent heartbeats. Read every 5 s from `GET /api/v1/tasks?agent=…&state=…`,
//! `GET /api/v1/agents/{name}/outcomes` (done, failed, timed out, dead: the counters the
//! lifecycle record keeps in Redis), the DLQ listing (its dead letters of the last hour,
//! whoever wrote them) and the heartbeat stream.

use crate::format::{age_ms, entry_id_ms, human_time, pretty_json, rfc3339};
use crate::hooks::{use_now, use_poll};
use crate::route::{Page, Route, View};
use crate::services::{self, get, ApiError};
use cortex_shared::lifecycle::{AgentOutcomes, OutcomeCounts, TaskListItem, TaskState};
use cortex_shared::rest::{AgentInfo, DlqPage, ReplayPage};
use cortex_shared::{Heartbeat, Priority, HEARTBEAT_STREAM};
use std::rc::Rc;
use std::time::Duration;
use yew::prelude::*;

/// Tasks per page of the task list.
const PAGE: usize = 200;
/// Pages read per state at most (the rest is counted as "more").
const MAX_PAGES: usize = 5;
/// Heartbeats shown.
const HEARTBEATS: usize = 10;
/// Heartbeats read from the stream's end to find them (every agent's).
const HEARTBEAT_SCAN: usize = 500;

/// Properties of [`AgentPage`].
#[derive(Debug, Properties, PartialEq)]
pub struct AgentPageProps {
    /// The agent.
    pub name: String,
    /// Its presence and consumers, from `GET /api/v1/agents`.
    #[prop_or_default]
    pub info: Option<AgentInfo>,
}

/// What the page read.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct AgentData {
    /// In progress, oldest first.
    pub in_progress: Vec<TaskListItem>,
    /// Retrying, oldest first.
    pub retrying: Vec<TaskListItem>,
    /// Waiting, oldest first.
    pub waiting: Vec<TaskListItem>,
    /// More than read, per list (in progress, retrying, waiting).
    pub more: [bool; 3],
    /// Dead letters of the agent in the last hour: `(dead_at unix s)`; more than read.
    pub dead_at: Vec<i64>,
    /// The DLQ held more letters in the hour than were read.
    pub dead_more: bool,
    /// Its newest heartbeats, newest first.
    pub heartbeats: Vec<(String, Heartbeat)>,
    /// Its outcomes over the last hour; `None` if they could not be read.
    pub outcomes: Option<AgentOutcomes>,
}

/// Waiting tasks of one priority: how many, and the oldest's entry time (unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WaitingRow {
    /// The priority.
    pub priority: Priority,
    /// How many wait.
    pub count: usize,
    /// When the oldest was added (from its entry id).
    pub oldest_ms: Option<u64>,
}

/// Waiting tasks per priority, every priority listed (oldest first: the list is).
pub(crate) fn waiting_by_priority(waiting: &[TaskListItem]) -> Vec<WaitingRow> {
    Priority::ALL
        .into_iter()
        .map(|priority| {
            let mut of = waiting.iter().filter(|i| i.task.task.priority == priority);
            let first = of.next();
            WaitingRow {
                priority,
                count: first.map_or(0, |_| 1 + of.count()),
                oldest_ms: first.and_then(|i| entry_id_ms(&i.task.entry_id)),
            }
        })
        .collect()
}

/// Whether a dead letter is `agent`'s: the agent that gave up on it, or (older letters)
/// the one it was addressed to.
fn letter_is_of(letter: &cortex_shared::DeadLetter, agent: &str) -> bool {
    match &letter.failed_agent {
        Some(failed) => failed == agent,
        None => letter.original_to == agent,
    }
}

async fn read(name: String, now_ms: u64) -> Result<AgentData, ApiError> {
    let mut data = AgentData::default();
    for (i, state) in [
        TaskState::InProgress,
        TaskState::Retrying,
        TaskState::Waiting,
    ]
    .into_iter()
    .enumerate()
    {
        let (reply, more) = services::lifecycle::list(&name, state, PAGE, MAX_PAGES).await?;
        data.more[i] = more;
        match i {
            0 => data.in_progress = reply.items,
            1 => data.retrying = reply.items,
            _ => data.waiting = reply.items,
        }
    }
    let since = now_ms.saturating_sub(3_600_000);
    if let Ok(page) = get::<DlqPage>(&format!(
        "/api/v1/messaging/dlq?limit=1000&since_ms={since}"
    ))
    .await
    {
        data.dead_more = page.next_cursor.is_some();
        data.dead_at = page
            .items
            .iter()
            .filter(|i| letter_is_of(&i.letter, &name))
            .map(|i| i.letter.dead_at)
            .collect();
    }
    data.outcomes = get::<AgentOutcomes>(&format!(
        "/api/v1/agents/{}/outcomes",
        crate::route::encode(&name)
    ))
    .await
    .ok();
    let path = format!(
        "/api/v1/streams/{}/entries?last={HEARTBEAT_SCAN}",
        crate::route::encode(HEARTBEAT_STREAM)
    );
    if let Ok(page) = get::<ReplayPage>(&path).await {
        data.heartbeats = page
            .entries
            .into_iter()
            .rev()
            .filter_map(|e| Some((e.entry_id, e.heartbeat?)))
            .filter(|(_, hb)| hb.agent == name)
            .take(HEARTBEATS)
            .collect();
    }
    Ok(data)
}

fn counts_text(c: OutcomeCounts) -> Html {
    html! {
        <>
            <span class="outcome-done" data-count={c.done.to_string()}>{ format!("{} done", c.done) }</span>
            { ", " }
            <span class="outcome-failed" data-count={c.failed.to_string()}>{ format!("{} failed", c.failed) }</span>
            { ", " }
            <span class="outcome-timed-out" data-count={c.timed_out.to_string()}>{ format!("{} timed out", c.timed_out) }</span>
        </>
    }
}

fn task_list(items: &[TaskListItem], more: bool, now: u64, id: &str, empty: &str) -> Html {
    html! {
        <>
            if items.is_empty() {
                <p class="empty">{ empty.to_owned() }</p>
            }
            <ul id={id.to_owned()} class="agent-tasks">
                { for items.iter().map(|item| {
                    let t = &item.task;
                    let s = &item.state;
                    let since = s.since_ms.or_else(|| entry_id_ms(&t.entry_id));
                    let text = match s.state {
                        TaskState::InProgress => format!("on {} for {}",
                            s.consumer.clone().unwrap_or_else(|| "?".into()),
                            since.map(|at| age_ms(now, at)).unwrap_or_else(|| "?".into())),
                        TaskState::Retrying => format!("after delivery {}{}", s.deliveries,
                            s.last_error.as_ref().map(|e| format!(": \u{201c}{e}\u{201d}")).unwrap_or_default()),
                        _ => format!("waiting for {}", since.map(|at| age_ms(now, at)).unwrap_or_else(|| "?".into())),
                    };
                    html! {
                        <li class="agent-task" data-task-id={t.task.id.clone()} data-state={s.state.as_str()}
                            data-consumer={s.consumer.clone().unwrap_or_default()}>
                            <span class={classes!("badge", format!("priority-{}", t.task.priority.as_str()))}>{ t.task.priority.as_str() }</span>
                            <a href={Page::task(&t.task.id, &t.stream, &t.entry_id).to_hash()}><code>{ &t.task.id }</code></a>
                            <span class="task-type">{ &t.task.task_type }</span>
                            <span class="agent-task-text">{ text }</span>
                        </li>
                    }
                }) }
            </ul>
            if more {
                <p class="muted">{ format!("Only the oldest {} are listed.", PAGE * MAX_PAGES) }</p>
            }
        </>
    }
}

/// The agent page.
#[function_component(AgentPage)]
pub fn agent_page(props: &AgentPageProps) -> Html {
    let data = use_state(|| None::<Result<Rc<AgentData>, ApiError>>);
    let tick = {
        let data = data.clone();
        let name = props.name.clone();
        Callback::from(move |()| {
            let data = data.clone();
            let name = name.clone();
            yew::platform::spawn_local(async move {
                let now = js_sys::Date::now() as u64;
                data.set(Some(read(name, now).await.map(Rc::new)));
            });
        })
    };
    {
        // A new agent: start from nothing.
        let data = data.clone();
        use_effect_with(props.name.clone(), move |_| data.set(None));
    }
    use_poll(Duration::from_secs(5), tick);
    let ticking =
        matches!(&*data, Some(Ok(d)) if !d.in_progress.is_empty() || !d.waiting.is_empty());
    let now = use_now(ticking);

    let presence = props
        .info
        .as_ref()
        .map(|i| i.presence.as_str())
        .unwrap_or("unknown");
    let tasks_link = Route {
        agents: vec![props.name.clone()],
        ..Route::default()
    }
    .with_view(View::Tasks)
    .to_hash();

    let body = match &*data {
        None => html! { <p class="empty" id="agent-loading">{ "Loading…" }</p> },
        Some(Err(error)) => html! {
            <p id="agent-page-error" class="field-error" role="alert" data-code={error.code.clone()}>
                { format!("Could not load the agent's tasks: {error}") }
            </p>
        },
        Some(Ok(d)) => {
            let dead = |window_s: i64| {
                d.dead_at
                    .iter()
                    .filter(|at| **at * 1000 >= now as i64 - window_s * 1000)
                    .count()
            };
            let more = if d.dead_more { "+" } else { "" };
            let counted = |pick: fn(&AgentOutcomes) -> OutcomeCounts| {
                d.outcomes.as_ref().map(pick).unwrap_or_default()
            };
            let note = if d.outcomes.is_some() {
                "Done, failed and timed out: what the relay's consumers did, counted per minute in Redis (agents that ack on Redis directly are not counted). Dead: the dead letter queue."
            } else {
                "The outcome counts could not be read. Dead: the dead letter queue."
            };
            html! {
                <>
                    <section class="panel" id="agent-now">
                        <h3>{ "Working on now" }<span class="count">{ d.in_progress.len() }</span></h3>
                        { task_list(&d.in_progress, d.more[0], now, "agent-in-progress", "Nothing in progress.") }
                        if !d.retrying.is_empty() {
                            <h3>{ "Due again" }<span class="count">{ d.retrying.len() }</span></h3>
                            { task_list(&d.retrying, d.more[1], now, "agent-retrying", "") }
                        }
                    </section>
                    <section class="panel" id="agent-waiting">
                        <h3>{ "Waiting" }<span class="count">{ format!("{}{}", d.waiting.len(), if d.more[2] { "+" } else { "" }) }</span></h3>
                        <table class="waiting">
                            <thead><tr><th>{ "priority" }</th><th>{ "waiting" }</th><th>{ "oldest waiting" }</th></tr></thead>
                            <tbody>
                            { for waiting_by_priority(&d.waiting).into_iter().map(|row| html! {
                                <tr class="waiting-row" data-priority={row.priority.as_str()} data-count={row.count.to_string()}>
                                    <td><span class={classes!("badge", format!("priority-{}", row.priority.as_str()))}>{ row.priority.as_str() }</span></td>
                                    <td>{ row.count }</td>
                                    <td class="waiting-oldest">{ row.oldest_ms.map(|at| age_ms(now, at)).unwrap_or_else(|| "—".into()) }</td>
                                </tr>
                            }) }
                            </tbody>
                        </table>
                    </section>
                    <section class="panel" id="agent-outcomes">
                        <h3>{ "Outcomes" }</h3>
                        <table class="outcomes">
                            <thead><tr><th></th><th>{ "done, failed, timed out" }</th><th>{ "dead" }</th></tr></thead>
                            <tbody>
                                <tr id="outcomes-5m"><th>{ "last 5 min" }</th><td>{ counts_text(counted(|o| o.last_5_min)) }</td>
                                    <td class="outcome-dead" data-count={dead(300).to_string()}>{ format!("{}{more}", dead(300)) }</td></tr>
                                <tr id="outcomes-1h"><th>{ "last hour" }</th><td>{ counts_text(counted(|o| o.last_hour)) }</td>
                                    <td class="outcome-dead" data-count={dead(3600).to_string()}>{ format!("{}{more}", dead(3600)) }</td></tr>
                            </tbody>
                        </table>
                        <p class="muted">{ note }</p>
                    </section>
                    <section class="panel" id="agent-heartbeats">
                        <h3>{ "Recent heartbeats" }</h3>
                        if d.heartbeats.is_empty() {
                            <p class="empty">{ "No recent heartbeat." }</p>
                        }
                        <ol class="heartbeats">
                            { for d.heartbeats.iter().map(|(id, hb)| html! {
                                <li class="agent-heartbeat" data-entry-id={id.clone()}>
                                    <time datetime={rfc3339(hb.time)}>{ human_time(hb.time) }</time>
                                    { format!(" ({} ago)", age_ms(now, hb.time.max(0) as u64 * 1000)) }
                                    <pre class="heartbeat-status">{ pretty_json(&hb.status) }</pre>
                                </li>
                            }) }
                        </ol>
                    </section>
                </>
            }
        }
    };
    html! {
        <div id="view-agent" class="view page" data-agent={props.name.clone()}
            data-loaded={matches!(&*data, Some(Ok(_))).to_string()}>
            <p class="crumbs"><a href={Route::default().with_view(View::Agents).to_hash()}>{ "← Agents" }</a></p>
            <h2>{ "Agent " }<code>{ &props.name }</code>
                <span class={classes!("presence", format!("presence-{presence}"))}>{ presence }</span></h2>
            <p><a id="agent-to-tasks" href={tasks_link}>{ "Its task feed →" }</a></p>
            { body }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::lifecycle::{TaskAgentState, TaskView};
    use cortex_shared::TaskMessage;

    fn waiting(id: &str, priority: Priority, entry_id: &str) -> TaskListItem {
        TaskListItem {
            task: TaskView {
                task: TaskMessage {
                    id: id.into(),
                    from: "harold".into(),
                    to: "pink".into(),
                    priority,
                    task_type: "t".into(),
                    payload: Default::default(),
                    created: 0,
                    parent_id: None,
                    correlation_id: None,
                },
                stream: format!("cortex:tasks:{}", priority.as_str()),
                entry_id: entry_id.into(),
            },
            state: TaskAgentState {
                agent: "pink".into(),
                group: None,
                state: TaskState::Waiting,
                consumer: None,
                deliveries: 0,
                since_ms: None,
                dlq_id: None,
                last_error: None,
                retried_as: None,
            },
        }
    }

    #[test]
    fn waiting_per_priority_with_the_oldest() {
        let rows = waiting_by_priority(&[
            waiting("a", Priority::High, "1000-0"),
            waiting("b", Priority::Low, "1500-0"),
            waiting("c", Priority::High, "2000-0"),
        ]);
        let view: Vec<_> = rows
            .iter()
            .map(|r| (r.priority.as_str(), r.count, r.oldest_ms))
            .collect();
        assert_eq!(
            view,
            [
                ("critical", 0, None),
                ("high", 2, Some(1000)),
                ("normal", 0, None),
                ("low", 1, Some(1500))
            ]
        );
    }
}
