//! The dashboard page: header, agent picker, task feed, heartbeat, relay errors.

use super::{AgentPicker, ErrorBanner, Header, HeartbeatPanel, TaskFeed};
use crate::hooks::use_relay;
use cortex_shared::SubscribeTarget;
use yew::prelude::*;

/// The whole page, fed by the relay from the context.
#[function_component(Dashboard)]
pub fn dashboard() -> Html {
    let relay = use_relay();
    let onwatch = {
        let relay = relay.clone();
        Callback::from(move |target: SubscribeTarget| relay.watch(target))
    };
    let ondismiss = {
        let relay = relay.clone();
        Callback::from(move |()| relay.dismiss_error())
    };
    let state = relay.state();
    html! {
        <>
            <Header connection={state.connection} />
            <main class="layout">
                <ErrorBanner error={state.error.clone()} {ondismiss} />
                <AgentPicker target={state.target.clone()} watching={state.watching.clone()}
                    {onwatch} />
                <div class="columns">
                    <TaskFeed tasks={state.tasks.clone()} />
                    <HeartbeatPanel heartbeat={state.heartbeat.clone()} />
                </div>
            </main>
        </>
    }
}
