//! The hook that owns the dashboard's one connection to the relay and its state.

use crate::connection::{relay_url, ConnEvent, ConnState, RelayConnection};
use crate::services::auth;
use crate::state::{Action, DashboardState};
use cortex_shared::frame::close_code;
use cortex_shared::{ClientFrame, SubscribeTarget};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
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

/// Queues actions and dispatches them together, in order, as one [`Action::Batch`]
/// once the browser has handled what was already waiting (a `setTimeout(0)`): each
/// WebSocket message is a task of its own, and a render per frame made the 200 frames
/// of a watch's history take a second of the page's main thread.
fn batcher(dispatcher: UseReducerDispatcher<DashboardState>) -> impl Fn(Action) {
    let pending: Rc<RefCell<Vec<Action>>> = Rc::default();
    move |action| {
        let first = {
            let mut pending = pending.borrow_mut();
            pending.push(action);
            pending.len() == 1
        };
        if first {
            let pending = Rc::clone(&pending);
            let dispatcher = dispatcher.clone();
            yew::platform::spawn_local(async move {
                yew::platform::time::sleep(Duration::ZERO).await;
                let actions = std::mem::take(&mut *pending.borrow_mut());
                dispatcher.dispatch(Action::Batch(actions));
            });
        }
    }
}

/// Opens the connection to the relay once, at `url` or by default at `/ws` on the host
/// that served the page, with the token stored for this tab (if any), and keeps it for
/// the component's life; frames and state changes go into the [`DashboardState`]
/// reducer. A token refused (close code 4401) or missing (HTTP 401 from any call) sets
/// [`DashboardState::auth_required`].
#[hook]
pub fn use_relay_connection(url: Option<AttrValue>) -> RelayHandle {
    let state = use_reducer(DashboardState::default);
    let dispatcher = state.dispatcher();
    let connection = use_state(move || {
        {
            let dispatcher = dispatcher.clone();
            auth::on_unauthorized(Callback::from(move |why: String| {
                dispatcher.dispatch(Action::AuthRequired(why))
            }));
        }
        // Outside a browser there is no page to take the host from; the loop then
        // retries an empty address, which fails, and shows `reconnecting`.
        let url = url
            .map(|u| u.to_string())
            .or_else(relay_url)
            .unwrap_or_default();
        let token = auth::token();
        let queue = batcher(dispatcher.clone());
        RelayConnection::open_with_token(url, token.clone(), move |event| match event {
            ConnEvent::State(state) => queue(Action::Connection(state)),
            // The dashboard sends no refs; a reply with one is a frame all the same.
            ConnEvent::Frame(frame) | ConnEvent::Reply(frame, _) => queue(Action::Frame(frame)),
            ConnEvent::Retrying { delay } => {
                let at_ms = js_sys::Date::now() as u64 + delay.as_millis() as u64;
                queue(Action::Retrying(at_ms));
            }
            ConnEvent::Undecodable { text, error } => {
                let note = format!("cortex: ignored a frame from the relay ({error}): {text}");
                web_sys::console::warn_1(&note.into());
            }
            // A relay that needs a token closes with 4401 and the connection goes
            // offline for good; the login form asks for one.
            ConnEvent::Closed { code, reason } => {
                if code == close_code::UNAUTHORIZED {
                    let why = if token.is_some() {
                        format!("The relay refused the stored token ({code}: {reason}).")
                    } else {
                        format!("The relay requires a token ({code}: {reason}).")
                    };
                    dispatcher.dispatch(Action::AuthRequired(why));
                }
            }
        })
    });
    RelayHandle {
        state,
        connection: (*connection).clone(),
    }
}
