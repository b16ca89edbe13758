//! The page header: the product's name, the navigation, the connection's state, Redis
//! and the version.

use crate::connection::ConnState;
use crate::route::{Route, View};
use yew::prelude::*;

/// Properties of [`Header`].
#[derive(Debug, Properties, PartialEq)]
pub struct HeaderProps {
    /// Where the connection to the relay is.
    pub connection: ConnState,
    /// `/readyz`: Redis reachable, not, or unknown.
    #[prop_or_default]
    pub redis_ready: Option<bool>,
    /// The current route (for the navigation links, which keep agents and filters).
    #[prop_or_default]
    pub route: Route,
}

/// The page header.
#[function_component(Header)]
pub fn header(props: &HeaderProps) -> Html {
    let state = props.connection.as_str();
    let (redis_state, redis_text) = match props.redis_ready {
        Some(true) => ("ok", "Redis ok"),
        Some(false) => ("down", "Redis unavailable"),
        None => ("unknown", "Redis ?"),
    };
    let conn_text = match props.connection {
        ConnState::Reconnecting => "reconnecting…",
        other => other.as_str(),
    };
    html! {
        <header class="topbar">
            <h1 class="brand">{ "Cortex Relay" }</h1>
            <nav id="views" class="views" aria-label="Views">
                { for View::ALL.into_iter().map(|view| {
                    let current = view == props.route.view;
                    html! {
                        <a id={format!("nav-{}", view.as_str())} href={props.route.with_view(view).to_hash()}
                            class={classes!("nav-link", current.then_some("current"))}
                            aria-current={current.then_some("page")}>{ view.title() }</a>
                    }
                }) }
            </nav>
            <span class="status-group">
                <span id="conn-state" class={classes!("conn", format!("conn-{state}"))}
                    data-state={state} role="status" aria-live="polite"
                    title="Connection to the relay">
                    { conn_text }
                </span>
                <span id="redis-state" class={classes!("conn", format!("redis-{redis_state}"))}
                    data-state={redis_state} title="The relay's Redis (/readyz)">{ redis_text }</span>
                <span id="app-version" class="version" title="Dashboard version">
                    { concat!("v", env!("CARGO_PKG_VERSION")) }
                </span>
            </span>
        </header>
    }
}
