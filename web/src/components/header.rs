//! The page header: the product's name and the connection's state.

use crate::connection::ConnState;
use yew::prelude::*;

/// Properties of [`Header`].
#[derive(Debug, Properties, PartialEq)]
pub struct HeaderProps {
    /// Where the connection to the relay is.
    pub connection: ConnState,
}

/// The page header.
#[function_component(Header)]
pub fn header(props: &HeaderProps) -> Html {
    let state = props.connection.as_str();
    html! {
        <header class="topbar">
            <h1 class="brand">{ "Cortex Relay" }</h1>
            <span id="conn-state" class={classes!("conn", format!("conn-{state}"))}
                data-state={state} role="status" aria-live="polite"
                title="Connection to the relay">
                { state }
            </span>
        </header>
    }
}
