//! A task's state per agent as the `lifecycle` frames tell it, one chip per agent:
//! `pink: in progress on pink-1 for 12 s`, `blue: done in 340 ms`.

use crate::hooks::use_now;
use crate::live::AgentLive;
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`TaskStates`].
#[derive(Debug, Properties)]
pub struct TaskStatesProps {
    /// The states, by agent.
    pub states: Rc<Vec<AgentLive>>,
    /// The task's `to` (the agent of its `published` record; empty: every agent).
    pub to: String,
}

impl PartialEq for TaskStatesProps {
    fn eq(&self, other: &Self) -> bool {
        // Replaced, not edited, when a frame changes them (see `live::LiveStates`).
        Rc::ptr_eq(&self.states, &other.states) && self.to == other.to
    }
}

/// The chips; in-progress ones count the seconds.
#[function_component(TaskStates)]
pub fn task_states(props: &TaskStatesProps) -> Html {
    let ticking = props.states.iter().any(AgentLive::ticks);
    let now = use_now(ticking);
    let named = props.states.iter().any(|a| a.agent.is_some());
    html! {
        <ul class="task-states" aria-label="State per agent">
            { for props.states.iter()
                // The published record stands for the task's `to` until an agent's own
                // record comes.
                .filter(|a| a.agent.is_some() || !named)
                .map(|a| {
                    let agent = a.agent.clone().unwrap_or_else(|| {
                        if props.to.is_empty() { "every agent".to_owned() } else { props.to.clone() }
                    });
                    let state = a.state.as_str();
                    html! {
                        <li class={classes!("task-state", format!("state-{state}"))}
                            data-agent={agent.clone()} data-state={state}
                            data-consumer={a.consumer.clone().unwrap_or_default()}>
                            <span class="task-state-agent">{ agent }</span>
                            { ": " }
                            <span class="task-state-text">{ a.text(now) }</span>
                        </li>
                    }
                }) }
        </ul>
    }
}
