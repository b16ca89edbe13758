//! Provides the dashboard's one relay connection to everything below it.

use crate::hooks::{use_relay_connection, RelayHandle};
use yew::prelude::*;

/// Properties of [`RelayProvider`].
#[derive(Debug, Properties, PartialEq)]
pub struct RelayProviderProps {
    /// The relay's WebSocket URL; by default `ws(s)://<page host>/ws`.
    #[prop_or_default]
    pub url: Option<AttrValue>,
    /// The components that reach the relay with `use_relay`.
    #[prop_or_default]
    pub children: Html,
}

/// Opens the connection and shares it through a context.
#[function_component(RelayProvider)]
pub fn relay_provider(props: &RelayProviderProps) -> Html {
    let relay = use_relay_connection(props.url.clone());
    html! {
        <ContextProvider<RelayHandle> context={relay}>
            { props.children.clone() }
        </ContextProvider<RelayHandle>>
    }
}
