//! The one WebSocket connection to the relay, free of any UI framework.
//!
//! [`RelayConnection`] opens `ws(s)://<page host>/ws`, reconnects by itself with capped
//! exponential backoff, replays the subscriptions after each reconnection (each watch
//! resuming after the newest entry it was shown on every stream, so nothing is missed
//! and nothing repeated), pings a silent relay, and reports [`ConnEvent`]s to one
//! callback. With a token, each connection starts with the `auth` frame, and a relay
//! that refuses it (close code 4401) ends the loop instead of being retried. The
//! dashboard wraps it in a Yew hook (`hooks::use_relay_connection`); the JavaScript
//! client (`crate::client::CortexClient`) wraps the very same loop. It owns no
//! `Closure` of its own: the socket's listeners belong to gloo-net and go with the
//! socket, and the loop ends when the last handle is dropped.

mod browser;
mod session;

pub use browser::{relay_url, relay_url_for, BrowserConnector, BrowserSocket};
pub use cortex_shared::Backoff;
pub use session::{
    decode, Connector, Socket, SocketError, Subscriptions, CONNECT_TIMEOUT, HISTORY, IDLE_PING,
};

use cortex_shared::{ClientFrame, Ref, ServerFrame};
use std::rc::Rc;
use yew::platform::pinned::mpsc::{unbounded, UnboundedSender};

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConnState {
    /// The first attempt to connect is under way.
    #[default]
    Connecting,
    /// The socket is open.
    Connected,
    /// The connection was lost or refused; retrying with backoff.
    Reconnecting,
    /// Closed for good: the application closed it, or there is no relay to reach.
    Offline,
}

impl ConnState {
    /// The state's name: `connecting`, `connected`, `reconnecting` or `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::Reconnecting => "reconnecting",
            ConnState::Offline => "offline",
        }
    }
}

/// What the connection reports.
// Events are moved once, from the socket to the callback; boxing the frame would only
// add an allocation per frame.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ConnEvent {
    /// The connection changed state.
    State(ConnState),
    /// A frame from the relay.
    Frame(ServerFrame),
    /// A frame from the relay that carries a `ref`: the reply to the frame sent with
    /// it by [`RelayConnection::request`].
    Reply(ServerFrame, Ref),
    /// A text frame that is not a [`ServerFrame`] this client knows.
    Undecodable {
        /// The frame as received.
        text: String,
        /// Why it did not decode.
        error: String,
    },
    /// The connection is down and the next attempt starts after `delay` (reported once
    /// per wait, right after [`ConnState::Reconnecting`] for the first one); the
    /// dashboard counts it down.
    Retrying {
        /// How long until the next attempt to connect.
        delay: std::time::Duration,
    },
    /// The relay closed the socket with a close frame (reported before the state
    /// changes). 4401 ([`cortex_shared::frame::close_code::UNAUTHORIZED`]): the token
    /// was refused, and the connection goes [`ConnState::Offline`] for good; any other
    /// code is followed by a reconnection.
    Closed {
        /// The close code, e.g. 1012 (the relay is restarting).
        code: u16,
        /// The close reason.
        reason: String,
    },
}

/// What the application asks of the connection loop.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    /// Send a frame (remembering its effect on the subscriptions).
    Send(ClientFrame),
    /// [`Command::Send`] with a `ref`, which the relay echoes in the replies.
    Request(ClientFrame, Ref),
    /// Make this agent (or `*`) the only subscription.
    Watch(String),
    /// Close the connection for good.
    Close,
}

/// A handle to the connection. Clones share it; it closes when the last one is dropped
/// or [`RelayConnection::close`] is called.
#[derive(Debug, Clone)]
pub struct RelayConnection {
    commands: Rc<UnboundedSender<Command>>,
}

impl PartialEq for RelayConnection {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.commands, &other.commands)
    }
}

impl RelayConnection {
    /// Connects to the relay at `url` (e.g. `ws://127.0.0.1:8080/ws`) from the browser.
    /// Must be called in a browser (or a worker).
    pub fn open(url: impl Into<String>, on_event: impl Fn(ConnEvent) + 'static) -> Self {
        Self::spawn(BrowserConnector::new(url), None, on_event)
    }

    /// As [`RelayConnection::open`], sending `token` in an `auth` frame first on every
    /// connection.
    pub fn open_with_token(
        url: impl Into<String>,
        token: Option<String>,
        on_event: impl Fn(ConnEvent) + 'static,
    ) -> Self {
        Self::spawn(BrowserConnector::new(url), token, on_event)
    }

    /// Runs the connection loop over `connector` as a local task, authenticating with
    /// `token` if given.
    pub fn spawn<C: Connector + 'static>(
        connector: C,
        token: Option<String>,
        on_event: impl Fn(ConnEvent) + 'static,
    ) -> Self {
        let (commands, receiver) = unbounded();
        yew::platform::spawn_local(session::run(connector, token, receiver, on_event));
        Self {
            commands: Rc::new(commands),
        }
    }

    /// Sends `frame` to the relay. While disconnected, `subscribe` and `unsubscribe`
    /// take effect at the next connection and other frames are dropped.
    pub fn send(&self, frame: ClientFrame) {
        self.command(Command::Send(frame));
    }

    /// As [`RelayConnection::send`], with `reference` as the frame's `ref`: its replies
    /// come as [`ConnEvent::Reply`] with it. A `subscribe` replayed on a later
    /// connection goes without it.
    pub fn request(&self, frame: ClientFrame, reference: Ref) {
        self.command(Command::Request(frame, reference));
    }

    /// Watches `agent` (or `*`) alone: unsubscribes from any other agent, then
    /// subscribes to it, unless it is already subscribed.
    pub fn watch(&self, agent: impl Into<String>) {
        self.command(Command::Watch(agent.into()));
    }

    /// Closes the connection for good; the loop reports [`ConnState::Offline`].
    pub fn close(&self) {
        self.command(Command::Close);
    }

    fn command(&self, command: Command) {
        // Fails only once the loop has ended, when there is nothing left to tell.
        let _ = self.commands.send_now(command);
    }
}
