//! A WebSocket client for the relay's JSON frames.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long [`WsClient::next`] waits for a frame by default.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to `/ws`.
#[derive(Debug)]
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Connects to `url` (`ws://127.0.0.1:<port>/ws`).
    pub async fn connect(url: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .unwrap_or_else(|e| panic!("connect {url}: {e}"));
        Self { socket }
    }

    /// Connects with extra handshake headers (e.g. `Authorization`, `Origin`); the
    /// handshake's HTTP status when the relay refuses it.
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Result<Self, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().expect("a ws:// URL");
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("header name"),
                value.parse().expect("header value"),
            );
        }
        match tokio_tungstenite::connect_async_with_config(request, None, true).await {
            Ok((socket, _)) => Ok(Self { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(e) => panic!("connect {url}: {e}"),
        }
    }

    /// Waits for the relay to close the connection; the close code (`None`: the
    /// connection ended without a close frame). Frames before it are skipped.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.socket.next())
                .await
                .expect("the connection ends within the timeout");
            match message {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Sends `frame` as JSON text.
    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// Sends raw text, well formed or not.
    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("send frame");
    }

    /// Sends `frames` as JSON text in one write (one flush): a burst as the relay sees
    /// it, many frames in one read.
    pub async fn send_burst(&mut self, frames: impl IntoIterator<Item = Value>) {
        for frame in frames {
            self.socket
                .feed(Message::Text(frame.to_string().into()))
                .await
                .expect("queue frame");
        }
        self.socket.flush().await.expect("send burst");
    }

    /// Sends raw text; the error if the connection is gone (for a test where the relay
    /// may drop it mid-send).
    pub async fn try_send_text(
        &mut self,
        text: &str,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.socket.send(Message::Text(text.into())).await
    }

    /// Sends a raw WebSocket message.
    pub async fn send_message(&mut self, message: Message) {
        self.socket.send(message).await.expect("send message");
    }

    /// The next JSON text frame, waiting up to [`FRAME_TIMEOUT`].
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.socket.next())
                .await
                .expect("a frame within the timeout")
                .expect("connection open")
                .expect("a valid message");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).expect("JSON frame"),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next raw message, `None` when the connection has ended.
    pub async fn next_message(&mut self) -> Option<Message> {
        match self.socket.next().await {
            Some(Ok(message)) => Some(message),
            Some(Err(_)) | None => None,
        }
    }

    /// The underlying socket, e.g. to split it into a sender and a receiver that run
    /// at once.
    pub fn into_socket(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.socket
    }

    /// Subscribes to `agent` and waits for the `subscribed` reply.
    pub async fn subscribe(&mut self, agent: &str) {
        self.send(serde_json::json!({"type": "subscribe", "agent": agent}))
            .await;
        let reply = self.next().await;
        assert_eq!(
            reply,
            serde_json::json!({"type": "subscribed", "agent": agent, "status": "ok"})
        );
    }

    /// The next frame of `frame_type`, skipping any other frames before it.
    pub async fn next_of_type(&mut self, frame_type: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == frame_type {
                return frame;
            }
        }
    }

    /// The next frame of `frame_type`, failing on any other frame before it.
    pub async fn expect(&mut self, frame_type: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], frame_type, "unexpected frame {frame}");
        frame
    }
}
