//! `cortex-agent`: the Rust API for agents, mirroring the original agents' bridge: publish a
//! task, send a heartbeat (both straight to Redis, in the README's Redis layout), and consume
//! an agent's tasks through a relay (at least once, with ack and nack). It stands on
//! `cortex-shared`, redis and a WebSocket client only: no HTTP server, no dashboard.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cortex_agent::AgentError> {
//! use cortex_agent::{Publisher, RelayConsumer, TaskRequest};
//! use cortex_shared::Priority;
//! let harold = Publisher::connect("redis://127.0.0.1:6379/").await?;
//! let sent = harold.publish("harold", TaskRequest::new("pink", Priority::High, "coding")).await?;
//! let mut pink = RelayConsumer::connect("ws://127.0.0.1:8080/ws", "pink", "pink-1").await?;
//! if let Some(task) = pink.next().await {
//!     pink.ack(&task).await?;
//! }
//! # let _ = sent; Ok(()) }
//! ```

use cortex_shared::publish::{checked_from, checked_to, PublishError};
use cortex_shared::reference::encode_with_ref;
use cortex_shared::Backoff;
use cortex_shared::{
    read_ref, ClientFrame, Heartbeat, JsonObject, Priority, Ref, ServerFrame, TaskMessage,
};
use futures_util::{SinkExt, StreamExt};
use redis::aio::ConnectionManager;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// Seconds since the unix epoch, now.
fn unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// How long an ack or nack waits for the relay's answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an agent call failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Redis refused or did not answer.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The task or heartbeat breaks the publishing rule every way in shares
    /// ([`cortex_shared::publish`]); nothing was written. Its
    /// [`code`](PublishError::code) is the one the relay's HTTP API and WebSocket
    /// protocol answer with.
    #[error("refused: {0}")]
    Invalid(#[from] PublishError),
    /// The relay answered with an error frame.
    #[error("relay refused: {code}: {message}")]
    Refused {
        /// The error frame's code.
        code: cortex_shared::ErrorCode,
        /// Its message.
        message: String,
    },
    /// The connection to the relay broke before the answer came; the task stays
    /// pending and comes back.
    #[error("connection to the relay lost")]
    ConnectionLost,
    /// The relay could not be reached.
    #[error("cannot reach the relay: {0}")]
    Connect(String),
}

/// What to publish; the publisher fills in `id`, `from` and `created`.
#[derive(Debug, Clone)]
pub struct TaskRequest {
    /// The agent it is for; empty for every agent.
    pub to: String,
    /// Its priority (and stream).
    pub priority: Priority,
    /// Its type.
    pub task_type: String,
    /// Its data.
    pub payload: JsonObject,
    /// The task that spawned it (`parent_id`).
    pub parent_id: Option<String>,
    /// The trace it belongs to (`correlation_id`).
    pub correlation_id: Option<String>,
}

impl TaskRequest {
    /// A task for `to` with an empty payload.
    pub fn new(to: &str, priority: Priority, task_type: &str) -> Self {
        Self {
            to: to.to_owned(),
            priority,
            task_type: task_type.to_owned(),
            payload: JsonObject::new(),
            parent_id: None,
            correlation_id: None,
        }
    }

    /// The same request with `payload`.
    pub fn with_payload(mut self, payload: JsonObject) -> Self {
        self.payload = payload;
        self
    }

    /// The same request as a child of task `parent_id` in trace `correlation_id`: a
    /// task spawned while working on another passes that one's `id` and
    /// `correlation_id` (or its `id`, starting the trace).
    pub fn in_trace(mut self, parent_id: Option<&str>, correlation_id: &str) -> Self {
        self.parent_id = parent_id.map(str::to_owned);
        self.correlation_id = Some(correlation_id.to_owned());
        self
    }
}

/// A published task: its id (a UUID) and its stream entry id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The task's `id`.
    pub task_id: String,
    /// Its entry id in its priority stream.
    pub entry_id: String,
}

/// Writes tasks and heartbeats to Redis, as the original agents do (README, Redis layout).
#[derive(Clone)]
pub struct Publisher {
    redis: ConnectionManager,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").finish_non_exhaustive()
    }
}

impl Publisher {
    /// A publisher on an existing connection.
    pub fn from_connection(redis: ConnectionManager) -> Self {
        Self { redis }
    }

    /// Connects to Redis at `url`.
    pub async fn connect(url: &str) -> Result<Self, AgentError> {
        let client = redis::Client::open(url)?;
        Ok(Self {
            redis: client.get_connection_manager().await?,
        })
    }

    /// Publishes a new task from `from`: a fresh UUID id, `created` now.
    /// `to` may be empty or `*` (every agent, written empty), and the rule of
    /// [`cortex_shared::publish`] holds: a refusal is [`AgentError::Invalid`].
    pub async fn publish(&self, from: &str, request: TaskRequest) -> Result<Published, AgentError> {
        let task = new_task(from, request, uuid::Uuid::new_v4().to_string(), unix_secs())?;
        let entry_id = self.publish_task(&task).await?;
        Ok(Published {
            task_id: task.id,
            entry_id,
        })
    }

    /// Publishes `task` as it is to its priority's stream; returns the entry id. A task
    /// that breaks the publishing rule ([`TaskMessage::check`]) is refused with
    /// [`AgentError::Invalid`] and not written.
    pub async fn publish_task(&self, task: &TaskMessage) -> Result<String, AgentError> {
        task.check()?;
        let mut cmd = redis::cmd("XADD");
        cmd.arg(task.priority.stream()).arg("*");
        for (field, value) in task.to_fields() {
            cmd.arg(field).arg(value);
        }
        Ok(cmd.query_async(&mut self.redis.clone()).await?)
    }

    /// Sends `agent`'s heartbeat; returns the entry id. An `agent` that is not an agent
    /// name is refused with [`AgentError::Invalid`] and not written.
    pub async fn heartbeat(&self, agent: &str, status: JsonObject) -> Result<String, AgentError> {
        cortex_shared::AgentName::parse(agent).map_err(|error| PublishError::InvalidAgent {
            field: "agent",
            error,
        })?;
        let heartbeat = Heartbeat {
            agent: agent.to_owned(),
            time: unix_secs(),
            status,
        };
        let mut cmd = redis::cmd("XADD");
        cmd.arg(cortex_shared::HEARTBEAT_STREAM).arg("*");
        for (field, value) in heartbeat.to_fields() {
            cmd.arg(field).arg(value);
        }
        Ok(cmd.query_async(&mut self.redis.clone()).await?)
    }
}

/// The task `from` publishes with `request`, checked by the publishing rule.
fn new_task(
    from: &str,
    request: TaskRequest,
    id: String,
    created: i64,
) -> Result<TaskMessage, PublishError> {
    let task = TaskMessage {
        id,
        from: checked_from(from)?,
        to: checked_to(&request.to)?,
        priority: request.priority,
        task_type: request.task_type,
        payload: request.payload,
        created,
        parent_id: request.parent_id,
        correlation_id: request.correlation_id,
    };
    task.check()?;
    Ok(task)
}

/// A task delivered to a consumer; ack or nack it.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The task.
    pub task: TaskMessage,
    /// Its stream.
    pub stream: String,
    /// Its entry id.
    pub entry_id: String,
    /// Deliveries so far, this one included.
    pub delivery_count: u64,
}

enum Request {
    Ack(Delivery, oneshot::Sender<Result<bool, AgentError>>),
    Nack(Delivery, String, oneshot::Sender<Result<bool, AgentError>>),
}

/// Consumes one agent's tasks through a relay's `/ws`, as consumer `consumer`. It
/// reconnects by itself (with the same consumer name, so its pending tasks come back
/// first) when the relay goes away.
#[derive(Debug)]
pub struct RelayConsumer {
    deliveries: mpsc::Receiver<Delivery>,
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Ack(d, _) => write!(f, "Ack({} {})", d.stream, d.entry_id),
            Request::Nack(d, e, _) => write!(f, "Nack({} {}: {e})", d.stream, d.entry_id),
        }
    }
}

impl RelayConsumer {
    /// Connects to the relay at `ws_url` and waits until it confirms the subscription.
    pub async fn connect(ws_url: &str, agent: &str, consumer: &str) -> Result<Self, AgentError> {
        let (deliveries_tx, deliveries) = mpsc::channel(256);
        let (requests, requests_rx) = mpsc::channel(256);
        let (ready_tx, ready) = oneshot::channel();
        let link = Link {
            url: ws_url.to_owned(),
            subscribe: ClientFrame::consume(agent, Some(consumer.to_owned())),
            deliveries: deliveries_tx,
            requests: requests_rx,
            ready: Some(ready_tx),
            next_ref: SUBSCRIBE_REF,
        };
        // The link stops once `deliveries` is dropped: with this consumer, or on the
        // way out of here when connecting fails.
        tokio::spawn(link.run());
        match ready.await {
            Ok(Ok(())) => Ok(Self {
                deliveries,
                requests,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(AgentError::ConnectionLost),
        }
    }

    /// The next task; `None` once closed.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.deliveries.recv().await
    }

    /// Acks `delivery`: done, it will not come back.
    pub async fn ack(&self, delivery: &Delivery) -> Result<(), AgentError> {
        let (tx, rx) = oneshot::channel();
        self.request(Request::Ack(delivery.clone(), tx), rx)
            .await
            .map(drop)
    }

    /// Nacks `delivery` with `error`; returns whether it went to the DLQ (else it is
    /// delivered again).
    pub async fn nack(&self, delivery: &Delivery, error: &str) -> Result<bool, AgentError> {
        let (tx, rx) = oneshot::channel();
        self.request(Request::Nack(delivery.clone(), error.to_owned(), tx), rx)
            .await
    }

    async fn request(
        &self,
        request: Request,
        reply: oneshot::Receiver<Result<bool, AgentError>>,
    ) -> Result<bool, AgentError> {
        self.requests
            .send(request)
            .await
            .map_err(|_| AgentError::ConnectionLost)?;
        // A relay that never answers must not hang the agent.
        match tokio::time::timeout(REPLY_TIMEOUT, reply).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(AgentError::ConnectionLost),
        }
    }
}

/// The connection behind a [`RelayConsumer`].
struct Link {
    url: String,
    subscribe: ClientFrame,
    deliveries: mpsc::Sender<Delivery>,
    requests: mpsc::Receiver<Request>,
    ready: Option<oneshot::Sender<Result<(), AgentError>>>,
    /// The ref of the last ack or nack sent.
    next_ref: u64,
}

impl Link {
    /// Connects and reconnects until the [`RelayConsumer`] is dropped.
    async fn run(mut self) {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
        let dropped = self.deliveries.clone();
        loop {
            let result = tokio::select! {
                _ = dropped.closed() => return,
                r = self.connection() => r,
            };
            match result {
                Ok(()) => return,
                Err(e) => {
                    if let Some(ready) = self.ready.take() {
                        let _ = ready.send(Err(e));
                        return;
                    }
                }
            }
            tokio::select! {
                _ = dropped.closed() => return,
                _ = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    /// One connection: subscribe, then pass deliveries and replies along. `Ok` when
    /// the consumer was dropped; `Err` when the connection failed.
    async fn connection(&mut self) -> Result<(), AgentError> {
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(&self.url, None, true)
            .await
            .map_err(|e| AgentError::Connect(e.to_string()))?;
        let subscribe_ref = Ref::number(SUBSCRIBE_REF);
        let text = encode_with_ref(&self.subscribe, Some(&subscribe_ref));
        socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| AgentError::ConnectionLost)?;
        let mut waiting: Waiting<oneshot::Sender<Result<bool, AgentError>>> = Waiting::default();
        let result = loop {
            tokio::select! {
                message = socket.next() => {
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            break Err(AgentError::ConnectionLost)
                        }
                        Some(Ok(_)) => continue,
                    };
                    let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) else {
                        continue;
                    };
                    // A relay that echoes no refs (an older one) answers in order.
                    let reference = read_ref(&text).ok().flatten();
                    match frame {
                        ServerFrame::Subscribed { .. } => {
                            if let Some(ready) = self.ready.take() {
                                let _ = ready.send(Ok(()));
                            }
                        }
                        ServerFrame::Task { data, stream, entry_id, delivery_count: Some(count) } => {
                            let delivery = Delivery { task: data, stream, entry_id, delivery_count: count };
                            if self.deliveries.send(delivery).await.is_err() {
                                break Ok(());
                            }
                        }
                        ServerFrame::Acked { .. } => {
                            if let Some(tx) = waiting.take(reference.as_ref()) {
                                let _ = tx.send(Ok(false));
                            }
                        }
                        ServerFrame::Nacked { dead_lettered, .. } => {
                            if let Some(tx) = waiting.take(reference.as_ref()) {
                                let _ = tx.send(Ok(dead_lettered));
                            }
                        }
                        ServerFrame::Error { code, message } => {
                            let refused = AgentError::Refused { code, message };
                            let about_subscribe = match &reference {
                                Some(r) => *r == subscribe_ref,
                                None => self.ready.is_some(),
                            };
                            if about_subscribe {
                                match self.ready.take() {
                                    Some(ready) => {
                                        let _ = ready.send(Err(refused));
                                        break Ok(());
                                    }
                                    None => tracing::warn!(error = %refused, "relay error"),
                                }
                                continue;
                            }
                            match waiting.take(reference.as_ref()) {
                                Some(tx) => { let _ = tx.send(Err(refused)); }
                                None => tracing::warn!(error = %refused, "relay error"),
                            }
                        }
                        _ => {}
                    }
                }
                request = self.requests.recv() => {
                    let Some(request) = request else { break Ok(()) };
                    let (frame, reply) = match request {
                        Request::Ack(d, reply) => (ClientFrame::Ack { stream: d.stream, entry_id: d.entry_id }, reply),
                        Request::Nack(d, error, reply) => (ClientFrame::Nack { stream: d.stream, entry_id: d.entry_id, error }, reply),
                    };
                    self.next_ref += 1;
                    let reference = Ref::number(self.next_ref);
                    let text = encode_with_ref(&frame, Some(&reference));
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        let _ = reply.send(Err(AgentError::ConnectionLost));
                        break Err(AgentError::ConnectionLost);
                    }
                    waiting.push(reference, reply);
                }
            }
        };
        for tx in waiting.drain() {
            let _ = tx.send(Err(AgentError::ConnectionLost));
        }
        result
    }
}

/// The ref of every connection's `subscribe`; acks and nacks count up from it.
const SUBSCRIBE_REF: u64 = 0;

/// The acks and nacks sent on a connection and not yet answered, oldest first.
#[derive(Debug)]
struct Waiting<T> {
    sent: VecDeque<(Ref, T)>,
}

impl<T> Default for Waiting<T> {
    fn default() -> Self {
        Self {
            sent: VecDeque::new(),
        }
    }
}

impl<T> Waiting<T> {
    fn push(&mut self, reference: Ref, waiter: T) {
        self.sent.push_back((reference, waiter));
    }

    /// The waiter a reply answers: the one with its ref; without a ref (a relay that
    /// echoes none answers in order), the oldest. A ref no waiter has answers nothing.
    fn take(&mut self, reference: Option<&Ref>) -> Option<T> {
        let i = match reference {
            Some(reference) => self.sent.iter().position(|(r, _)| r == reference)?,
            None => 0,
        };
        self.sent.remove(i).map(|(_, waiter)| waiter)
    }

    fn drain(self) -> impl Iterator<Item = T> {
        self.sent.into_iter().map(|(_, waiter)| waiter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(refs: &[u64]) -> Waiting<u64> {
        let mut waiting = Waiting::default();
        for n in refs {
            waiting.push(Ref::number(*n), *n);
        }
        waiting
    }

    #[test]
    fn tasks_are_checked_by_the_one_publishing_rule() {
        let task = |from: &str, to: &str, task_type: &str| {
            new_task(
                from,
                TaskRequest::new(to, Priority::High, task_type),
                "id-1".into(),
                7,
            )
        };
        let ok = task("harold", "pink", "coding").unwrap();
        assert_eq!((ok.from.as_str(), ok.to.as_str()), ("harold", "pink"));
        assert_eq!((ok.id.as_str(), ok.created), ("id-1", 7));
        // `*` is every agent, written empty.
        assert_eq!(task("harold", "*", "coding").unwrap().to, "");
        assert_eq!(task("harold", "", "coding").unwrap().to, "");
        // The codes the relay answers with.
        let code = |r: Result<TaskMessage, PublishError>| r.unwrap_err().code();
        assert_eq!(code(task("harold", "pink", "two words")), "invalid_type");
        assert_eq!(code(task("harold", "pink", "")), "invalid_type");
        assert_eq!(
            code(task("harold", "pink", &"t".repeat(65))),
            "invalid_type"
        );
        assert_eq!(code(task("harold", "pi nk", "coding")), "invalid_agent");
        assert_eq!(code(task("", "pink", "coding")), "invalid_agent");
        assert_eq!(code(task("har/old", "pink", "coding")), "invalid_agent");
        // A task built by hand is held to the same rule.
        let mut by_hand = ok.clone();
        by_hand.task_type = "a b".into();
        assert_eq!(by_hand.check().unwrap_err().code(), "invalid_type");
    }

    #[test]
    fn replies_are_matched_by_their_ref_in_any_order() {
        let mut w = waiting(&[1, 2, 3]);
        assert_eq!(w.take(Some(&Ref::number(2))), Some(2));
        assert_eq!(w.take(Some(&Ref::number(3))), Some(3));
        // Answered already, or never sent: nothing.
        assert_eq!(w.take(Some(&Ref::number(3))), None);
        assert_eq!(w.take(Some(&Ref::text("x").unwrap())), None);
        assert_eq!(w.drain().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn replies_without_a_ref_are_matched_in_order() {
        let mut w = waiting(&[1, 2]);
        assert_eq!(w.take(None), Some(1));
        assert_eq!(w.take(None), Some(2));
        assert_eq!(w.take(None), None);
    }
}
