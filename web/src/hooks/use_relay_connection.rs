//! The hook that owns the dashboard's one connection to the relay and its state.

use crate::connection::{relay_url, ConnEvent, ConnState, RelayConnection};
use crate::state::{Action, DashboardState};
use cortex_shared::frame::close_code;
use cortex_shared::{ClientFrame, SubscribeTarget};
use yew::prelude::*;

/// The relay as components see it: the dashboard state fed by the connection, and the
/// means to talk to the relay. Shared through a context by `RelayProvider`.
#[derive(Debug, Clone)]
pub struct RelayHandle {
    state: UseReducerHandle<DashboardState>,
    connection: RelayConnection,
}

impl PartialEq for RelayHandle {
    fn eq(&self, other: &Self) -> bool {
        self.state.revision == other.state.revision && self.connection == other.connection
    }
}

impl RelayHandle {
    /// Everything the relay told us so far, as the dashboard shows it.
    pub fn state(&self) -> &DashboardState {
        &self.state
    }

    /// Where the connection is.
    pub fn status(&self) -> ConnState {
        self.state.connection
    }

    /// Sends a frame to the relay.
    pub fn send(&self, frame: ClientFrame) {
        self.connection.send(frame);
    }

    /// Watches `target` instead of whatever was watched before.
    pub fn watch(&self, target: SubscribeTarget) {
        self.connection.watch(target.as_str());
        self.state.dispatch(Action::Watch(target));
    }

    /// Feeds what the HTTP API answered (agents, metrics, readiness) into the state.
    pub fn dispatch(&self, action: Action) {
        self.state.dispatch(action);
    }

    /// Hides the relay's last error.
    pub fn dismiss_error(&self) {
        self.state.dispatch(Action::DismissError);
    }
}

/// Opens the connection to the relay once, at `url` or by default at `/ws` on the host
/// that served the page, and keeps it for the component's life; frames and state
/// changes go into the [`DashboardState`] reducer.
#[hook]
pub fn use_relay_connection(url: Option<AttrValue>) -> RelayHandle {
    let state = use_reducer(DashboardState::default);
    let dispatcher = state.dispatcher();
    let connection = use_state(move || {
        // Outside a browser there is no page to take the host from; the loop then
        // retries an empty address, which fails, and shows `reconnecting`.
        let url = url
            .map(|u| u.to_string())
            .or_else(relay_url)
            .unwrap_or_default();
        RelayConnection::open(url, move |event| match event {
            ConnEvent::State(state) => dispatcher.dispatch(Action::Connection(state)),
            ConnEvent::Frame(frame) => dispatcher.dispatch(Action::Frame(frame)),
            ConnEvent::Undecodable { text, error } => {
                let note = format!("cortex: ignored a frame from the relay ({error}): {text}");
                web_sys::console::warn_1(&note.into());
            }
            // The dashboard sends no token; a relay that needs one closes with 4401 and
            // the connection goes offline, which `#conn-state` shows.
            ConnEvent::Closed { code, reason } => {
                if code == close_code::UNAUTHORIZED {
                    let note = format!("cortex: the relay requires a token ({code}: {reason})");
                    web_sys::console::warn_1(&note.into());
                }
            }
        })
    });
    RelayHandle {
        state,
        connection: (*connection).clone(),
    }
}
