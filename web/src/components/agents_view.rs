//! Every agent: presence, last status, pending tasks, consumers; picking agents.

use crate::format::{duration_ms, pretty_json};
use crate::route::{Route, View};
use cortex_shared::rest::AgentInfo;
use std::collections::BTreeMap;
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`AgentsView`].
#[derive(Debug, Properties, PartialEq)]
pub struct AgentsViewProps {
    /// Every known agent.
    pub agents: Rc<BTreeMap<String, AgentInfo>>,
    /// Whether the list was loaded.
    pub loaded: bool,
    /// The route (picked agents).
    pub route: Route,
    /// The picked agents changed.
    pub onroute: Callback<Route>,
    /// The operator asked to reload the list.
    pub onrefresh: Callback<()>,
}

/// The agents view.
#[function_component(AgentsView)]
pub fn agents_view(props: &AgentsViewProps) -> Html {
    let route = &props.route;
    let toggle = |name: String| {
        let onroute = props.onroute.clone();
        let route = route.clone();
        Callback::from(move |_: Event| {
            let mut next = route.clone();
            if let Some(i) = next.agents.iter().position(|a| *a == name) {
                next.agents.remove(i);
            } else {
                next.agents.push(name.clone());
            }
            onroute.emit(next);
        })
    };
    let onall = {
        let onroute = props.onroute.clone();
        let route = route.clone();
        Callback::from(move |_: MouseEvent| {
            onroute.emit(Route {
                agents: Vec::new(),
                ..route.clone()
            })
        })
    };
    let tasks_link = route.with_view(View::Tasks).to_hash();
    html! {
        <div id="view-agents" class="view">
            <section class="panel">
                <h2>{ "Agents" }<span class="count">{ props.agents.len() }</span></h2>
                <div class="toolbar">
                    <button id="agents-all" type="button" onclick={onall}
                        aria-pressed={route.agents.is_empty().to_string()}>{ "All agents" }</button>
                    <button id="agents-refresh" type="button" onclick={props.onrefresh.reform(|_| ())}>{ "Refresh" }</button>
                    <a id="agents-to-tasks" href={tasks_link}>{ "Show their tasks →" }</a>
                </div>
                if props.agents.is_empty() {
                    <p class="empty">{ if props.loaded { "No agents yet." } else { "Loading…" } }</p>
                }
                <ul id="agents-list" class="agents-list">
                    { for props.agents.values().map(|agent| {
                        let picked = route.agents.contains(&agent.name);
                        let presence = agent.presence.as_str();
                        let warning = agent.stuck || agent.pending_on_dead_consumers > 0;
                        let alive = agent.consumers.iter().filter(|c| c.alive).count();
                        let id = format!("pick-{}", agent.name);
                        html! {
                            <li key={agent.name.clone()} class={classes!("agent", picked.then_some("picked"))}
                                data-agent={agent.name.clone()} data-presence={presence}
                                data-picked={picked.to_string()}>
                                <div class="agent-head">
                                    <input type="checkbox" class="agent-pick" id={id.clone()}
                                        checked={picked} onchange={toggle(agent.name.clone())} />
                                    <label for={id} class="agent-name">{ &agent.name }</label>
                                    <a class="agent-open small" href={crate::route::Page::Agent(agent.name.clone()).to_hash()}
                                        aria-label={format!("Open agent {}", agent.name)}>{ "Open" }</a>
                                    <span class={classes!("presence", format!("presence-{presence}"))}>{ presence }</span>
                                    <span class="agent-pending" title="tasks delivered, not acked">
                                        { format!("{} pending", agent.pending) }
                                    </span>
                                    <span class="agent-consumers" title="live consumers">
                                        { format!("{alive}/{} consumers alive", agent.consumers.len()) }
                                    </span>
                                </div>
                                if warning {
                                    <p class="agent-warning" role="alert">
                                        { format!("⚠ {} pending task(s) held by dead consumers", agent.pending_on_dead_consumers) }
                                    </p>
                                }
                                if let Some(status) = &agent.status {
                                    <pre class="agent-status">{ pretty_json(status) }</pre>
                                }
                                if !agent.consumers.is_empty() {
                                    <ul class="consumers">
                                        { for agent.consumers.iter().map(|c| html! {
                                            <li class={classes!("consumer", (!c.alive).then_some("dead"))} data-consumer={c.name.clone()}>
                                                <code>{ &c.name }</code>
                                                { format!(" {} pending, idle {}{}", c.pending, duration_ms(c.idle_ms), if c.alive { "" } else { " (dead)" }) }
                                            </li>
                                        }) }
                                    </ul>
                                }
                            </li>
                        }
                    }) }
                </ul>
            </section>
        </div>
    }
}
