//! The browser side of the connection: a gloo-net WebSocket to the page's own host.

use super::session::{Connector, Socket, SocketError};
use futures_util::{Sink, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, State, WebSocketError};
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::time::Duration;

/// The relay's WebSocket address for a page loaded over `protocol` (`http:` or
/// `https:`) from `host` (`example.com:8080`): `ws(s)://<host>/ws`.
pub fn relay_url_for(protocol: &str, host: &str) -> String {
    let scheme = if protocol.eq_ignore_ascii_case("https:") {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{host}/ws")
}

/// The relay's WebSocket address for this page: the host that served it, path `/ws`.
/// `None` outside a browser window.
pub fn relay_url() -> Option<String> {
    let location = web_sys::window()?.location();
    Some(relay_url_for(
        &location.protocol().ok()?,
        &location.host().ok()?,
    ))
}

/// Opens browser WebSockets to one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserConnector {
    url: String,
}

impl BrowserConnector {
    /// A connector to `url`, e.g. `ws://127.0.0.1:8080/ws`.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into() }
    }
}

impl Connector for BrowserConnector {
    type Socket = BrowserSocket;

    fn connect(&self) -> impl Future<Output = Result<BrowserSocket, SocketError>> {
        let url = self.url.clone();
        async move {
            let mut ws = WebSocket::open(&url).map_err(|e| SocketError(e.to_string()))?;
            // gloo-net's sink turns ready when the socket leaves CONNECTING, whether it
            // opened or failed; the state tells which.
            poll_fn(|cx| Pin::new(&mut ws).poll_ready(cx))
                .await
                .map_err(|e| SocketError(e.to_string()))?;
            match ws.state() {
                State::Open => Ok(BrowserSocket::new(ws)),
                state => Err(SocketError(format!("could not open {url}: {state:?}"))),
            }
        }
    }

    fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
        yew::platform::time::sleep(duration)
    }
}

/// An open browser WebSocket. Dropping it closes the socket and releases its event
/// listeners (gloo-net owns them; nothing is leaked).
pub struct BrowserSocket {
    ws: WebSocket,
    /// The close frame's code and reason, once the socket has closed.
    closed: Option<(u16, String)>,
}

impl BrowserSocket {
    fn new(ws: WebSocket) -> Self {
        Self { ws, closed: None }
    }
}

impl fmt::Debug for BrowserSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserSocket")
            .field("state", &self.ws.state())
            .field("closed", &self.closed)
            .finish()
    }
}

impl Socket for BrowserSocket {
    async fn send(&mut self, text: String) -> Result<(), SocketError> {
        self.ws
            .send(Message::Text(text))
            .await
            .map_err(|e| SocketError(e.to_string()))
    }

    async fn recv(&mut self) -> Option<String> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => return Some(text),
                // The protocol is JSON text; the relay sends no binary frames. An `error`
                // event is always followed by `close`, which ends the stream.
                Some(Ok(Message::Bytes(_)) | Err(WebSocketError::ConnectionError)) => {}
                // 1005 ("no status") and 1006 ("abnormal") are the browser's, not the
                // relay's: no close frame came.
                Some(Err(WebSocketError::ConnectionClose(event))) => {
                    if !matches!(event.code, 1005 | 1006) {
                        self.closed = Some((event.code, event.reason));
                    }
                    return None;
                }
                Some(Err(_)) | None => return None,
            }
        }
    }

    fn close_frame(&self) -> Option<(u16, String)> {
        self.closed.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_is_on_the_pages_host() {
        assert_eq!(
            relay_url_for("http:", "127.0.0.1:8080"),
            "ws://127.0.0.1:8080/ws"
        );
        assert_eq!(
            relay_url_for("https:", "cortex.example"),
            "wss://cortex.example/ws"
        );
    }
}
