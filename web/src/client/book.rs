//! The JavaScript client's bookkeeping, free of JavaScript: who listens to what, which
//! calls wait for which reply, and what the client's state is. Every operation returns
//! the [`Effect`]s the `#[wasm_bindgen]` layer then carries out (send a frame, settle a
//! promise, call a callback), so all of it is unit-tested on the host.
//!
//! Every frame a call sends carries a `ref` (its [`RequestId`]), which the relay echoes
//! in the frame's replies and errors (README, WebSocket protocol): a reply with a ref
//! settles the call of that ref, and an `error` with the ref of a `subscribe` refuses
//! that subscription. `subscribed` is matched by agent and mode in any case, as the
//! `subscribe` frames the connection replays after a reconnect carry no ref.
//!
//! A relay that echoes no refs (an older one) is matched by what its replies name:
//! `acked`/`nacked` by stream and entry id, a heartbeat's `published` (the only
//! `published` this client asks for over the socket) in order, an `error` by its code
//! and what its message names. An error that matches no call goes to `onError`. Every
//! call that waits on the socket also has a timeout, so none waits forever on a frame
//! the relay dropped.

use super::error::{code, ClientError};
use crate::connection::{ConnEvent, ConnState};
use cortex_shared::frame::close_code;
use cortex_shared::{
    AgentName, ClientFrame, EntryId, ErrorCode, JsonObject, Ref, ServerFrame, SubscribeMode,
    SubscribeTarget, TaskMessage, ALL_AGENTS, HEARTBEAT_STREAM,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Identifies one `watch` or `consume` callback.
pub(crate) type ListenerId = u32;
/// Identifies one call waiting for a reply on the socket; its frame's `ref`.
pub(crate) type RequestId = u64;

/// How many entry ids per stream each watch callback remembers, to be given an entry
/// once even when two watches' history or resume reads overlap (a read sends at most
/// 200 per stream).
const SEEN_PER_STREAM: usize = 256;

/// What the JavaScript layer must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect<R, L> {
    /// Send this frame on the connection.
    Send(ClientFrame),
    /// Send this frame with this `ref`.
    Request(ClientFrame, Ref),
    /// Fulfil a promise with this value.
    Resolve(R, Value),
    /// Fulfil a `watch`/`consume` promise with its subscription.
    Subscribed(R, SubscriptionInfo),
    /// Reject a promise.
    Reject(R, ClientError),
    /// Call a watch callback with a task.
    Task(L, Value),
    /// Call the consume callback with a task to ack or nack (`stream`, `entry_id`).
    Delivery(L, Value, String, String),
    /// Call a watch's `onGap` with a gap.
    Gap(L, Value),
    /// Call a watch's `onLifecycle` with a `lifecycle` frame.
    Lifecycle(L, Value),
    /// Tell `onState` the state changed, and why for `offline` after a refusal.
    State(&'static str, Option<ClientError>),
    /// Tell `onError` about an error frame no call was waiting for.
    Unattributed(ClientError),
    /// Start the timeout of a call waiting on the socket.
    Timer(RequestId),
}

/// `watch` or `consume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Read-only.
    Watch,
    /// As a member of the agent's consumer group.
    Consume,
}

impl Mode {
    /// `watch` or `consume`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Watch => "watch",
            Mode::Consume => "consume",
        }
    }

    fn of(mode: SubscribeMode) -> Self {
        match mode {
            SubscribeMode::Watch => Mode::Watch,
            SubscribeMode::Consume => Mode::Consume,
        }
    }
}

/// A subscription the relay confirmed, as handed to JavaScript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubscriptionInfo {
    /// The callback it feeds.
    pub(crate) listener: ListenerId,
    /// The agent, or `*`.
    pub(crate) agent: String,
    /// Watch or consume.
    pub(crate) mode: Mode,
    /// The consumer name, when consuming.
    pub(crate) consumer: Option<String>,
}

#[derive(Debug)]
struct Watcher<L> {
    id: ListenerId,
    agent: String,
    target: SubscribeTarget,
    on_task: L,
    on_gap: Option<L>,
    on_lifecycle: Option<L>,
    /// Per stream, the newest entry ids given to this callback.
    seen: BTreeMap<String, BTreeSet<EntryId>>,
}

impl<L> Watcher<L> {
    /// Whether the entry is new to this callback (and remember it).
    fn first_time(&mut self, stream: &str, entry_id: &str) -> bool {
        let Ok(id) = entry_id.parse::<EntryId>() else {
            return true;
        };
        let seen = self.seen.entry(stream.to_owned()).or_default();
        if !seen.insert(id) {
            return false;
        }
        if seen.len() > SEEN_PER_STREAM {
            seen.pop_first();
        }
        true
    }
}

#[derive(Debug)]
struct Consumer<L> {
    id: ListenerId,
    agent: String,
    on_task: L,
}

/// A subscription on the relay (one per agent; several watch callbacks may share it).
#[derive(Debug, Clone, Copy)]
struct Sub {
    mode: Mode,
    /// The relay answered `subscribed` on the current connection.
    confirmed: bool,
    /// The ref the `subscribe` went with, on this connection (a replayed one has none).
    sent_as: Option<RequestId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    Heartbeat,
    Settle {
        stream: String,
        entry_id: String,
        nack: bool,
    },
}

#[derive(Debug)]
struct Pending<R> {
    id: RequestId,
    request: Request,
    resolver: R,
    /// The frame, until it is sent (calls made while the socket is not ready wait).
    unsent: Option<ClientFrame>,
}

#[derive(Debug)]
struct PendingSubscribe<R> {
    agent: String,
    mode: Mode,
    listener: ListenerId,
    resolver: R,
}

/// Everything the client keeps between events.
#[derive(Debug)]
pub(crate) struct Book<R, L> {
    token_given: bool,
    /// The socket is open (the connection core said `Connected`).
    open: bool,
    /// The relay has answered on the open socket (so it took the token): requests go.
    ready: bool,
    /// The state last told to `onState`.
    reported: &'static str,
    closed: bool,
    /// Why the relay refused the connection (close code 4401).
    refused: Option<ClientError>,
    next_listener: ListenerId,
    next_request: RequestId,
    watchers: Vec<Watcher<L>>,
    consumer: Option<Consumer<L>>,
    subs: BTreeMap<String, Sub>,
    subscribes: Vec<PendingSubscribe<R>>,
    requests: Vec<Pending<R>>,
}

type Effects<R, L> = Vec<Effect<R, L>>;

impl<R, L: Clone> Book<R, L> {
    /// An empty book; `token_given` when the connection authenticates with a token.
    pub(crate) fn new(token_given: bool) -> Self {
        Self {
            token_given,
            open: false,
            ready: false,
            reported: ConnState::Connecting.as_str(),
            closed: false,
            refused: None,
            next_listener: 1,
            next_request: 1,
            watchers: Vec::new(),
            consumer: None,
            subs: BTreeMap::new(),
            subscribes: Vec::new(),
            requests: Vec::new(),
        }
    }

    /// The state as `onState` reports it: `connected` only once the relay has answered.
    pub(crate) fn state(&self) -> &'static str {
        self.reported
    }

    /// Why calls fail now, if they do: closed, or the token refused.
    fn gone(&self) -> Option<ClientError> {
        if let Some(refused) = &self.refused {
            return Some(refused.clone());
        }
        self.closed.then(ClientError::closed)
    }

    fn request_id(&mut self) -> RequestId {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    fn listener_id(&mut self) -> ListenerId {
        let id = self.next_listener;
        self.next_listener += 1;
        id
    }

    /// Registers a watch callback on `agent` (or `*`); the promise settles when the
    /// relay confirms the subscription (at once if it already has).
    #[cfg(test)]
    pub(crate) fn watch(
        &mut self,
        agent: &str,
        history: u32,
        on_task: L,
        on_gap: Option<L>,
        resolver: R,
    ) -> Effects<R, L> {
        self.watch_with(agent, history, on_task, on_gap, None, resolver)
    }

    /// [`Book::watch`], with an `onLifecycle` callback for the `lifecycle` frames of
    /// the tasks it sees.
    pub(crate) fn watch_with(
        &mut self,
        agent: &str,
        history: u32,
        on_task: L,
        on_gap: Option<L>,
        on_lifecycle: Option<L>,
        resolver: R,
    ) -> Effects<R, L> {
        if let Some(error) = self.gone() {
            return vec![Effect::Reject(resolver, error)];
        }
        let target = match SubscribeTarget::parse(agent) {
            Ok(target) => target,
            Err(e) => {
                return vec![Effect::Reject(
                    resolver,
                    ClientError::new(code::INVALID_AGENT, e.to_string()),
                )]
            }
        };
        if self.consumer.as_ref().is_some_and(|c| c.agent == agent) {
            return vec![Effect::Reject(
                resolver,
                ClientError::new(
                    code::NOT_ALLOWED,
                    format!("this client consumes {agent}; watch it with another CortexClient"),
                ),
            )];
        }
        let id = self.listener_id();
        self.watchers.push(Watcher {
            id,
            agent: agent.to_owned(),
            target,
            on_task,
            on_gap,
            on_lifecycle,
            seen: BTreeMap::new(),
        });
        let info = SubscriptionInfo {
            listener: id,
            agent: agent.to_owned(),
            mode: Mode::Watch,
            consumer: None,
        };
        match self.subs.get(agent) {
            Some(sub) if sub.confirmed => vec![Effect::Subscribed(resolver, info)],
            Some(_) => {
                self.wait_subscribed(agent, Mode::Watch, id, resolver);
                Vec::new()
            }
            None => {
                let reference = self.request_id();
                self.subs.insert(
                    agent.to_owned(),
                    Sub {
                        mode: Mode::Watch,
                        confirmed: false,
                        sent_as: Some(reference),
                    },
                );
                self.wait_subscribed(agent, Mode::Watch, id, resolver);
                let frame = ClientFrame::Subscribe {
                    agent: agent.to_owned(),
                    mode: SubscribeMode::Watch,
                    consumer: None,
                    resume: None,
                    history: Some(history),
                };
                vec![Effect::Request(frame, Ref::number(reference))]
            }
        }
    }

    /// Consumes `agent`'s tasks as `consumer`; the promise settles when the relay
    /// confirms. One agent per client (the relay allows one per connection).
    pub(crate) fn consume(
        &mut self,
        agent: &str,
        consumer: &str,
        on_task: L,
        resolver: R,
    ) -> Effects<R, L> {
        if let Some(error) = self.gone() {
            return vec![Effect::Reject(resolver, error)];
        }
        let refuse = |resolver, code: &str, message: String| {
            vec![Effect::Reject(resolver, ClientError::new(code, message))]
        };
        if agent == ALL_AGENTS {
            return refuse(
                resolver,
                code::NOT_ALLOWED,
                "consume needs one agent; \"*\" can only be watched".into(),
            );
        }
        if let Err(e) = AgentName::parse(agent) {
            return refuse(resolver, code::INVALID_AGENT, e.to_string());
        }
        if let Err(e) = AgentName::parse(consumer) {
            return refuse(resolver, code::INVALID_AGENT, format!("consumer name: {e}"));
        }
        if let Some(current) = &self.consumer {
            return refuse(
                resolver,
                code::NOT_ALLOWED,
                format!(
                    "this client already consumes {}; consume another agent with another \
                     CortexClient",
                    current.agent
                ),
            );
        }
        if self.subs.contains_key(agent) {
            return refuse(
                resolver,
                code::NOT_ALLOWED,
                format!("this client watches {agent}; consume it with another CortexClient"),
            );
        }
        let id = self.listener_id();
        self.consumer = Some(Consumer {
            id,
            agent: agent.to_owned(),
            on_task,
        });
        let reference = self.request_id();
        self.subs.insert(
            agent.to_owned(),
            Sub {
                mode: Mode::Consume,
                confirmed: false,
                sent_as: Some(reference),
            },
        );
        self.wait_subscribed(agent, Mode::Consume, id, resolver);
        let frame = ClientFrame::consume(agent, Some(consumer.to_owned()));
        vec![Effect::Request(frame, Ref::number(reference))]
    }

    fn wait_subscribed(&mut self, agent: &str, mode: Mode, listener: ListenerId, resolver: R) {
        self.subscribes.push(PendingSubscribe {
            agent: agent.to_owned(),
            mode,
            listener,
            resolver,
        });
    }

    /// Removes a callback; the relay subscription goes with the agent's last one.
    pub(crate) fn unsubscribe(&mut self, listener: ListenerId) -> Effects<R, L> {
        let agent = if let Some(i) = self.watchers.iter().position(|w| w.id == listener) {
            self.watchers.remove(i).agent
        } else if self.consumer.as_ref().is_some_and(|c| c.id == listener) {
            self.consumer.take().map(|c| c.agent).unwrap_or_default()
        } else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        for pending in drain(&mut self.subscribes, |s| s.listener == listener) {
            effects.push(Effect::Reject(pending.resolver, ClientError::closed()));
        }
        let still_used = self.watchers.iter().any(|w| w.agent == agent);
        if !still_used && self.subs.remove(&agent).is_some() && !self.closed {
            effects.push(Effect::Send(ClientFrame::Unsubscribe {
                agent: Some(agent),
            }));
        }
        effects
    }

    /// Sends a heartbeat for `agent`; settled by the relay's `published`.
    pub(crate) fn heartbeat(
        &mut self,
        agent: &str,
        status: JsonObject,
        resolver: R,
    ) -> Effects<R, L> {
        if let Err(e) = AgentName::parse(agent) {
            return vec![Effect::Reject(
                resolver,
                ClientError::new(code::INVALID_AGENT, e.to_string()),
            )];
        }
        let frame = ClientFrame::Heartbeat {
            agent: agent.to_owned(),
            status,
        };
        self.request(Request::Heartbeat, frame, resolver)
    }

    /// Acks (`error` `None`) or nacks a delivered task; settled by `acked`/`nacked`.
    pub(crate) fn settle(
        &mut self,
        stream: &str,
        entry_id: &str,
        error: Option<String>,
        resolver: R,
    ) -> Effects<R, L> {
        let request = Request::Settle {
            stream: stream.to_owned(),
            entry_id: entry_id.to_owned(),
            nack: error.is_some(),
        };
        let (stream, entry_id) = (stream.to_owned(), entry_id.to_owned());
        let frame = match error {
            None => ClientFrame::Ack { stream, entry_id },
            Some(error) => ClientFrame::Nack {
                stream,
                entry_id,
                error,
            },
        };
        self.request(request, frame, resolver)
    }

    fn request(&mut self, request: Request, frame: ClientFrame, resolver: R) -> Effects<R, L> {
        if let Some(error) = self.gone() {
            return vec![Effect::Reject(resolver, error)];
        }
        let id = self.request_id();
        let mut effects = vec![Effect::Timer(id)];
        let unsent = if self.ready {
            effects.push(Effect::Request(frame, Ref::number(id)));
            None
        } else {
            Some(frame)
        };
        self.requests.push(Pending {
            id,
            request,
            resolver,
            unsent,
        });
        effects
    }

    /// The call `id` had no answer in time.
    pub(crate) fn expire(&mut self, id: RequestId, after_secs: u64) -> Effects<R, L> {
        drain(&mut self.requests, |p| p.id == id)
            .map(|p| {
                let what = if p.unsent.is_some() {
                    "the relay could not be reached"
                } else {
                    "the relay did not answer"
                };
                Effect::Reject(
                    p.resolver,
                    ClientError::new(code::TIMEOUT, format!("{what} within {after_secs} s")),
                )
            })
            .collect()
    }

    /// Closes the client: every waiting call is rejected with `closed`.
    pub(crate) fn close(&mut self) -> Effects<R, L> {
        self.closed = true;
        self.watchers.clear();
        self.consumer = None;
        self.subs.clear();
        self.reject_all(&ClientError::closed())
    }

    fn reject_all(&mut self, error: &ClientError) -> Effects<R, L> {
        let subscribes = self.subscribes.drain(..).map(|s| s.resolver);
        let requests = self.requests.drain(..).map(|p| p.resolver);
        subscribes
            .chain(requests)
            .map(|r| Effect::Reject(r, error.clone()))
            .collect()
    }

    fn report(&mut self, state: &'static str, why: Option<ClientError>) -> Option<Effect<R, L>> {
        (self.reported != state).then(|| {
            self.reported = state;
            Effect::State(state, why)
        })
    }

    /// What an event of the connection changes.
    pub(crate) fn on_event(&mut self, event: ConnEvent) -> Effects<R, L> {
        let mut effects = Vec::new();
        match event {
            ConnEvent::State(ConnState::Connecting) => {
                effects.extend(self.report(ConnState::Connecting.as_str(), None));
            }
            ConnEvent::State(ConnState::Connected) => self.open = true,
            ConnEvent::State(ConnState::Reconnecting) => {
                self.open = false;
                self.ready = false;
                for sub in self.subs.values_mut() {
                    sub.confirmed = false;
                    sub.sent_as = None;
                }
                // What was sent is lost with the socket; what was not waits for the next.
                let lost = drain(&mut self.requests, |p| p.unsent.is_none());
                effects.extend(lost.map(|p| {
                    let message = match p.request {
                        Request::Heartbeat => "the connection closed before the relay answered",
                        Request::Settle { .. } => {
                            "the connection closed before the relay answered; the task \
                             stays pending and will be delivered again"
                        }
                    };
                    Effect::Reject(p.resolver, ClientError::new(code::DISCONNECTED, message))
                }));
                effects.extend(self.report(ConnState::Reconnecting.as_str(), None));
            }
            ConnEvent::State(ConnState::Offline) => {
                self.open = false;
                self.ready = false;
                let error = self.gone().unwrap_or_else(ClientError::closed);
                self.closed = true;
                effects.extend(self.reject_all(&error));
                effects.extend(self.report(ConnState::Offline.as_str(), self.refused.clone()));
            }
            ConnEvent::Closed { code, reason } if code == close_code::UNAUTHORIZED => {
                self.refused = Some(ClientError::new(
                    code::UNAUTHORIZED,
                    format!("the relay refused the token (WebSocket closed with {code}: {reason})"),
                ));
            }
            ConnEvent::Closed { .. }
            | ConnEvent::Undecodable { .. }
            | ConnEvent::Retrying { .. } => {}
            ConnEvent::Frame(frame) => self.on_reply(frame, None, &mut effects),
            ConnEvent::Reply(frame, reference) => {
                self.on_reply(frame, Some(&reference), &mut effects)
            }
        }
        effects
    }

    /// A frame from the relay, with the `ref` it carries.
    fn on_reply(
        &mut self,
        frame: ServerFrame,
        reference: Option<&Ref>,
        effects: &mut Effects<R, L>,
    ) {
        if self.open && !self.ready {
            // Any answer on the new socket means the relay took the token.
            self.ready = true;
            effects.extend(self.report(ConnState::Connected.as_str(), None));
            for pending in &mut self.requests {
                let reference = Ref::number(pending.id);
                effects.extend(
                    pending
                        .unsent
                        .take()
                        .map(|frame| Effect::Request(frame, reference)),
                );
            }
        }
        self.on_frame(frame, reference, effects);
    }

    fn on_frame(
        &mut self,
        frame: ServerFrame,
        reference: Option<&Ref>,
        effects: &mut Effects<R, L>,
    ) {
        match frame {
            ServerFrame::Subscribed {
                agent,
                mode,
                consumer,
                ..
            } => {
                let mode = Mode::of(mode);
                match self.subs.get_mut(&agent) {
                    Some(sub) if sub.mode == mode => sub.confirmed = true,
                    _ => return,
                }
                let ready = drain(&mut self.subscribes, |s| s.agent == agent && s.mode == mode);
                effects.extend(ready.map(|s| {
                    let info = SubscriptionInfo {
                        listener: s.listener,
                        agent: agent.clone(),
                        mode,
                        consumer: consumer.clone(),
                    };
                    Effect::Subscribed(s.resolver, info)
                }));
            }
            ServerFrame::Task {
                data,
                stream,
                entry_id,
                delivery_count: None,
            } => {
                let mut value = None;
                for watcher in &mut self.watchers {
                    if watcher.target.sees_task_for(&data.to)
                        && watcher.first_time(&stream, &entry_id)
                    {
                        let value =
                            value.get_or_insert_with(|| task_json(&data, &stream, &entry_id, None));
                        effects.push(Effect::Task(watcher.on_task.clone(), value.clone()));
                    }
                }
            }
            ServerFrame::Task {
                data,
                stream,
                entry_id,
                delivery_count: Some(count),
            } => {
                if let Some(consumer) = &self.consumer {
                    let value = task_json(&data, &stream, &entry_id, Some(count));
                    effects.push(Effect::Delivery(
                        consumer.on_task.clone(),
                        value,
                        stream,
                        entry_id,
                    ));
                }
            }
            ServerFrame::Gap {
                stream,
                after,
                resumed_from,
            } => {
                let value = json!({"stream": stream, "after": after, "resumed_from": resumed_from});
                for on_gap in self.watchers.iter().filter_map(|w| w.on_gap.as_ref()) {
                    effects.push(Effect::Gap(on_gap.clone(), value.clone()));
                }
            }
            frame @ ServerFrame::Lifecycle { .. } => {
                let ServerFrame::Lifecycle { agent, .. } = &frame else {
                    return;
                };
                // A record for no agent (published) is for every watch that sees the
                // task, which the relay checked before sending it.
                let agent = agent.clone().unwrap_or_default();
                let mut value = None;
                for watcher in &self.watchers {
                    if let Some(callback) = &watcher.on_lifecycle {
                        if agent.is_empty() || watcher.target.sees_task_for(&agent) {
                            let value = value.get_or_insert_with(|| {
                                serde_json::to_value(&frame).unwrap_or(Value::Null)
                            });
                            effects.push(Effect::Lifecycle(callback.clone(), value.clone()));
                        }
                    }
                }
            }
            ServerFrame::Acked { stream, entry_id } => {
                let call = match reference {
                    Some(reference) => self.take_ref(reference),
                    None => self.take_settle(&stream, &entry_id, false),
                };
                if let Some(p) = call {
                    let value = json!({"stream": stream, "entry_id": entry_id});
                    effects.push(Effect::Resolve(p.resolver, value));
                }
            }
            ServerFrame::Nacked {
                stream,
                entry_id,
                dead_lettered,
            } => {
                let call = match reference {
                    Some(reference) => self.take_ref(reference),
                    None => self.take_settle(&stream, &entry_id, true),
                };
                if let Some(p) = call {
                    let value = json!({"stream": stream, "entry_id": entry_id,
                                       "dead_lettered": dead_lettered});
                    effects.push(Effect::Resolve(p.resolver, value));
                }
            }
            ServerFrame::Published {
                stream, entry_id, ..
            } => {
                let call = match reference {
                    Some(reference) => self.take_ref(reference),
                    None if stream == HEARTBEAT_STREAM => {
                        self.take_request(|r| *r == Request::Heartbeat)
                    }
                    None => None,
                };
                if let Some(p) = call {
                    let value = json!({"stream": stream, "entry_id": entry_id});
                    effects.push(Effect::Resolve(p.resolver, value));
                }
            }
            ServerFrame::Error { code, message } => match reference {
                Some(reference) => self.on_error_about(reference, code, message, effects),
                None => self.on_error(code, message, effects),
            },
            _ => {}
        }
    }

    /// An `error` frame about the frame sent with `reference`: that call fails, or that
    /// subscription is refused. Redis being unreachable refuses no subscription: a
    /// watch goes on with live entries, a consumer retries until it can say
    /// `subscribed`.
    fn on_error_about(
        &mut self,
        reference: &Ref,
        code: ErrorCode,
        message: String,
        effects: &mut Effects<R, L>,
    ) {
        let error = ClientError::new(code.as_str(), message);
        if let Some(p) = self.take_ref(reference) {
            effects.push(Effect::Reject(p.resolver, error));
            return;
        }
        let id = reference.as_u64();
        let sub = self
            .subs
            .iter()
            .find(|(_, sub)| id.is_some() && sub.sent_as == id)
            .map(|(agent, sub)| (agent.clone(), sub.mode));
        if let Some((agent, mode)) = sub {
            if code != ErrorCode::RedisUnavailable
                && self.refuse_subscription(&agent, mode, &error, effects)
            {
                return;
            }
        }
        effects.push(Effect::Unattributed(error));
    }

    /// Matches an `error` frame without a ref to the call it answers (see the module's
    /// comment).
    fn on_error(&mut self, code: ErrorCode, message: String, effects: &mut Effects<R, L>) {
        let error = ClientError::new(code.as_str(), message.clone());
        let has = |needle: &str| message.contains(needle);
        let request = match code {
            // The relay is open (no tokens) and took our token as a second `auth`.
            ErrorCode::NotAllowed if self.token_given && message == "already authenticated" => {
                return
            }
            ErrorCode::UnknownDelivery => {
                let named = self.take_request(|r| {
                    matches!(r, Request::Settle { stream, entry_id, .. }
                        if has(stream) && has(entry_id))
                });
                named.or_else(|| {
                    self.take_request(|r| matches!(r, Request::Settle { .. }))
                        .filter(|_| has("consumes no agent"))
                })
            }
            ErrorCode::Forbidden if has("heartbeat") => {
                self.take_request(|r| *r == Request::Heartbeat)
            }
            ErrorCode::RedisUnavailable if has("retry later") => {
                self.take_request(|r| *r == Request::Heartbeat)
            }
            ErrorCode::RedisUnavailable if has("stays pending") => {
                self.take_request(|r| matches!(r, Request::Settle { .. }))
            }
            ErrorCode::Forbidden | ErrorCode::NotAllowed if has("consume") => {
                if let Some(agent) = self.consumer.as_ref().map(|c| c.agent.clone()) {
                    if self.refuse_subscription(&agent, Mode::Consume, &error, effects) {
                        return;
                    }
                }
                None
            }
            ErrorCode::TooManySubscriptions | ErrorCode::InvalidAgent => {
                let oldest = self
                    .subscribes
                    .iter()
                    .find(|s| !self.subs.get(&s.agent).is_some_and(|sub| sub.confirmed))
                    .map(|s| (s.agent.clone(), s.mode));
                if let Some((agent, mode)) = oldest {
                    if self.refuse_subscription(&agent, mode, &error, effects) {
                        return;
                    }
                }
                None
            }
            _ => None,
        };
        match request {
            Some(p) => effects.push(Effect::Reject(p.resolver, error)),
            None => effects.push(Effect::Unattributed(error)),
        }
    }

    /// The relay refused the subscription to `agent`: its waiting calls are rejected,
    /// its callbacks removed, and the connection stops asking for it.
    fn refuse_subscription(
        &mut self,
        agent: &str,
        mode: Mode,
        error: &ClientError,
        effects: &mut Effects<R, L>,
    ) -> bool {
        let refused: Vec<_> =
            drain(&mut self.subscribes, |s| s.agent == agent && s.mode == mode).collect();
        if refused.is_empty() {
            return false;
        }
        for s in refused {
            effects.push(Effect::Reject(s.resolver, error.clone()));
        }
        match mode {
            Mode::Watch => self.watchers.retain(|w| w.agent != agent),
            Mode::Consume => self.consumer = None,
        }
        self.subs.remove(agent);
        effects.push(Effect::Send(ClientFrame::Unsubscribe {
            agent: Some(agent.to_owned()),
        }));
        true
    }

    fn take_settle(&mut self, stream: &str, entry_id: &str, nack: bool) -> Option<Pending<R>> {
        let wanted = Request::Settle {
            stream: stream.to_owned(),
            entry_id: entry_id.to_owned(),
            nack,
        };
        self.take_request(|r| *r == wanted)
    }

    /// The sent call whose frame went with `reference`, removed.
    fn take_ref(&mut self, reference: &Ref) -> Option<Pending<R>> {
        let id = reference.as_u64()?;
        self.take_request_where(|p| p.id == id)
    }

    /// The oldest sent call that `matches`, removed.
    fn take_request(&mut self, matches: impl Fn(&Request) -> bool) -> Option<Pending<R>> {
        self.take_request_where(|p| matches(&p.request))
    }

    fn take_request_where(&mut self, matches: impl Fn(&Pending<R>) -> bool) -> Option<Pending<R>> {
        let i = self
            .requests
            .iter()
            .position(|p| p.unsent.is_none() && matches(p))?;
        Some(self.requests.remove(i))
    }
}

/// Removes and yields the items that `matches`, keeping the others in order.
fn drain<T>(items: &mut Vec<T>, matches: impl Fn(&T) -> bool) -> std::vec::IntoIter<T> {
    let (taken, kept): (Vec<T>, Vec<T>) = std::mem::take(items).into_iter().partition(matches);
    *items = kept;
    taken.into_iter()
}

/// A task as JavaScript sees it: the seven task fields, `stream` and `entry_id`, and
/// for a consumed task its `delivery_count`.
pub(crate) fn task_json(
    task: &TaskMessage,
    stream: &str,
    entry_id: &str,
    delivery_count: Option<u64>,
) -> Value {
    let mut value = serde_json::to_value(task).unwrap_or_default();
    if let Value::Object(map) = &mut value {
        map.insert("stream".into(), stream.into());
        map.insert("entry_id".into(), entry_id.into());
        if let Some(count) = delivery_count {
            map.insert("delivery_count".into(), count.into());
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestBook = Book<&'static str, &'static str>;
    type E = Effect<&'static str, &'static str>;

    fn frame(value: Value) -> ConnEvent {
        ConnEvent::Frame(serde_json::from_value(value).unwrap())
    }

    fn task(stream: &str, entry_id: &str, to: &str, count: Option<u64>) -> ConnEvent {
        let mut value = json!({
            "type": "task",
            "data": {"id": format!("t-{entry_id}"), "from": "harold", "to": to,
                     "priority": "high", "type": "coding", "payload": {"n": 1}, "created": 7},
            "stream": stream, "entry_id": entry_id,
        });
        if let Some(count) = count {
            value["delivery_count"] = count.into();
        }
        frame(value)
    }

    fn pong() -> ConnEvent {
        frame(json!({"type": "pong"}))
    }

    /// A book on an open socket the relay has answered on.
    fn ready(token: bool) -> TestBook {
        let mut book = TestBook::new(token);
        book.on_event(ConnEvent::State(ConnState::Connecting));
        book.on_event(ConnEvent::State(ConnState::Connected));
        assert_eq!(
            book.state(),
            "connecting",
            "connected only once the relay answers"
        );
        assert_eq!(
            book.on_event(pong()),
            [E::State("connected", None)],
            "the first answer makes it connected"
        );
        book
    }

    fn task_ids(effects: &[E]) -> Vec<(&'static str, String)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Task(l, v) | Effect::Delivery(l, v, ..) => {
                    Some((*l, v["id"].as_str().unwrap().to_owned()))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn watch_resolves_on_subscribed_and_delivers_plain_tasks_once() {
        let mut book = ready(false);
        let effects = book.watch("pink", 50, "on-pink", None, "p1");
        assert_eq!(
            effects,
            [E::Request(
                ClientFrame::Subscribe {
                    agent: "pink".into(),
                    mode: SubscribeMode::Watch,
                    consumer: None,
                    resume: None,
                    history: Some(50),
                },
                Ref::number(1)
            )]
        );
        let effects = book.on_event(frame(
            json!({"type":"subscribed","agent":"pink","status":"ok"}),
        ));
        assert!(matches!(&effects[..], [Effect::Subscribed("p1", info)]
            if info.agent == "pink" && info.mode == Mode::Watch));
        // A second callback on the same agent shares the subscription, at once.
        let effects = book.watch("pink", 50, "on-pink-2", None, "p2");
        assert!(matches!(&effects[..], [Effect::Subscribed("p2", _)]));
        let effects = book.on_event(task("cortex:tasks:high", "5-0", "pink", None));
        assert_eq!(
            task_ids(&effects),
            [("on-pink", "t-5-0".into()), ("on-pink-2", "t-5-0".into())]
        );
        let Effect::Task(_, value) = &effects[0] else {
            unreachable!()
        };
        assert_eq!(
            *value,
            json!({"id":"t-5-0","from":"harold","to":"pink","priority":"high","type":"coding",
                   "payload":{"n":1},"created":7,"stream":"cortex:tasks:high","entry_id":"5-0"})
        );
        // The same entry again (an overlapping read) is not given twice; other agents'
        // tasks are not given at all.
        assert!(
            task_ids(&book.on_event(task("cortex:tasks:high", "5-0", "pink", None))).is_empty()
        );
        assert!(
            task_ids(&book.on_event(task("cortex:tasks:high", "6-0", "harold", None))).is_empty()
        );
        assert_eq!(
            task_ids(&book.on_event(task("cortex:tasks:high", "7-0", "", None))).len(),
            2
        );
    }

    #[test]
    fn unsubscribing_the_last_callback_unsubscribes_the_agent() {
        let mut book = ready(false);
        book.watch("*", 0, "all-1", None, "p1");
        book.watch("*", 0, "all-2", None, "p2");
        book.on_event(frame(
            json!({"type":"subscribed","agent":"*","status":"ok"}),
        ));
        assert!(book.unsubscribe(1).is_empty());
        assert_eq!(
            book.unsubscribe(2),
            [E::Send(ClientFrame::Unsubscribe {
                agent: Some("*".into())
            })]
        );
        assert!(book.unsubscribe(2).is_empty(), "twice is harmless");
    }

    #[test]
    fn bad_names_and_a_second_consumer_are_refused_locally() {
        let mut book = ready(false);
        let code_of = |effects: Vec<E>| match &effects[..] {
            [Effect::Reject(_, e)] => e.code.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            code_of(book.watch("no/slash", 0, "l", None, "p")),
            "invalid_agent"
        );
        assert_eq!(code_of(book.consume("*", "c", "l", "p")), "not_allowed");
        assert_eq!(
            code_of(book.consume("pink", "bad name", "l", "p")),
            "invalid_agent"
        );
        assert_eq!(book.consume("pink", "pink-1", "l", "p").len(), 1);
        assert_eq!(
            code_of(book.consume("harold", "h-1", "l", "p")),
            "not_allowed"
        );
        assert_eq!(
            code_of(book.watch("pink", 0, "l", None, "p")),
            "not_allowed"
        );
        assert_eq!(
            code_of(book.heartbeat("", JsonObject::new(), "p")),
            "invalid_agent"
        );
    }

    #[test]
    fn consumed_tasks_are_acked_and_nacked_by_stream_and_entry_id() {
        let mut book = ready(false);
        book.consume("pink", "pink-1", "on-task", "p1");
        let effects = book.on_event(frame(
            json!({"type":"subscribed","agent":"pink","status":"ok",
                                                  "mode":"consume","consumer":"pink-1"}),
        ));
        assert!(matches!(&effects[..], [Effect::Subscribed("p1", info)]
            if info.mode == Mode::Consume && info.consumer.as_deref() == Some("pink-1")));
        let effects = book.on_event(task("cortex:tasks:high", "5-0", "pink", Some(1)));
        let [Effect::Delivery("on-task", value, stream, entry_id)] = &effects[..] else {
            panic!("{effects:?}")
        };
        assert_eq!(value["delivery_count"], 1);
        assert_eq!(
            (stream.as_str(), entry_id.as_str()),
            ("cortex:tasks:high", "5-0")
        );

        let effects = book.settle("cortex:tasks:high", "5-0", None, "ack");
        assert_eq!(
            effects,
            [
                E::Timer(2),
                E::Request(
                    ClientFrame::Ack {
                        stream: "cortex:tasks:high".into(),
                        entry_id: "5-0".into()
                    },
                    Ref::number(2)
                )
            ]
        );
        book.settle("cortex:tasks:low", "9-0", Some("boom".into()), "nack");
        let effects = book.on_event(frame(json!({"type":"nacked","stream":"cortex:tasks:low",
                                                  "entry_id":"9-0","dead_lettered":true})));
        assert_eq!(
            effects,
            [E::Resolve(
                "nack",
                json!({"stream":"cortex:tasks:low","entry_id":"9-0","dead_lettered":true})
            )]
        );
        let effects = book.on_event(frame(json!({"type":"acked","stream":"cortex:tasks:high",
                                                  "entry_id":"5-0"})));
        assert!(matches!(&effects[..], [Effect::Resolve("ack", _)]));
        // An ack the relay does not know is rejected with its code and message.
        book.settle("cortex:tasks:high", "8-0", None, "late");
        let effects = book.on_event(frame(json!({"type":"error","code":"unknown_delivery",
            "message":"cortex:tasks:high 8-0 is not a task delivered to this consumer and not yet acked"})));
        let [Effect::Reject("late", error)] = &effects[..] else {
            panic!("{effects:?}")
        };
        assert_eq!(error.code, "unknown_delivery");
        assert!(error.message.contains("8-0"));
    }

    #[test]
    fn heartbeats_resolve_in_order_and_errors_find_their_call() {
        let mut book = ready(true);
        book.heartbeat("pink", JsonObject::new(), "hb1");
        book.heartbeat("pink", JsonObject::new(), "hb2");
        let effects = book.on_event(frame(json!({"type":"published","task_id":"",
            "stream":"cortex:heartbeats","entry_id":"3-0"})));
        assert_eq!(
            effects,
            [E::Resolve(
                "hb1",
                json!({"stream":"cortex:heartbeats","entry_id":"3-0"})
            )]
        );
        let effects = book.on_event(frame(json!({"type":"error","code":"forbidden",
            "message":"this token may not send heartbeats as pink"})));
        assert!(matches!(&effects[..], [Effect::Reject("hb2", e)] if e.code == "forbidden"));
        // Our token on an open relay: its "already authenticated" is not an error.
        assert!(book
            .on_event(frame(json!({"type":"error","code":"not_allowed",
                "message":"already authenticated"})))
            .is_empty());
        // Nothing waits for this one.
        let effects = book.on_event(frame(json!({"type":"error","code":"rate_limited",
            "message":"slow down"})));
        assert!(matches!(&effects[..], [Effect::Unattributed(e)] if e.code == "rate_limited"));
    }

    /// A frame from the relay as the connection reports it: a reply when it has a ref.
    fn reply(value: Value) -> ConnEvent {
        let event = crate::connection::decode(value.to_string());
        assert!(matches!(event, ConnEvent::Reply(..)), "{event:?}");
        event
    }

    #[test]
    fn replies_with_refs_settle_their_own_calls_in_any_order() {
        let mut book = ready(true);
        book.heartbeat("pink", JsonObject::new(), "hb1");
        book.heartbeat("pink", JsonObject::new(), "hb2");
        // The second answered first: only its ref says so.
        let effects = book.on_event(reply(json!({"ref":2,"type":"published","task_id":"",
            "stream":"cortex:heartbeats","entry_id":"4-0"})));
        assert_eq!(
            effects,
            [E::Resolve(
                "hb2",
                json!({"stream":"cortex:heartbeats","entry_id":"4-0"})
            )]
        );
        // An error that names nothing is still the call's of its ref.
        let effects = book.on_event(reply(json!({"ref":1,"type":"error",
            "code":"rate_limited","message":"slow down"})));
        assert!(matches!(&effects[..], [Effect::Reject("hb1", e)] if e.code == "rate_limited"));
        // A ref no call waits for: the error goes to onError.
        let effects = book.on_event(reply(json!({"ref":1,"type":"error",
            "code":"internal","message":"late"})));
        assert!(matches!(&effects[..], [Effect::Unattributed(e)] if e.code == "internal"));
    }

    #[test]
    fn acks_and_nacks_are_settled_by_their_ref_not_by_what_the_reply_names() {
        let mut book = ready(false);
        book.consume("pink", "pink-1", "on-task", "p1");
        let effects = book.on_event(reply(json!({"ref":1,"type":"subscribed","agent":"pink",
            "status":"ok","mode":"consume","consumer":"pink-1"})));
        assert!(matches!(&effects[..], [Effect::Subscribed("p1", _)]));
        // The same task acked twice: matched by content, the refusal would go to the
        // first call; its ref says it is the second's.
        book.settle("cortex:tasks:high", "5-0", None, "first");
        book.settle("cortex:tasks:high", "5-0", None, "second");
        let effects = book.on_event(reply(json!({"ref":3,"type":"error",
            "code":"unknown_delivery","message":"cortex:tasks:high 5-0 is not a task \
            delivered to this consumer and not yet acked"})));
        assert!(
            matches!(&effects[..], [Effect::Reject("second", e)] if e.code == "unknown_delivery")
        );
        let effects = book.on_event(reply(json!({"ref":2,"type":"acked",
            "stream":"cortex:tasks:high","entry_id":"5-0"})));
        assert!(matches!(&effects[..], [Effect::Resolve("first", _)]));
        book.settle("cortex:tasks:low", "9-0", Some("boom".into()), "nack");
        let effects = book.on_event(reply(json!({"ref":4,"type":"nacked",
            "stream":"cortex:tasks:low","entry_id":"9-0","dead_lettered":false})));
        assert_eq!(
            effects,
            [E::Resolve(
                "nack",
                json!({"stream":"cortex:tasks:low","entry_id":"9-0","dead_lettered":false})
            )]
        );
        // A reply with a ref no call has settles nothing, not even the call it names.
        book.settle("cortex:tasks:low", "10-0", None, "waits");
        let stray = json!({"ref":99,"type":"acked","stream":"cortex:tasks:low","entry_id":"10-0"});
        assert!(book.on_event(reply(stray)).is_empty());
        let effects = book.on_event(reply(json!({"ref":5,"type":"acked",
            "stream":"cortex:tasks:low","entry_id":"10-0"})));
        assert!(matches!(&effects[..], [Effect::Resolve("waits", _)]));
    }

    #[test]
    fn a_subscribe_error_refuses_the_subscription_of_its_ref() {
        let mut book = ready(false);
        book.watch("pink", 50, "on-pink", None, "pink");
        book.watch("harold", 50, "on-harold", None, "harold");
        // Harold's, by its ref; by content it would have been the oldest waiting (pink).
        let effects = book.on_event(reply(json!({"ref":2,"type":"error",
            "code":"too_many_subscriptions","message":"a connection may watch 1 targets at most"})));
        assert!(
            matches!(&effects[0], Effect::Reject("harold", e) if e.code == "too_many_subscriptions")
        );
        assert_eq!(
            effects[1..],
            [E::Send(ClientFrame::Unsubscribe {
                agent: Some("harold".into())
            })]
        );
        // Redis unreachable for pink's history: said, but no refusal; the watch goes on.
        let effects = book.on_event(reply(json!({"ref":1,"type":"error",
            "code":"redis_unavailable","message":"could not read the entries asked for"})));
        assert!(matches!(&effects[..], [Effect::Unattributed(e)] if e.code == "redis_unavailable"));
        let effects = book.on_event(reply(json!({"ref":1,"type":"subscribed","agent":"pink",
            "status":"ok"})));
        assert!(matches!(&effects[..], [Effect::Subscribed("pink", _)]));
    }

    #[test]
    fn a_refused_consume_is_dropped_and_not_replayed() {
        let mut book = ready(false);
        book.consume("pink", "pink-1", "on-task", "p1");
        let effects = book.on_event(frame(json!({"type":"error","code":"forbidden",
            "message":"this token may not consume as pink"})));
        assert!(matches!(&effects[0], Effect::Reject("p1", e) if e.code == "forbidden"));
        assert_eq!(
            effects[1],
            E::Send(ClientFrame::Unsubscribe {
                agent: Some("pink".into())
            })
        );
        assert!(book.consumer.is_none());
    }

    #[test]
    fn calls_wait_for_the_connection_and_fail_with_it() {
        let mut book = TestBook::new(false);
        // Not connected yet: the frame waits, the timer runs.
        assert_eq!(
            book.heartbeat("pink", JsonObject::new(), "early"),
            [E::Timer(1)]
        );
        book.on_event(ConnEvent::State(ConnState::Connected));
        let effects = book.on_event(pong());
        assert_eq!(effects[0], E::State("connected", None));
        assert!(matches!(
            effects[1],
            E::Request(ClientFrame::Heartbeat { .. }, ref r) if *r == Ref::number(1)
        ));
        // Sent, then the socket is lost: rejected as disconnected.
        let effects = book.on_event(ConnEvent::State(ConnState::Reconnecting));
        assert!(matches!(&effects[0], Effect::Reject("early", e) if e.code == "disconnected"));
        assert_eq!(effects[1], E::State("reconnecting", None));
        // Queued while reconnecting, then timed out.
        assert_eq!(
            book.heartbeat("pink", JsonObject::new(), "queued"),
            [E::Timer(2)]
        );
        let effects = book.expire(2, 15);
        assert!(matches!(&effects[..], [Effect::Reject("queued", e)] if e.code == "timeout"));
        assert!(book.expire(2, 15).is_empty());
    }

    #[test]
    fn a_refused_token_rejects_everything_with_unauthorized() {
        let mut book = TestBook::new(true);
        book.watch("pink", 50, "on-pink", None, "watch");
        book.heartbeat("pink", JsonObject::new(), "hb");
        book.on_event(ConnEvent::State(ConnState::Connected));
        book.on_event(ConnEvent::Closed {
            code: close_code::UNAUTHORIZED,
            reason: "a valid token is required".into(),
        });
        let effects = book.on_event(ConnEvent::State(ConnState::Offline));
        let codes: Vec<_> = effects
            .iter()
            .map(|e| match e {
                Effect::Reject(r, e) => (*r, e.code.as_str()),
                Effect::State(s, Some(e)) => (*s, e.code.as_str()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            codes,
            [
                ("watch", "unauthorized"),
                ("hb", "unauthorized"),
                ("offline", "unauthorized")
            ]
        );
        // Later calls fail at once, with the same reason.
        assert!(matches!(&book.watch("harold", 0, "l", None, "late")[..],
            [Effect::Reject("late", e)] if e.code == "unauthorized"));
    }

    #[test]
    fn closing_rejects_waiting_calls_and_later_ones() {
        let mut book = ready(false);
        book.watch("pink", 50, "on-pink", None, "watch");
        let effects = book.close();
        assert!(matches!(&effects[..], [Effect::Reject("watch", e)] if e.code == "closed"));
        assert!(
            matches!(&book.heartbeat("pink", JsonObject::new(), "hb")[..],
            [Effect::Reject("hb", e)] if e.code == "closed")
        );
        assert_eq!(
            book.on_event(ConnEvent::State(ConnState::Offline)),
            [E::State("offline", None)]
        );
    }

    #[test]
    fn gaps_go_to_watches_that_asked_for_them() {
        let mut book = ready(false);
        book.watch("pink", 50, "on-pink", Some("gap-pink"), "p1");
        book.watch("harold", 50, "on-harold", None, "p2");
        let effects = book.on_event(frame(json!({"type":"gap","stream":"s","after":"1-0",
            "resumed_from":"9-0"})));
        assert_eq!(
            effects,
            [E::Gap(
                "gap-pink",
                json!({"stream":"s","after":"1-0","resumed_from":"9-0"})
            )]
        );
    }

    #[test]
    fn lifecycle_frames_go_to_watches_that_asked_for_them_and_see_the_agent() {
        let mut book = ready(false);
        book.watch_with("pink", 50, "on-pink", None, Some("life-pink"), "p1");
        book.watch_with("*", 50, "on-all", None, Some("life-all"), "p2");
        book.watch("harold", 50, "on-harold", None, "p3");
        let frame_json = json!({"type":"lifecycle","task_id":"t","stream":"cortex:tasks:high",
            "entry_id":"1-0","agent":"blue","state":"done","event":"acked",
            "consumer":"blue-1","at_ms":5,"detail":{"ms":3}});
        let effects = book.on_event(frame(frame_json.clone()));
        assert_eq!(effects, [E::Lifecycle("life-all", frame_json)]);
        let published = json!({"type":"lifecycle","task_id":"t","stream":"cortex:tasks:high",
            "entry_id":"1-0","state":"waiting","event":"published","at_ms":5});
        let effects = book.on_event(frame(published.clone()));
        assert_eq!(
            effects,
            [
                E::Lifecycle("life-pink", published.clone()),
                E::Lifecycle("life-all", published)
            ]
        );
    }

    #[test]
    fn the_seen_set_is_bounded() {
        let mut watcher = Watcher {
            id: 1,
            agent: "*".into(),
            target: SubscribeTarget::All,
            on_task: (),
            on_gap: None,
            on_lifecycle: None,
            seen: BTreeMap::new(),
        };
        for n in 0..1000u64 {
            assert!(watcher.first_time("s", &format!("{n}-0")));
        }
        assert_eq!(watcher.seen["s"].len(), SEEN_PER_STREAM);
        assert!(!watcher.first_time("s", "999-0"));
    }
}
