//! The application: the dashboard under its relay connection.

use crate::components::{Dashboard, RelayProvider};
use yew::prelude::*;

/// The root component.
#[function_component(App)]
pub fn app() -> Html {
    html! {
        <RelayProvider>
            <Dashboard />
        </RelayProvider>
    }
}
