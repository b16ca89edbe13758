//! The page header: the product's name, the navigation, the connection's state (with a
//! countdown to the next attempt while reconnecting), Redis and the version.

use crate::connection::ConnState;
use crate::format::duration_ms;
use crate::route::{Route, View};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use yew::prelude::*;

/// Properties of [`Header`].
#[derive(Debug, Properties, PartialEq)]
pub struct HeaderProps {
    /// Where the connection to the relay is.
    pub connection: ConnState,
    /// While reconnecting: when the next attempt starts (unix ms).
    #[prop_or_default]
    pub retry_at_ms: Option<u64>,
    /// `/readyz`: Redis reachable, not, or unknown.
    #[prop_or_default]
    pub redis_ready: Option<bool>,
    /// The current route (for the navigation links, which keep agents and filters).
    #[prop_or_default]
    pub route: Route,
    /// A token is stored: offer to sign out.
    #[prop_or_default]
    pub signed_in: bool,
    /// The operator signs out.
    #[prop_or_default]
    pub onsignout: Callback<()>,
}

/// Whole seconds left until `at_ms`, rounded up (0 once it has passed).
fn seconds_until(at_ms: u64, now_ms: u64) -> u64 {
    at_ms.saturating_sub(now_ms).div_ceil(1000)
}

/// Re-renders every 200 ms until `until_ms` has passed; returns the page's clock.
#[hook]
fn use_clock_until(until_ms: Option<u64>) -> u64 {
    let now = use_state(|| js_sys::Date::now() as u64);
    {
        let now = now.clone();
        use_effect_with(until_ms, move |until_ms| {
            let alive = Rc::new(Cell::new(true));
            if let Some(until_ms) = *until_ms {
                let alive = Rc::clone(&alive);
                yew::platform::spawn_local(async move {
                    while alive.get() {
                        let t = js_sys::Date::now() as u64;
                        now.set(t);
                        if t > until_ms {
                            break;
                        }
                        yew::platform::time::sleep(Duration::from_millis(200)).await;
                    }
                });
            }
            move || alive.set(false)
        });
    }
    *now
}

/// The page header.
#[function_component(Header)]
pub fn header(props: &HeaderProps) -> Html {
    let state = props.connection.as_str();
    let retry_at = props
        .retry_at_ms
        .filter(|_| props.connection == ConnState::Reconnecting);
    let now = use_clock_until(retry_at);
    let (redis_state, redis_text) = match props.redis_ready {
        Some(true) => ("ok", "Redis ok"),
        Some(false) => ("down", "Redis unavailable"),
        None => ("unknown", "Redis ?"),
    };
    let left = retry_at.map(|at| seconds_until(at, now)).unwrap_or(0);
    let conn_text = match props.connection {
        ConnState::Reconnecting if left > 0 => html! {
            <span id="reconnect-countdown" data-seconds={left.to_string()}>
                { format!("reconnecting in {}", duration_ms(left.saturating_mul(1000))) }
            </span>
        },
        ConnState::Reconnecting => html! { "reconnecting…" },
        other => html! { other.as_str() },
    };
    let onsignout = props.onsignout.reform(|_: MouseEvent| ());
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
                if props.signed_in {
                    <button id="logout-btn" type="button" class="small" onclick={onsignout}
                        title="Forget the token kept for this tab">{ "Sign out" }</button>
                }
            </span>
        </header>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_whole_seconds_up() {
        assert_eq!(seconds_until(10_000, 5_000), 5);
        assert_eq!(seconds_until(10_000, 5_001), 5);
        assert_eq!(seconds_until(10_000, 9_999), 1);
        assert_eq!(seconds_until(10_000, 10_000), 0);
        assert_eq!(seconds_until(10_000, 12_000), 0);
    }
}
