//! One WebSocket connection: reads the client's frames, keeps its watch subscriptions
//! ([`super::watch`]) and consumers ([`super::consume`]), and forwards what they
//! select.
//!
//! The session is split as in axum's chat example: a writer task owns the socket's
//! sink and drains a queue; the reader loop (this module's [`serve`]) handles client
//! frames and hub events and queues what they produce (`Outbox`), within two budgets:
//!
//! - Frames the relay *pushes* (live watch events, server pings) never wait, so one
//!   slow client can never stall the hub or grow the relay's memory: when
//!   `send_queue` of them are queued unwritten, the client is closed with
//!   [`close_code::TOO_SLOW`] and reconnects.
//! - *Replies* to the client's own frames (and its consumer's events, which it paces by
//!   acking) wait for the writer when as many are queued: the reader stops reading
//!   meanwhile, so a burst of requests is slowed down by TCP, not answered by a close.
//!   A writer that makes no room for two ping intervals (at most 10 s) means the client
//!   reads nothing: it is closed as too slow then.
//!
//! Generic over `Sink`/`Stream` so it can be tested without a server.

use super::consume::Consumers;
use super::watch::{WatchRequest, Watches};
use crate::auth::Grant;
use crate::engine::hub::{Feed, Lagged};
use crate::state::{Services, SessionLimits};
use crate::store::publish::{heartbeat_now, new_task, publish_heartbeat, publish_task};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use cortex_shared::frame::close_code;
use cortex_shared::publish::PublishError;
use cortex_shared::reference::with_ref;
use cortex_shared::rest::PublishRequest;
use cortex_shared::{
    read_ref, AgentName, ClientFrame, ErrorCode, Ref, ServerFrame, SubscribeMode, SubscribeTarget,
    HEARTBEAT_STREAM,
};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

/// How long a reply may wait for the writer to make room, at most (see [`reply_wait`]).
const REPLY_WAIT: Duration = Duration::from_secs(10);

/// Frames the writer sends in one socket write at most.
const WRITE_BATCH: usize = 64;

/// How long a closing session waits for its writer to flush before dropping it.
const WRITER_GRACE: Duration = Duration::from_secs(2);

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed the connection or it broke.
    ClientGone,
    /// The client's send queue filled up, it fell behind the hub, or it took no
    /// frame while replies waited for it (two ping intervals, at most 10 s).
    TooSlow,
    /// The relay is shutting down.
    Shutdown,
    /// The client stopped answering pings.
    Unresponsive,
    /// No valid token.
    Unauthorized,
}

/// Runs one session until the client leaves, falls behind, or `cancel` fires.
/// `grant` is what the handshake's token allows; `None` when a token is required and
/// the handshake had none, so the first frame must be `auth`.
pub async fn serve<W, R>(
    sink: W,
    mut stream: R,
    feed: Feed,
    ctx: Arc<Services>,
    grant: Option<Grant>,
    cancel: CancellationToken,
) -> End
where
    W: Sink<Message> + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let metrics = ctx.metrics.clone();
    let _connected = metrics.connections.track();
    let (out, queue) = Outbox::new(&ctx.limits, cancel.clone());
    let (close_tx, close_rx) = oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, queue, close_rx));
    let consumers = Consumers::new(cancel.child_token());
    let mut session = Session {
        watches: Watches::default(),
        feed,
        consumers,
        out,
        grant,
        rate: RateLimit::new(ctx.limits.max_frames_per_second),
        ctx,
    };
    let ping_every = session.ctx.limits.ping_interval;
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut last_heard = tokio::time::Instant::now();
    // A client that must authenticate gets one ping interval (at most 10 s) to do so.
    let auth_deadline = tokio::time::sleep(ping_every.min(Duration::from_secs(10)));
    tokio::pin!(auth_deadline);

    let end = loop {
        tokio::select! {
            _ = cancel.cancelled() => break End::Shutdown,
            message = stream.next() => match message {
                Some(Ok(message)) => {
                    if let Err(end) = session.on_message(message).await {
                        break end;
                    }
                    // The client's next frame is read once its replies are queued.
                    if let Err(end) = session.out.flush().await {
                        break end;
                    }
                    // Heard now: time spent waiting for Redis or the writer was not the
                    // client's silence.
                    last_heard = tokio::time::Instant::now();
                }
                Some(Err(_)) | None => break End::ClientGone,
            },
            _ = &mut auth_deadline, if session.grant.is_none() => break End::Unauthorized,
            _ = pings.tick() => {
                if last_heard.elapsed() > ping_every * 2 {
                    break End::Unresponsive;
                }
                if let Err(end) = session.push(Message::Ping(Default::default())) {
                    break end;
                }
            }
            // Only events for what this session watches arrive here (the hub routes
            // them); `wants` drops what a resume or history read has sent already.
            event = session.feed.recv() => match event {
                Ok(event) => {
                    if session.watches.wants(&event) {
                        if let Err(end) = session.push(Message::Text(event.frame.clone())) {
                            break end;
                        }
                    }
                }
                Err(Lagged) => break End::TooSlow,
            },
            // Deliveries are paced by the client's acks (prefetch), and the rest
            // answers its acks: replies, which wait for the writer.
            (event, reference) = session.consumers.next() => {
                if let Err(end) = session.answer(&event.into_frame(), reference.as_ref()).await {
                    break end;
                }
            }
        }
    };

    session.consumers.stop_all();
    if end == End::TooSlow {
        metrics.slow_client_disconnects.inc();
    }
    let close = match end {
        End::ClientGone => None,
        End::TooSlow => Some((close_code::TOO_SLOW, "too slow; reconnect and resume")),
        End::Shutdown => Some((close_code::SERVICE_RESTART, "relay stopping; reconnect")),
        End::Unresponsive => Some((close_code::UNRESPONSIVE, "no answer to pings")),
        End::Unauthorized => Some((close_code::UNAUTHORIZED, "a valid token is required")),
    };
    let closing = close.is_some();
    if let Some((code, reason)) = close {
        let _ = close_tx.send(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        });
    }
    // Dropping the queue's sender lets the writer finish once it has flushed.
    drop(session);
    let mut writer = writer;
    if tokio::time::timeout(WRITER_GRACE, &mut writer)
        .await
        .is_err()
    {
        // The client is not reading at all; its socket is dropped unflushed.
        writer.abort();
    }
    if closing {
        // Read on until the client answers the close (or goes): a socket dropped with
        // the client's answer unread is reset, and the reset can reach the client
        // before it has read the close frame, which it then never sees.
        let answered = async {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(WRITER_GRACE, answered).await;
    }
    end
}

/// Sends queued frames to the client; a close frame, once given, goes out first and
/// ends the connection.
async fn write_loop<W>(mut sink: W, mut queue: Queue, mut close: oneshot::Receiver<CloseFrame>)
where
    W: Sink<Message> + Unpin,
{
    loop {
        tokio::select! {
            biased;
            frame = &mut close => {
                if let Ok(frame) = frame {
                    let _ = sink.send(Message::Close(Some(frame))).await;
                }
                break;
            }
            message = queue.rx.recv() => match message {
                Some(message) => {
                    if write_batch(&mut sink, message, &mut queue).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    let _ = sink.close().await;
}

/// Writes `first` and whatever else is queued already (up to [`WRITE_BATCH`] frames),
/// then flushes once: one write to the socket for a burst of frames instead of one
/// per frame. Each frame's slot goes back to its budget once it is off the queue.
async fn write_batch<W>(sink: &mut W, first: Outgoing, queue: &mut Queue) -> Result<(), W::Error>
where
    W: Sink<Message> + Unpin,
{
    let mut taken = [0; 2];
    let mut next = Some(first);
    while let Some(Outgoing { message, budget }) = next {
        taken[budget as usize] += 1;
        sink.feed(message).await?;
        next = match taken[0] + taken[1] < WRITE_BATCH {
            true => queue.rx.try_recv().ok(),
            false => None,
        };
    }
    queue.budgets.give_back(taken);
    sink.flush().await
}

/// Which budget a queued frame's slot comes from.
#[derive(Debug, Clone, Copy)]
enum Budget {
    /// Pushed by the relay: a live event, a ping.
    Pushed = 0,
    /// A reply to the client's own frames.
    Reply = 1,
}

/// A frame queued for the writer.
#[derive(Debug)]
struct Outgoing {
    message: Message,
    budget: Budget,
}

/// The free slots of each budget: taken by the session, given back by its writer.
#[derive(Debug)]
struct Budgets {
    pushed: Semaphore,
    replies: Semaphore,
}

impl Budgets {
    /// Gives back the slots of frames taken off the queue (counted by [`Budget`]).
    fn give_back(&self, taken: [usize; 2]) {
        self.pushed.add_permits(taken[Budget::Pushed as usize]);
        self.replies.add_permits(taken[Budget::Reply as usize]);
    }
}

/// The writer's end of the queue.
#[derive(Debug)]
struct Queue {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    budgets: Arc<Budgets>,
}

/// The session's end of the queue to its writer: one FIFO queue, so that frames go out
/// in the order they were queued (a `subscribed` before the live events it starts),
/// bounded by two budgets of `send_queue` slots each (see the module's doc).
#[derive(Debug)]
struct Outbox {
    tx: mpsc::UnboundedSender<Outgoing>,
    budgets: Arc<Budgets>,
    /// Replies waiting for a slot, oldest first; nothing is queued before them.
    waiting: VecDeque<Message>,
    /// How long [`Outbox::flush`] waits for one slot.
    wait: Duration,
    cancel: CancellationToken,
}

impl Outbox {
    fn new(limits: &SessionLimits, cancel: CancellationToken) -> (Self, Queue) {
        let (tx, rx) = mpsc::unbounded_channel();
        let slots = limits.send_queue.max(1);
        let budgets = Arc::new(Budgets {
            pushed: Semaphore::new(slots),
            replies: Semaphore::new(slots),
        });
        let outbox = Self {
            tx,
            budgets: budgets.clone(),
            waiting: VecDeque::new(),
            wait: reply_wait(limits.ping_interval),
            cancel,
        };
        (outbox, Queue { rx, budgets })
    }

    /// Queues a frame the relay pushes; none may wait, so a full budget means the
    /// client is too slow.
    fn push(&mut self, message: Message) -> Result<(), End> {
        // The reader flushes its replies before it handles anything else, so a push
        // never overtakes one.
        debug_assert!(self.waiting.is_empty(), "pushed past waiting replies");
        self.budgets
            .pushed
            .try_acquire()
            .map_err(|_| End::TooSlow)?
            .forget();
        self.send(message, Budget::Pushed)
    }

    /// Queues a reply now if its budget has room, else keeps it for
    /// [`Outbox::flush`].
    fn reply(&mut self, message: Message) -> Result<(), End> {
        if self.waiting.is_empty() {
            if let Ok(slot) = self.budgets.replies.try_acquire() {
                slot.forget();
                return self.send(message, Budget::Reply);
            }
        }
        self.waiting.push_back(message);
        Ok(())
    }

    /// Queues the replies kept by [`Outbox::reply`], each once the writer makes room:
    /// the session reads nothing from the client meanwhile. No room within
    /// [`reply_wait`] means the client reads nothing: too slow.
    async fn flush(&mut self) -> Result<(), End> {
        while let Some(message) = self.waiting.pop_front() {
            let slot = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => return Err(End::Shutdown),
                _ = self.tx.closed() => return Err(End::ClientGone),
                slot = tokio::time::timeout(self.wait, self.budgets.replies.acquire()) => slot,
            };
            match slot {
                Ok(Ok(slot)) => slot.forget(),
                // The budgets are never closed; were they, nothing could be sent.
                Ok(Err(_)) => return Err(End::ClientGone),
                Err(_) => return Err(End::TooSlow),
            }
            self.send(message, Budget::Reply)?;
        }
        Ok(())
    }

    fn send(&self, message: Message, budget: Budget) -> Result<(), End> {
        self.tx
            .send(Outgoing { message, budget })
            .map_err(|_| End::ClientGone)
    }
}

/// How long a reply waits for the writer to make room before the client counts as
/// too slow: two ping intervals (as long as a client may stay silent), at most
/// [`REPLY_WAIT`].
fn reply_wait(ping_interval: Duration) -> Duration {
    (ping_interval * 2).min(REPLY_WAIT)
}

/// The `error` frame for a write Redis did not take; the detail goes to the log.
/// The sender of a task published without `from`.
pub const DEFAULT_FROM: &str = "relay";

/// A task refused by the publishing rule ([`cortex_shared::publish`]), with the
/// rule's code, as the HTTP API answers it.
fn refused(error: &PublishError) -> ServerFrame {
    let code = match error {
        PublishError::InvalidAgent { .. } => ErrorCode::InvalidAgent,
        PublishError::InvalidType(_) => ErrorCode::InvalidType,
        PublishError::InvalidTrace(_) => ErrorCode::InvalidTrace,
        // A frame's payload is an object by its type; any other is a bad frame.
        PublishError::InvalidPayload(_) => ErrorCode::BadFrame,
    };
    ServerFrame::error(code, error.to_string())
}

fn redis_unavailable(error: impl std::fmt::Display) -> ServerFrame {
    tracing::warn!(%error, "write to redis failed");
    ServerFrame::error(
        ErrorCode::RedisUnavailable,
        "Redis is not reachable; retry later",
    )
}

struct Session {
    watches: Watches,
    /// The hub's events for what `watches` holds.
    feed: Feed,
    consumers: Consumers,
    out: Outbox,
    /// What the client may do; `None` until it authenticates.
    grant: Option<Grant>,
    rate: RateLimit,
    ctx: Arc<Services>,
}

/// A token bucket over client frames: `per_second` frames a second, bursts of as many.
#[derive(Debug)]
struct RateLimit {
    per_second: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl RateLimit {
    fn new(per_second: u32) -> Self {
        Self {
            per_second: f64::from(per_second.max(1)),
            tokens: f64::from(per_second.max(1)),
            last: std::time::Instant::now(),
        }
    }

    /// Whether one more frame may go now.
    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.per_second);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Session {
    async fn on_message(&mut self, message: Message) -> Result<(), End> {
        self.ctx.metrics.frames_in.inc();
        let max = self.ctx.limits.max_message_bytes;
        match message {
            // Not read: its ref, if any, is not echoed.
            Message::Text(text) if text.len() > max => self.reply(
                &ServerFrame::error(
                    ErrorCode::FrameTooLarge,
                    format!(
                        "message of {} bytes is larger than the {max} allowed",
                        text.len()
                    ),
                ),
                None,
            ),
            // Every dropped frame is answered, so that clients matching replies to
            // requests stay in step; a flooder that does not read its errors stops
            // being read itself (TCP pushes back), and is closed as too slow once its
            // replies have waited `reply_wait` for it.
            // Its ref says which call was dropped, so a client need not wait for it.
            Message::Text(text) if !self.rate.take() => self.reply(
                &ServerFrame::error(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} frames a second; this one was dropped",
                        self.ctx.limits.max_frames_per_second
                    ),
                ),
                read_ref(&text).ok().flatten().as_ref(),
            ),
            Message::Text(text) => {
                // A ref the relay cannot echo is refused with the frame: a client that
                // sent one waits for it.
                let reference = match read_ref(&text) {
                    Ok(reference) => reference,
                    Err(e) => {
                        return self.reply(
                            &ServerFrame::error(ErrorCode::BadFrame, format!("bad ref: {e}")),
                            None,
                        )
                    }
                };
                match cortex_shared::strict::from_str::<ClientFrame>(&text) {
                    Ok(frame) => self.on_frame(frame, reference.as_ref()).await,
                    Err(e) => self.reply(
                        &ServerFrame::error(
                            ErrorCode::BadFrame,
                            format!("not a client frame: {e}"),
                        ),
                        reference.as_ref(),
                    ),
                }
            }
            Message::Binary(_) => self.reply(
                &ServerFrame::error(
                    ErrorCode::BinaryFrame,
                    "binary frames are not part of the protocol; send JSON text",
                ),
                None,
            ),
            Message::Close(_) => Err(End::ClientGone),
            // Protocol-level pings are answered by the WebSocket layer.
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    /// Carries out `frame`; each reply to it carries `r`, its ref.
    async fn on_frame(&mut self, frame: ClientFrame, r: Option<&Ref>) -> Result<(), End> {
        let Some(grant) = self.grant.clone() else {
            // Only `auth` is taken before a valid token.
            let ClientFrame::Auth { token } = frame else {
                return Err(End::Unauthorized);
            };
            let grant = self
                .ctx
                .auth
                .check(Some(&token))
                .map_err(|_| End::Unauthorized)?;
            let role = format!("{:?}", grant.role).to_ascii_lowercase();
            self.grant = Some(grant);
            return self.reply(&ServerFrame::Authenticated { role }, r);
        };
        match frame {
            ClientFrame::Ping => self.reply(&ServerFrame::Pong, r),
            ClientFrame::Auth { .. } => self.reply(
                &ServerFrame::error(ErrorCode::NotAllowed, "already authenticated"),
                r,
            ),
            ClientFrame::Subscribe {
                agent,
                mode,
                consumer,
                resume,
                history,
            } => {
                let target = match SubscribeTarget::parse(&agent) {
                    Ok(target) => target,
                    Err(e) => {
                        return self.reply(
                            &ServerFrame::error(ErrorCode::InvalidAgent, e.to_string()),
                            r,
                        )
                    }
                };
                match mode {
                    SubscribeMode::Watch
                        if self.watches.len() >= self.ctx.limits.max_subscriptions =>
                    {
                        self.reply(
                            &ServerFrame::error(
                                ErrorCode::TooManySubscriptions,
                                format!(
                                    "a connection may watch {} targets at most",
                                    self.ctx.limits.max_subscriptions
                                ),
                            ),
                            r,
                        )
                    }
                    SubscribeMode::Consume if !grant.can_act_as(target.as_str()) => self.reply(
                        &ServerFrame::error(
                            ErrorCode::Forbidden,
                            format!("this token may not consume as {}", target.as_str()),
                        ),
                        r,
                    ),
                    SubscribeMode::Watch => {
                        // Routed to this session from now on, before any read, so
                        // that the read and the live feed leave nothing between them.
                        self.feed.watch(&target);
                        let request = WatchRequest { resume, history };
                        let frames = self
                            .watches
                            .subscribe(target, request, &self.ctx.redis)
                            .await;
                        self.reply_all(&frames, r).await
                    }
                    SubscribeMode::Consume => {
                        let reference = r.cloned();
                        match self
                            .consumers
                            .subscribe(target, consumer, reference, &self.ctx)
                        {
                            Ok(()) => Ok(()),
                            Err(refusal) => self.reply(&refusal.into_frame(), r),
                        }
                    }
                }
            }
            ClientFrame::Unsubscribe { agent: None } => {
                self.watches.unsubscribe(None);
                self.feed.unwatch(None);
                self.consumers.unsubscribe(None);
                let agent = cortex_shared::ALL_AGENTS.into();
                self.reply(&ServerFrame::Unsubscribed { agent }, r)
            }
            ClientFrame::Unsubscribe { agent: Some(agent) } => {
                match SubscribeTarget::parse(&agent) {
                    Ok(target) => {
                        self.watches.unsubscribe(Some(&target));
                        self.feed.unwatch(Some(&target));
                        self.consumers.unsubscribe(Some(&target));
                        self.reply(&ServerFrame::Unsubscribed { agent }, r)
                    }
                    Err(e) => self.reply(
                        &ServerFrame::error(ErrorCode::InvalidAgent, e.to_string()),
                        r,
                    ),
                }
            }
            ClientFrame::Heartbeat { agent, status } => {
                if let Err(e) = AgentName::parse(&agent) {
                    let error = ServerFrame::error(ErrorCode::InvalidAgent, e.to_string());
                    return self.reply(&error, r);
                }
                if !grant.can_act_as(&agent) {
                    return self.reply(
                        &ServerFrame::error(
                            ErrorCode::Forbidden,
                            format!("this token may not send heartbeats as {agent}"),
                        ),
                        r,
                    );
                }
                let heartbeat = heartbeat_now(&agent, status);
                let reply = match publish_heartbeat(&mut self.ctx.redis.clone(), &heartbeat).await {
                    Ok(entry_id) => ServerFrame::Published {
                        task_id: String::new(),
                        stream: HEARTBEAT_STREAM.into(),
                        entry_id,
                    },
                    Err(e) => redis_unavailable(e),
                };
                self.reply(&reply, r)
            }
            ClientFrame::Publish {
                to,
                from,
                priority,
                task_type,
                payload,
                parent_id,
                correlation_id,
            } => {
                if !grant.can_administer() {
                    return self.reply(
                        &ServerFrame::error(
                            ErrorCode::Forbidden,
                            "publishing needs an admin token",
                        ),
                        r,
                    );
                }
                let request = PublishRequest {
                    to,
                    priority,
                    task_type,
                    payload: Some(serde_json::Value::Object(payload)),
                    from,
                    parent_id,
                    correlation_id,
                };
                let task = match new_task(request, DEFAULT_FROM) {
                    Ok(task) => task,
                    Err(e) => return self.reply(&refused(&e), r),
                };
                let reply =
                    match publish_task(&mut self.ctx.redis.clone(), &task, &self.ctx.lifecycle)
                        .await
                    {
                        Ok(entry_id) => ServerFrame::Published {
                            task_id: task.id,
                            stream: priority.stream().into(),
                            entry_id,
                        },
                        Err(e) => redis_unavailable(e),
                    };
                self.reply(&reply, r)
            }
            ClientFrame::Ack { stream, entry_id } => {
                if let Err(refusal) = self.consumers.ack(&stream, &entry_id, r.cloned()) {
                    return self.reply(&refusal.into_frame(), r);
                }
                Ok(())
            }
            ClientFrame::Nack {
                stream,
                entry_id,
                error,
            } => {
                if let Err(refusal) = self.consumers.nack(&stream, &entry_id, error, r.cloned()) {
                    return self.reply(&refusal.into_frame(), r);
                }
                Ok(())
            }
        }
    }

    /// Sends a burst the client asked for (a resume or history read), waiting for the
    /// writer as any reply does. Its `subscribed` and `error` frames answer the
    /// `subscribe` and carry its ref `r`; the entries it read are sent as they are live.
    async fn reply_all(&mut self, frames: &[ServerFrame], r: Option<&Ref>) -> Result<(), End> {
        for frame in frames {
            let answers = matches!(
                frame,
                ServerFrame::Subscribed { .. } | ServerFrame::Error { .. }
            );
            self.reply(frame, r.filter(|_| answers))?;
        }
        self.out.flush().await
    }

    /// [`Session::reply`], then waits until it is queued.
    async fn answer(&mut self, frame: &ServerFrame, r: Option<&Ref>) -> Result<(), End> {
        self.reply(frame, r)?;
        self.out.flush().await
    }

    /// Queues `frame` as a reply to the client's frames, with `r` (the ref of the frame
    /// it answers) spliced in: it may wait for the writer (see [`Outbox::flush`], which
    /// the reader calls before it reads on).
    fn reply(&mut self, frame: &ServerFrame, r: Option<&Ref>) -> Result<(), End> {
        self.ctx.metrics.frames_out.inc();
        self.out
            .reply(Message::Text(with_ref(frame.to_json(), r).into()))
    }

    /// Queues a frame the relay pushes (a live event, a ping).
    fn push(&mut self, message: Message) -> Result<(), End> {
        self.ctx.metrics.frames_out.inc();
        self.out.push(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Auth, Origins};
    use crate::consume::DeliverySettings;
    use crate::engine::hub::{Audience, Hub};
    use crate::metrics::Metrics;
    use cortex_shared::EntryId;
    use futures::channel::mpsc as fmpsc;
    use serde_json::{json, Value};

    /// A context whose Redis is never reached by these tests (nothing listens there).
    fn test_context(send_queue: usize) -> Arc<Services> {
        let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
        Arc::new(Services {
            limits: SessionLimits {
                send_queue,
                max_message_bytes: 1024,
                max_subscriptions: 4,
                max_frames_per_second: 1000,
                ping_interval: Duration::from_secs(30),
                max_connections: 100,
            },
            redis: client
                .get_connection_manager_lazy(redis::aio::ConnectionManagerConfig::new())
                .unwrap(),
            client,
            delivery: DeliverySettings::default(),
            lifecycle: crate::store::lifecycle::LifecycleSettings::default(),
            metrics: Arc::default(),
            auth: Auth::default(),
            origins: Origins::default(),
        })
    }

    struct Harness {
        to_session: fmpsc::UnboundedSender<Result<Message, axum::Error>>,
        from_session: fmpsc::UnboundedReceiver<Message>,
        hub: Hub,
        cancel: CancellationToken,
        task: tokio::task::JoinHandle<End>,
    }

    fn start(send_queue: usize) -> Harness {
        let (to_session, stream) = fmpsc::unbounded();
        let (sink, from_session) = fmpsc::unbounded::<Message>();
        let hub = Hub::new(64);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(
            sink,
            stream,
            hub.feed(),
            test_context(send_queue),
            Some(Grant::admin()),
            cancel.clone(),
        ));
        Harness {
            to_session,
            from_session,
            hub,
            cancel,
            task,
        }
    }

    impl Harness {
        fn send(&self, text: &str) {
            self.to_session
                .unbounded_send(Ok(Message::Text(text.to_owned().into())))
                .unwrap();
        }

        async fn next(&mut self) -> Message {
            tokio::time::timeout(Duration::from_secs(5), self.from_session.next())
                .await
                .expect("a frame within 5 s")
                .expect("session still open")
        }

        async fn next_json(&mut self) -> Value {
            match self.next().await {
                Message::Text(t) => serde_json::from_str(&t).unwrap(),
                other => panic!("expected text, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn seed_frames_are_answered() {
        let mut h = start(16);
        h.send(r#"{"type":"subscribe","agent":"pink"}"#);
        assert_eq!(
            h.next_json().await,
            json!({"type":"subscribed","agent":"pink","status":"ok"})
        );
        h.send(r#"{"type":"ping"}"#);
        assert_eq!(h.next_json().await, json!({"type":"pong"}));
        h.send(r#"{"type":"unsubscribe"}"#);
        assert_eq!(
            h.next_json().await,
            json!({"type":"unsubscribed","agent":"*"})
        );
    }

    #[tokio::test]
    async fn bad_frames_get_errors_and_the_session_goes_on() {
        let mut h = start(16);
        for (text, code) in [
            ("{nope", "bad_frame"),
            (r#"{"type":"teleport"}"#, "bad_frame"),
            (
                r#"{"type":"subscribe","agent":"bad name"}"#,
                "invalid_agent",
            ),
            (
                &format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(2000)),
                "frame_too_large",
            ),
        ] {
            h.send(text);
            let reply = h.next_json().await;
            assert_eq!(reply["type"], "error");
            assert_eq!(reply["code"], code, "{text}");
            assert!(!reply["message"].as_str().unwrap().is_empty());
        }
        h.to_session
            .unbounded_send(Ok(Message::Binary(vec![1, 2, 3].into())))
            .unwrap();
        assert_eq!(h.next_json().await["code"], "binary_frame");
        h.send(r#"{"type":"ping"}"#);
        assert_eq!(h.next_json().await, json!({"type":"pong"}));
    }

    /// serde's derive reads a tagged frame from an array (the tag first, then the
    /// fields in order); each is a `bad_frame`, not a subscribe or a publish (which,
    /// with no Redis here, would answer otherwise).
    #[tokio::test]
    async fn arrays_where_objects_belong_are_bad_frames() {
        let mut h = start(16);
        for text in [
            r#"["subscribe","pink"]"#,
            r#"["ping"]"#,
            r#"["publish","pink",null,"high","coding",{}]"#,
            r#"{"type":"heartbeat","agent":"pink","status":["idle"]}"#,
            r#"[{"type":"ping"}]"#,
        ] {
            h.send(text);
            let reply = h.next_json().await;
            assert_eq!(reply["type"], "error", "{text}: {reply}");
            assert_eq!(reply["code"], "bad_frame", "{text}: {reply}");
        }
        h.send(r#"{"type":"unsubscribe","agent":"pink"}"#);
        assert_eq!(
            h.next_json().await,
            json!({"type":"unsubscribed","agent":"pink"})
        );
        h.send(r#"{"type":"ping"}"#);
        assert_eq!(h.next_json().await, json!({"type":"pong"}));
    }

    /// The raw text of the next frame.
    async fn next_text(h: &mut Harness) -> String {
        match h.next().await {
            Message::Text(t) => t.to_string(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn frames_without_a_ref_are_answered_byte_for_byte_as_before() {
        let mut h = start(16);
        h.send(r#"{"type":"subscribe","agent":"pink"}"#);
        assert_eq!(
            next_text(&mut h).await,
            r#"{"type":"subscribed","agent":"pink","status":"ok"}"#
        );
        h.send(r#"{"type":"ping"}"#);
        assert_eq!(next_text(&mut h).await, r#"{"type":"pong"}"#);
        // A `ref` deeper in the frame is not the frame's.
        h.send(r#"{"type":"heartbeat","agent":"bad name","status":{"ref":1}}"#);
        assert!(!next_text(&mut h).await.contains("ref"));
    }

    #[tokio::test]
    async fn every_reply_and_error_carries_the_frames_ref() {
        let mut h = start(16);
        for (text, reply) in [
            (r#"{"type":"ping","ref":1}"#, json!({"ref":1,"type":"pong"})),
            (
                r#"{"ref":"w-1","type":"subscribe","agent":"pink"}"#,
                json!({"ref":"w-1","type":"subscribed","agent":"pink","status":"ok"}),
            ),
            (
                r#"{"type":"unsubscribe","agent":"pink","ref":2}"#,
                json!({"ref":2,"type":"unsubscribed","agent":"pink"}),
            ),
            (
                r#"{"type":"unsubscribe","ref":-3.5}"#,
                json!({"ref":-3.5,"type":"unsubscribed","agent":"*"}),
            ),
        ] {
            h.send(text);
            assert_eq!(h.next_json().await, reply, "{text}");
        }
        for (text, code) in [
            (r#"{"type":"teleport","ref":4}"#, "bad_frame"),
            (r#"{"type":"subscribe","ref":4}"#, "bad_frame"),
            (r#"["ping",{"ref":4}]"#, "bad_frame"),
            (
                r#"{"type":"subscribe","agent":"bad name","ref":4}"#,
                "invalid_agent",
            ),
            (
                r#"{"type":"subscribe","agent":"*","mode":"consume","ref":4}"#,
                "not_allowed",
            ),
            (r#"{"type":"auth","token":"t","ref":4}"#, "not_allowed"),
            (
                r#"{"type":"ack","stream":"cortex:tasks:high","entry_id":"1-0","ref":4}"#,
                "unknown_delivery",
            ),
            (
                r#"{"type":"nack","stream":"s","entry_id":"1-0","error":"e","ref":4}"#,
                "unknown_delivery",
            ),
            (
                r#"{"type":"heartbeat","agent":"bad name","ref":4}"#,
                "invalid_agent",
            ),
            (
                r#"{"type":"publish","priority":"high","task_type":"two words","ref":4}"#,
                "invalid_type",
            ),
        ] {
            h.send(text);
            let reply = h.next_json().await;
            assert_eq!(reply["type"], "error", "{text}: {reply}");
            assert_eq!(reply["code"], code, "{text}: {reply}");
            // The array is no frame at all, so its ref is no frame's either.
            let echoed = if text.starts_with('[') {
                Value::Null
            } else {
                json!(4)
            };
            assert_eq!(reply["ref"], echoed, "{text}: {reply}");
        }
    }

    #[tokio::test]
    async fn a_consumers_answer_to_its_subscribe_carries_the_subscribes_ref() {
        // Redis cannot be reached: the consumer says so, for the subscribe that
        // started it, with its ref (and says it again at each retry).
        let mut h = start(16);
        h.send(r#"{"type":"subscribe","agent":"pink","mode":"consume","ref":"c-1"}"#);
        let reply = h.next_json().await;
        assert_eq!(
            (&reply["type"], &reply["code"], &reply["ref"]),
            (&json!("error"), &json!("redis_unavailable"), &json!("c-1")),
            "{reply}"
        );
    }

    #[tokio::test]
    async fn a_bad_ref_is_a_bad_frame_that_echoes_nothing() {
        let mut h = start(16);
        let long = format!(r#"{{"type":"ping","ref":"{}"}}"#, "x".repeat(63));
        for text in [
            r#"{"type":"ping","ref":null}"#,
            r#"{"type":"ping","ref":true}"#,
            r#"{"type":"ping","ref":{"n":1}}"#,
            r#"{"type":"ping","ref":[1]}"#,
            r#"{"type":"ping","ref":1,"ref":2}"#,
            &long,
        ] {
            h.send(text);
            let reply = h.next_json().await;
            assert_eq!(reply["code"], "bad_frame", "{text}: {reply}");
            assert!(reply.get("ref").is_none(), "{text}: {reply}");
            assert!(
                reply["message"].as_str().unwrap().contains("ref"),
                "{reply}"
            );
        }
        // Not carried out (no pong), and the session goes on.
        h.send(r#"{"type":"ping","ref":"ok"}"#);
        assert_eq!(h.next_json().await, json!({"ref":"ok","type":"pong"}));
    }

    #[tokio::test]
    async fn events_reach_only_matching_subscriptions() {
        let mut h = start(16);
        h.send(r#"{"type":"subscribe","agent":"pink"}"#);
        h.next_json().await;
        h.hub.publish(
            "cortex:tasks:high",
            EntryId::new(1, 0),
            Audience::TaskFor("harold".into()),
            &ServerFrame::error(ErrorCode::Internal, "for harold"),
        );
        h.hub.publish(
            "cortex:tasks:high",
            EntryId::new(2, 0),
            Audience::TaskFor("pink".into()),
            &ServerFrame::error(ErrorCode::Internal, "for pink"),
        );
        // The harold event was published first; only the pink one may arrive.
        assert_eq!(h.next_json().await["message"], "for pink");
    }

    #[tokio::test]
    async fn shutdown_closes_with_service_restart() {
        let mut h = start(16);
        h.cancel.cancel();
        match h.next().await {
            Message::Close(Some(frame)) => assert_eq!(frame.code, close_code::SERVICE_RESTART),
            other => panic!("expected close, got {other:?}"),
        }
        assert_eq!(h.task.await.unwrap(), End::Shutdown);
    }

    #[tokio::test]
    async fn a_burst_of_frames_beyond_the_send_queue_is_answered_in_full() {
        // 900 pings (within the 1000 a second allowed) on a queue of 8, while watching:
        // the replies wait for the writer, and the live events still go out.
        let mut h = start(8);
        h.send(r#"{"type":"subscribe","agent":"*"}"#);
        assert_eq!(h.next_json().await["type"], "subscribed");
        for _ in 0..900 {
            h.send(r#"{"type":"ping"}"#);
        }
        for n in 0..3 {
            h.hub.publish(
                "cortex:tasks:high",
                EntryId::new(n + 1, 0),
                Audience::TaskFor(String::new()),
                &ServerFrame::error(ErrorCode::Internal, "live"),
            );
        }
        let (mut pongs, mut live) = (0, 0);
        while pongs < 900 || live < 3 {
            match h.next_json().await {
                frame if frame == json!({"type":"pong"}) => pongs += 1,
                frame if frame["message"] == "live" => live += 1,
                other => panic!("after {pongs} pongs and {live} events: {other}"),
            }
        }
        assert_eq!((pongs, live), (900, 3));
        assert!(!h.task.is_finished(), "the session goes on");
    }

    /// A session with a queue of 4 whose client reads nothing (its socket takes one
    /// frame), pinged every `ping_interval` (so a reply waits two of them, at most
    /// 10 s); and the relay's counters.
    fn start_unread(ping_interval: Duration) -> (Harness, fmpsc::Receiver<Message>, Arc<Metrics>) {
        let (to_session, stream) = fmpsc::unbounded();
        let (sink, unread) = fmpsc::channel::<Message>(0);
        let (_, from_session) = fmpsc::unbounded();
        let hub = Hub::new(64);
        let cancel = CancellationToken::new();
        let mut ctx = test_context(4);
        Arc::get_mut(&mut ctx).unwrap().limits.ping_interval = ping_interval;
        let metrics = ctx.metrics.clone();
        let task = tokio::spawn(serve(
            sink,
            stream,
            hub.feed(),
            ctx,
            Some(Grant::admin()),
            cancel.clone(),
        ));
        let harness = Harness {
            to_session,
            from_session,
            hub,
            cancel,
            task,
        };
        (harness, unread, metrics)
    }

    #[tokio::test]
    async fn a_flooder_that_reads_nothing_is_closed_as_too_slow() {
        let (h, _unread, _) = start_unread(Duration::from_millis(100));
        for _ in 0..100 {
            h.send(r#"{"type":"ping"}"#);
        }
        let end = tokio::time::timeout(Duration::from_secs(5), h.task)
            .await
            .expect("the session ends")
            .unwrap();
        assert_eq!(end, End::TooSlow);
    }

    #[tokio::test]
    async fn a_session_waiting_for_its_writer_still_stops_at_shutdown() {
        let (h, _unread, metrics) = start_unread(Duration::from_secs(30));
        for _ in 0..100 {
            h.send(r#"{"type":"ping"}"#);
        }
        // Four replies fill the budget (the writer, stuck on the socket, gives none
        // back): the fifth waits, and the session reads no sixth frame.
        tokio::time::timeout(Duration::from_secs(5), async {
            while metrics.frames_in.get() < 5 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the session reads five frames");
        tokio::task::yield_now().await;
        assert_eq!(metrics.frames_in.get(), 5, "stopped reading");
        h.cancel.cancel();
        // Its reply would wait 10 s; it ends within the writer's grace (2 s).
        let end = tokio::time::timeout(Duration::from_secs(5), h.task)
            .await
            .expect("the session ends at once")
            .unwrap();
        assert_eq!(end, End::Shutdown);
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_closed_as_too_slow() {
        // A sink that never accepts anything: the queue (2) fills up.
        let (to_session, stream) = fmpsc::unbounded();
        let (sink, _rx) = fmpsc::channel::<Message>(0);
        let hub = Hub::new(64);
        let task = tokio::spawn(serve(
            sink,
            stream,
            hub.feed(),
            test_context(2),
            Some(Grant::admin()),
            CancellationToken::new(),
        ));
        to_session
            .unbounded_send(Ok(Message::Text(
                r#"{"type":"subscribe","agent":"*"}"#.into(),
            )))
            .unwrap();
        // Keep publishing until the session gives up; it must within the hub's capacity.
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            let mut task = task;
            loop {
                hub.publish(
                    "cortex:tasks:high",
                    EntryId::new(1, 0),
                    Audience::TaskFor(String::new()),
                    &ServerFrame::Pong,
                );
                tokio::select! {
                    end = &mut task => break end.unwrap(),
                    _ = tokio::task::yield_now() => {}
                }
            }
        })
        .await
        .expect("session ends");
        assert_eq!(end, End::TooSlow);
    }
}
