//! The watched agent's latest heartbeat.

use crate::format::{human_time, rfc3339};
use crate::state::HeartbeatView;
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`HeartbeatPanel`].
#[derive(Debug, Properties, PartialEq)]
pub struct HeartbeatPanelProps {
    /// The latest heartbeat, if one arrived since the agent was chosen.
    pub heartbeat: Option<Rc<HeartbeatView>>,
}

/// The latest heartbeat: who, when, and the status it reported.
#[function_component(HeartbeatPanel)]
pub fn heartbeat_panel(props: &HeartbeatPanelProps) -> Html {
    let (agent, time) = match &props.heartbeat {
        Some(hb) => (hb.agent.clone(), hb.time.to_string()),
        None => (String::new(), String::new()),
    };
    let body = match &props.heartbeat {
        Some(hb) => html! {
            <>
                <p class="heartbeat-meta">
                    <strong class="heartbeat-agent">{ &hb.agent }</strong>
                    { " at " }
                    <time class="heartbeat-time" datetime={rfc3339(hb.time)}
                        title={format!("unix {}", hb.time)}>{ human_time(hb.time) }</time>
                </p>
                <pre class="heartbeat-status">{ &hb.status }</pre>
            </>
        },
        None => html! { <p class="empty">{ "No heartbeat yet." }</p> },
    };
    html! {
        <section id="heartbeat" class="panel heartbeat" data-agent={agent} data-time={time}>
            <h2>{ "Latest heartbeat" }</h2>
            { body }
        </section>
    }
}
