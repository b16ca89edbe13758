//! The dashboard page: header with navigation, and the view the URL names.

use super::{
    AgentPage, AgentsView, DlqView, ErrorBanner, Header, LoginForm, PublishForm, StreamsView,
    TaskPage, TasksView, TracePage,
};
use crate::hooks::{use_poll, use_relay, use_route};
use crate::route::{Page, View};
use crate::services;
use crate::state::Action;
use cortex_shared::SubscribeTarget;
use std::time::Duration;
use yew::prelude::*;

/// The whole page, fed by the relay from the context.
#[function_component(Dashboard)]
pub fn dashboard() -> Html {
    let relay = use_relay();
    let (route, navigate) = use_route();

    // One agent picked: watch it; several or all: watch every agent and filter here.
    {
        let relay = relay.clone();
        use_effect_with(route.agents.clone(), move |agents| {
            let agent = match agents.as_slice() {
                [one] => one.as_str(),
                _ => cortex_shared::ALL_AGENTS,
            };
            if let Ok(target) = SubscribeTarget::parse(agent) {
                relay.watch(target);
            }
        });
    }
    let load_agents = {
        let relay = relay.clone();
        Callback::from(move |()| {
            let relay = relay.clone();
            yew::platform::spawn_local(async move {
                if let Ok(reply) = services::agents::list().await {
                    relay.dispatch(Action::Agents(reply));
                }
            });
        })
    };
    use_poll(Duration::from_secs(5), load_agents.clone());
    {
        let relay = relay.clone();
        use_poll(
            Duration::from_secs(2),
            Callback::from(move |()| {
                let relay = relay.clone();
                yew::platform::spawn_local(async move {
                    relay.dispatch(Action::Ready(services::health::redis_ready().await));
                    if let Ok(metrics) = services::metrics::messaging().await {
                        relay.dispatch(Action::Metrics(metrics));
                    }
                });
            }),
        );
    }
    let ondismiss = {
        let relay = relay.clone();
        Callback::from(move |()| relay.dismiss_error())
    };
    let ondlqloaded = {
        let relay = relay.clone();
        Callback::from(move |()| relay.dispatch(Action::DlqLoaded))
    };
    let onsignout = Callback::from(|()| {
        services::auth::forget();
        if let Some(window) = web_sys::window() {
            let _ = window.location().reload();
        }
    });
    let state = relay.state();
    let view = match (&route.page, route.view) {
        _ if state.auth_required.is_some() => html! {
            <LoginForm reason={state.auth_required.clone().unwrap_or_default()} />
        },
        (
            Some(Page::Task {
                id,
                stream,
                entry_id,
            }),
            _,
        ) => {
            let live = if stream.is_empty() {
                None
            } else {
                state.live.get(stream, entry_id).cloned()
            };
            html! { <TaskPage id={id.clone()} stream={stream.clone()} entry_id={entry_id.clone()} {live} /> }
        }
        (Some(Page::Agent(name)), _) => html! {
            <AgentPage name={name.clone()} info={state.agents.get(name).cloned()} />
        },
        (Some(Page::Trace(id)), _) => html! { <TracePage id={id.clone()} /> },
        (None, View::Tasks) => html! {
            <TasksView tasks={state.tasks.clone()} live={state.live.clone()} target={state.target.clone()}
                watching={state.watching.clone()} heartbeat={state.heartbeat.clone()}
                route={route.clone()} onroute={navigate.clone()} />
        },
        (None, View::Agents) => html! {
            <AgentsView agents={state.agents.clone()} loaded={state.agents_loaded}
                route={route.clone()} onroute={navigate.clone()} onrefresh={load_agents} />
        },
        (None, View::Dlq) => html! {
            <DlqView route={route.clone()} onroute={navigate.clone()} revision={state.dlq_revision}
                gone={state.dlq_gone.clone()} onloaded={ondlqloaded} />
        },
        (None, View::Streams) => html! {
            <StreamsView metrics={state.metrics.clone()} throughput={state.throughput.clone()} />
        },
        (None, View::Publish) => html! { <PublishForm route={route.clone()} /> },
    };
    html! {
        <>
            <Header connection={state.connection} retry_at_ms={state.retry_at_ms}
                redis_ready={state.redis_ready} route={route.clone()}
                signed_in={services::auth::token().is_some()} {onsignout} />
            <main id="main" class="layout" data-view={route.view.as_str()}
                data-watching={state.watching.clone().unwrap_or_default()}>
                <ErrorBanner error={state.error.clone()} {ondismiss} />
                { view }
            </main>
        </>
    }
}
