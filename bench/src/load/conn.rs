//! Opening many WebSocket connections to the relay: from several loopback source
//! addresses (so 10,000 connections never run short of ports), a bounded number of
//! handshakes at a time, each with small buffers so the load itself stays light.

use anyhow::{bail, Context, Result};
use cortex_shared::ClientFrame;
use futures_util::{SinkExt, StreamExt};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::wire::{Errors, Line};

/// One connection to `/ws`.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Connections per loopback source address: well inside the ephemeral port range,
/// with room for sockets of earlier scenarios still in `TIME_WAIT`.
const PER_SOURCE: usize = 2_000;

/// Handshakes in progress at once: below the relay's listen backlog.
const CONCURRENT_HANDSHAKES: usize = 128;

/// How long one connect, handshake and subscribe may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the load connects from and to.
#[derive(Debug, Clone)]
pub(crate) struct Dialer {
    relay: SocketAddr,
    gate: Arc<Semaphore>,
}

impl Dialer {
    /// A dialer for the relay at `relay` (`127.0.0.1:<port>`).
    pub(crate) fn new(relay: SocketAddr) -> Self {
        Self {
            relay,
            gate: Arc::new(Semaphore::new(CONCURRENT_HANDSHAKES)),
        }
    }

    /// The source address of connection `index`: 127.0.0.2, .3, … one per
    /// [`PER_SOURCE`] connections.
    fn source(index: usize) -> Ipv4Addr {
        let n = 2 + (index / PER_SOURCE) as u32;
        Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + n.min(250))
    }

    /// Opens connection `index` and sends `subscribe`; waits for the relay's
    /// `subscribed`. Skips any other frame before it; an `error` frame fails.
    pub(crate) async fn open(&self, index: usize, subscribe: &ClientFrame) -> Result<Ws> {
        let _permit = self.gate.acquire().await.expect("never closed");
        tokio::time::timeout(HANDSHAKE_TIMEOUT, self.open_now(index, subscribe))
            .await
            .context("connect, handshake and subscribe took longer than 20 s")?
    }

    async fn open_now(&self, index: usize, subscribe: &ClientFrame) -> Result<Ws> {
        let socket = TcpSocket::new_v4()?;
        let source = Self::source(index);
        socket
            .bind(SocketAddr::from((source, 0)))
            .with_context(|| format!("bind {source}"))?;
        let stream = socket
            .connect(self.relay)
            .await
            .with_context(|| format!("connect from {source} to {}", self.relay))?;
        stream.set_nodelay(true)?;
        // Small buffers (tungstenite's default is 128 KiB each way): the load holds
        // up to 10,000 of these.
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0);
        let url = format!("ws://{}/ws", self.relay);
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .context("WebSocket handshake")?;
        let text = serde_json::to_string(subscribe)?;
        ws.send(Message::Text(text.into())).await?;
        loop {
            let Some(message) = ws.next().await else {
                bail!("the relay closed the connection before `subscribed`");
            };
            if let Message::Text(text) = message? {
                match crate::wire::frame_type(&text) {
                    Some("subscribed") => return Ok(ws),
                    Some("error") => bail!("subscribe refused: {text}"),
                    _ => {}
                }
            }
        }
    }
}

/// Opens connections `indices` (each subscribing with `subscribe(i)`), prints
/// [`Line::Ready`] once every one is up or has failed, then runs `work` on each until it
/// returns or `run_secs` (from that moment) pass. Returns what each connection's `work`
/// returned, and the connections that could not be opened.
pub(crate) async fn fleet<S, F, Fut, T>(
    dialer: &Dialer,
    indices: std::ops::Range<u64>,
    subscribe: S,
    run_secs: f64,
    work: F,
) -> (Vec<T>, Errors)
where
    S: Fn(u64) -> ClientFrame,
    F: Fn(u64, Ws, tokio::time::Instant) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let work = Arc::new(work);
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel();
    let (start_tx, start_rx) = tokio::sync::watch::channel(None);
    let mut tasks = tokio::task::JoinSet::new();
    let total = indices.end - indices.start;
    for i in indices {
        let (dialer, frame, work) = (dialer.clone(), subscribe(i), work.clone());
        let (up_tx, mut start_rx) = (up_tx.clone(), start_rx.clone());
        tasks.spawn(async move {
            let ws = match dialer.open(i as usize, &frame).await {
                Ok(ws) => {
                    let _ = up_tx.send(None);
                    ws
                }
                Err(e) => {
                    let _ = up_tx.send(Some(format!("connection {i}: {e:#}")));
                    return None;
                }
            };
            let deadline = loop {
                if let Some(deadline) = *start_rx.borrow_and_update() {
                    break deadline;
                }
                if start_rx.changed().await.is_err() {
                    return None;
                }
            };
            Some(work(i, ws, deadline).await)
        });
    }
    drop(up_tx);
    let mut failed = Errors::default();
    let mut up = 0;
    for _ in 0..total {
        match up_rx.recv().await {
            Some(None) => up += 1,
            Some(Some(e)) => failed.add(e),
            None => break,
        }
    }
    Line::Ready {
        connections: up,
        failed: failed.count,
    }
    .print();
    let _ = start_tx.send(Some(super::deadline(run_secs)));
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Some(outcome)) => outcomes.push(outcome),
            Ok(None) => {}
            Err(e) => failed.add(format!("connection task failed: {e}")),
        }
    }
    (outcomes, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_spread_over_loopback_addresses() {
        assert_eq!(Dialer::source(0), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(Dialer::source(PER_SOURCE - 1), Ipv4Addr::new(127, 0, 0, 2));
        assert_eq!(Dialer::source(PER_SOURCE), Ipv4Addr::new(127, 0, 0, 3));
        assert_eq!(Dialer::source(9_999), Ipv4Addr::new(127, 0, 0, 6));
    }
}
