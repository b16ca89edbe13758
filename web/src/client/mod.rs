//! `CortexClient`: the relay for JavaScript, a thin `#[wasm_bindgen]` layer over the
//! connection core the dashboard uses ([`crate::connection::RelayConnection`]: the same
//! reconnection, subscription replay and watch resume).
//!
//! - [`book`]: which callback gets which frame and which reply settles which promise,
//!   free of JavaScript and unit-tested on the host.
//! - [`api`]: the HTTP API (publish, dead letters).
//! - [`endpoint`]: the relay's WebSocket and HTTP addresses from the URL a page gives.
//! - [`error`]: errors with the relay's `code` and `message`, as JavaScript `Error`s.
//! - [`js`]: plain objects to and from JSON, argument checks, promises.
//! - `typescript`: the declared types of the plain objects.
//!
//! Nothing here uses `Closure::forget`: promises are settled through the functions
//! `new Promise` hands out, callbacks are the page's own functions, and the objects
//! given to JavaScript (subscriptions, the ack/nack handle of a task) are freed by
//! wasm-bindgen's finalizers once JavaScript drops them. A client's connection lives
//! until `close()` (or a refused token), as a browser `WebSocket` does.

mod api;
mod book;
mod endpoint;
mod error;
mod js;
mod typescript;

use self::api::{Call, Method};
use self::book::{Book, Effect, ListenerId, RequestId, SubscriptionInfo};
use self::endpoint::{path_segment, Endpoint};
use self::error::{code, ClientError};
use self::js::Resolver;
use crate::connection::{ConnEvent, RelayConnection, HISTORY};
use cortex_shared::rest::{DlqListQuery, PublishRequest, RetryRequest};
use js_sys::{Function, Promise};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;
use wasm_bindgen::prelude::*;

/// How long a call that waits on the socket (heartbeat, ack, nack) waits for its
/// reply, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// The most history a watch may ask for per stream (the relay sends at most 200).
const MAX_HISTORY: u32 = 1000;

type ClientBook = Book<Resolver, Function>;

/// What a client and its subscriptions share.
struct Inner {
    book: RefCell<ClientBook>,
    connection: RelayConnection,
    endpoint: Endpoint,
    token: Option<String>,
    on_state: RefCell<Option<Function>>,
    on_error: RefCell<Option<Function>>,
    /// `close()` was called.
    closed: Cell<bool>,
}

impl Inner {
    fn on_event(self: &Rc<Self>, event: ConnEvent) {
        let effects = self.book.borrow_mut().on_event(event);
        self.perform(effects);
    }

    /// Carries out what the book decided; no borrow is held while the page's code runs
    /// (a callback may call the client again).
    fn perform(self: &Rc<Self>, effects: Vec<Effect<Resolver, Function>>) {
        for effect in effects {
            match effect {
                Effect::Send(frame) => self.connection.send(frame),
                Effect::Request(frame, reference) => self.connection.request(frame, reference),
                Effect::Resolve(resolver, value) => resolver.resolve(&js::to_js(&value)),
                Effect::Subscribed(resolver, info) => {
                    let subscription = Subscription {
                        client: Rc::clone(self),
                        info,
                    };
                    resolver.resolve(&JsValue::from(subscription));
                }
                Effect::Reject(resolver, error) => resolver.reject(&error),
                Effect::Task(callback, task)
                | Effect::Gap(callback, task)
                | Effect::Lifecycle(callback, task) => {
                    js::call(&callback, &[&js::to_js(&task)]);
                }
                Effect::Delivery(callback, task, stream, entry_id) => {
                    let task = js::to_js(&task);
                    let handle = JsValue::from(Delivery {
                        client: Rc::clone(self),
                        stream,
                        entry_id,
                    });
                    js::attach_methods(&task, &handle, &["ack", "nack"]);
                    js::call(&callback, &[&task]);
                }
                Effect::State(state, why) => {
                    let callback = self.on_state.borrow().clone();
                    if let Some(callback) = callback {
                        let why = why.map_or(JsValue::UNDEFINED, |e| e.to_js());
                        js::call(&callback, &[&JsValue::from_str(state), &why]);
                    }
                }
                Effect::Unattributed(error) => {
                    let callback = self.on_error.borrow().clone();
                    match callback {
                        Some(callback) => js::call(&callback, &[&error.to_js()]),
                        None => web_sys::console::warn_1(
                            &format!("cortex: the relay reported {error}").into(),
                        ),
                    }
                }
                Effect::Timer(id) => self.start_timer(id),
            }
        }
    }

    fn start_timer(self: &Rc<Self>, id: RequestId) {
        let client: Weak<Self> = Rc::downgrade(self);
        yew::platform::spawn_local(async move {
            yew::platform::time::sleep(REQUEST_TIMEOUT).await;
            if let Some(client) = client.upgrade() {
                let effects = client
                    .book
                    .borrow_mut()
                    .expire(id, REQUEST_TIMEOUT.as_secs());
                client.perform(effects);
            }
        });
    }

    /// A promise settled by the book: `operation` gets the resolver and says what to do.
    fn book_call(
        self: &Rc<Self>,
        operation: impl FnOnce(&mut ClientBook, Resolver) -> Vec<Effect<Resolver, Function>>,
    ) -> Promise {
        let (promise, resolver) = js::promise();
        let effects = operation(&mut self.book.borrow_mut(), resolver);
        self.perform(effects);
        promise
    }

    /// A promise settled by an HTTP API call.
    fn api_call(self: &Rc<Self>, call: Result<Call, ClientError>) -> Promise {
        let call = match call {
            Ok(call) => call,
            Err(error) => return js::rejected(&error),
        };
        // After a refused token the socket is gone, but the HTTP API still answers
        // for itself (401, with its own message).
        if self.closed.get() {
            return js::rejected(&ClientError::closed());
        }
        let (promise, resolver) = js::promise();
        let client = Rc::clone(self);
        yew::platform::spawn_local(async move {
            let result = api::send(&client.endpoint, client.token.as_deref(), call).await;
            resolver.settle(result);
        });
        promise
    }
}

/// A client of the Cortex Relay: watch and consume agents' tasks over one WebSocket
/// (reconnecting and resuming by itself), publish, heartbeat, and manage dead letters
/// over the HTTP API.
#[wasm_bindgen]
pub struct CortexClient {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for CortexClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CortexClient")
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl CortexClient {
    /// Connects to the relay at `url`: its address (`http://127.0.0.1:8080`, or `/` for
    /// the relay that served the page) or its WebSocket (`ws://127.0.0.1:8080/ws`).
    /// `token` is sent as the first frame on every connection and as
    /// `Authorization: Bearer` on HTTP calls. Throws a `CortexError` (`invalid_url`,
    /// `invalid_argument`) on bad arguments.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "string")] url: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "string | null")] token: Option<JsValue>,
    ) -> Result<CortexClient, JsValue> {
        Self::create(&url, &token.unwrap_or(JsValue::UNDEFINED)).map_err(|e| e.to_js())
    }

    fn create(url: &JsValue, token: &JsValue) -> Result<CortexClient, ClientError> {
        let url = url
            .as_string()
            .ok_or_else(|| ClientError::new(code::INVALID_URL, "the relay URL must be a string"))?;
        let endpoint = js::endpoint(&url)?;
        let token = js::optional_string_arg(token, "the token")?;
        // The loop holds the client until it ends (close, or a refused token); the slot
        // is filled before the loop's first event, which comes from a later microtask.
        let slot: Rc<RefCell<Option<Rc<Inner>>>> = Rc::default();
        let events = Rc::clone(&slot);
        let connection =
            RelayConnection::open_with_token(endpoint.ws.clone(), token.clone(), move |event| {
                let client = events.borrow().clone();
                if let Some(client) = client {
                    client.on_event(event);
                }
            });
        let inner = Rc::new(Inner {
            book: RefCell::new(Book::new(token.is_some())),
            connection,
            endpoint,
            token,
            on_state: RefCell::new(None),
            on_error: RefCell::new(None),
            closed: Cell::new(false),
        });
        *slot.borrow_mut() = Some(Rc::clone(&inner));
        Ok(CortexClient { inner })
    }

    /// The connection's state: `connected` once the relay has answered (and so taken
    /// the token).
    #[wasm_bindgen(getter, unchecked_return_type = "ConnectionState")]
    pub fn state(&self) -> String {
        self.inner.book.borrow().state().to_owned()
    }

    /// Calls `callback(state, error)` now and at every change of the connection's state
    /// (`connecting`, `connected`, `reconnecting`, `offline`); `error` says why it went
    /// offline when the relay refused the token. `null` stops the calls.
    #[wasm_bindgen(js_name = onState)]
    pub fn on_state(
        &self,
        #[wasm_bindgen(
            unchecked_param_type = "((state: ConnectionState, error?: CortexError) => void) | null"
        )]
        callback: JsValue,
    ) -> Result<(), JsValue> {
        let callback = optional_function(&callback, "onState's callback").map_err(|e| e.to_js())?;
        if let Some(callback) = &callback {
            let state = JsValue::from_str(self.inner.book.borrow().state());
            js::call(callback, &[&state]);
        }
        *self.inner.on_state.borrow_mut() = callback;
        Ok(())
    }

    /// Calls `callback(error)` for errors the relay reports that no call is waiting
    /// for (e.g. `rate_limited`). `null` stops the calls (they are logged instead).
    #[wasm_bindgen(js_name = onError)]
    pub fn on_error(
        &self,
        #[wasm_bindgen(unchecked_param_type = "((error: CortexError) => void) | null")]
        callback: JsValue,
    ) -> Result<(), JsValue> {
        *self.inner.on_error.borrow_mut() =
            optional_function(&callback, "onError's callback").map_err(|e| e.to_js())?;
        Ok(())
    }

    /// Watches `agent` (or `*`): `onTask(task)` for each task addressed to it (or to
    /// every agent), first the newest `history` per stream (default 50), then live
    /// ones; after a reconnection it resumes where it was, each task given once.
    /// `options.onLifecycle(frame)` gets the `lifecycle` frames of the tasks it sees
    /// (a task's state changing for an agent). Read-only: nothing is acked. Resolves once the relay confirms the subscription
    /// (it waits while the relay cannot be reached).
    #[wasm_bindgen(unchecked_return_type = "Promise<Subscription>")]
    pub fn watch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] agent: JsValue,
        #[wasm_bindgen(js_name = onTask, unchecked_param_type = "(task: Task) => void")]
        on_task: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "WatchOptions")] options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let args = (|| {
            let agent = js::string_arg(&agent, "agent")?;
            let on_task = js::function_arg(&on_task, "onTask")?;
            let history = match js::property(&options, "history") {
                v if v.is_undefined() || v.is_null() => HISTORY,
                v => v
                    .as_f64()
                    .filter(|n| n.fract() == 0.0 && (0.0..=f64::from(MAX_HISTORY)).contains(n))
                    .map(|n| n as u32)
                    .ok_or_else(|| {
                        ClientError::argument(format!(
                            "options.history must be a whole number from 0 to {MAX_HISTORY}"
                        ))
                    })?,
            };
            let on_gap = optional_function(&js::property(&options, "onGap"), "options.onGap")?;
            let on_lifecycle = optional_function(
                &js::property(&options, "onLifecycle"),
                "options.onLifecycle",
            )?;
            Ok((agent, on_task, history, on_gap, on_lifecycle))
        })();
        match args {
            Ok((agent, on_task, history, on_gap, on_lifecycle)) => {
                self.inner.book_call(|book, resolver| {
                    book.watch_with(&agent, history, on_task, on_gap, on_lifecycle, resolver)
                })
            }
            Err(error) => js::rejected(&error),
        }
    }

    /// Consumes `agent`'s tasks as `consumer` (a name of its own, kept across
    /// reconnections so that its pending tasks come back first; one is made up when
    /// `null`). `onTask(task)` gets each task with `ack()` and `nack(error)`; at least
    /// once: a task not acked is delivered again. One agent per client.
    #[wasm_bindgen(unchecked_return_type = "Promise<Subscription>")]
    pub fn consume(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] agent: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | null | undefined")] consumer: JsValue,
        #[wasm_bindgen(js_name = onTask, unchecked_param_type = "(task: DeliveredTask) => void")]
        on_task: JsValue,
    ) -> Promise {
        let args = (|| {
            let agent = js::string_arg(&agent, "agent")?;
            let consumer = js::optional_string_arg(&consumer, "consumer")?
                .unwrap_or_else(|| format!("{agent}-{}", random_suffix()));
            let on_task = js::function_arg(&on_task, "onTask")?;
            Ok((agent, consumer, on_task))
        })();
        match args {
            Ok((agent, consumer, on_task)) => self
                .inner
                .book_call(|book, resolver| book.consume(&agent, &consumer, on_task, resolver)),
            Err(error) => js::rejected(&error),
        }
    }

    /// Publishes a task (`POST /api/v1/tasks`; an admin token when the relay has
    /// tokens). Resolves with its `task_id`, `stream` and `entry_id`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Published>")]
    pub fn publish(
        &self,
        #[wasm_bindgen(unchecked_param_type = "NewTask")] task: JsValue,
    ) -> Promise {
        let call = js::typed_arg::<PublishRequest>(&task, "the task")
            .and_then(|task| task.ok_or_else(|| ClientError::argument("the task is missing")))
            .and_then(|task| json_body(Call::new(Method::Post, "/api/v1/tasks"), &task));
        self.inner.api_call(call)
    }

    /// Sends a heartbeat for `agent` with `status` (an object; `{}` when absent).
    /// Resolves with its `stream` and `entry_id` once the relay has written it.
    #[wasm_bindgen(unchecked_return_type = "Promise<HeartbeatSent>")]
    pub fn heartbeat(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] agent: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "JsonObject")] status: Option<JsValue>,
    ) -> Promise {
        let status = status.unwrap_or(JsValue::UNDEFINED);
        let args = js::string_arg(&agent, "agent")
            .and_then(|agent| Ok((agent, js::object_arg(&status, "status")?)));
        match args {
            Ok((agent, status)) => self
                .inner
                .book_call(|book, resolver| book.heartbeat(&agent, status, resolver)),
            Err(error) => js::rejected(&error),
        }
    }

    /// A task, its state per agent and its timeline, by its `id`
    /// (`GET /api/v1/tasks/{id}`; tasks within the lifecycle's retention).
    #[wasm_bindgen(unchecked_return_type = "Promise<TaskReply>")]
    pub fn task(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Promise {
        let call = js::string_arg(&id, "the task's id")
            .map(|id| Call::new(Method::Get, format!("/api/v1/tasks/{}", path_segment(&id))));
        self.inner.api_call(call)
    }

    /// The same, by the task's stream and entry id (`GET /api/v1/tasks/by-entry/…`;
    /// any task still in its stream).
    #[wasm_bindgen(js_name = taskByEntry, unchecked_return_type = "Promise<TaskReply>")]
    pub fn task_by_entry(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] stream: JsValue,
        #[wasm_bindgen(js_name = entryId, unchecked_param_type = "string")] entry_id: JsValue,
    ) -> Promise {
        let call = js::string_arg(&stream, "the stream").and_then(|stream| {
            let entry_id = js::string_arg(&entry_id, "the entry id")?;
            Ok(Call::new(
                Method::Get,
                format!(
                    "/api/v1/tasks/by-entry/{}/{}",
                    path_segment(&stream),
                    path_segment(&entry_id)
                ),
            ))
        });
        self.inner.api_call(call)
    }

    /// One page of an agent's tasks in a state (`in_progress`, `waiting`, `retrying`),
    /// oldest first (`GET /api/v1/tasks?agent=…&state=…&after=…&count=…`); pass the
    /// reply's `next` as `after` for the next page.
    #[wasm_bindgen(unchecked_return_type = "Promise<TaskListReply>")]
    pub fn tasks(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TaskListQuery")] query: JsValue,
    ) -> Promise {
        let call = js::typed_arg::<TaskListQuery>(&query, "the query")
            .and_then(|q| q.ok_or_else(|| ClientError::argument("the query is missing")))
            .map(|query| {
                let mut call = Call::new(Method::Get, "/api/v1/tasks");
                call.query = api::query_pairs(&query);
                call
            });
        self.inner.api_call(call)
    }

    /// A trace's tasks as a tree, each with its state per agent
    /// (`GET /api/v1/traces/{correlation_id}`).
    #[wasm_bindgen(unchecked_return_type = "Promise<TraceReply>")]
    pub fn trace(
        &self,
        #[wasm_bindgen(js_name = correlationId, unchecked_param_type = "string")]
        correlation_id: JsValue,
    ) -> Promise {
        let call = js::string_arg(&correlation_id, "the correlation id")
            .map(|id| Call::new(Method::Get, format!("/api/v1/traces/{}", path_segment(&id))));
        self.inner.api_call(call)
    }

    /// An agent's done, failed, dead and timed-out tasks per minute over the last hour,
    /// and their sums over 5 minutes and the hour (`GET /api/v1/agents/{name}/outcomes`).
    #[wasm_bindgen(js_name = agentOutcomes, unchecked_return_type = "Promise<AgentOutcomes>")]
    pub fn agent_outcomes(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] agent: JsValue,
    ) -> Promise {
        let call = js::string_arg(&agent, "the agent").map(|agent| {
            Call::new(
                Method::Get,
                format!("/api/v1/agents/{}/outcomes", path_segment(&agent)),
            )
        });
        self.inner.api_call(call)
    }

    /// The dead letter queue (HTTP API).
    #[wasm_bindgen(getter)]
    pub fn dlq(&self) -> Dlq {
        Dlq {
            client: Rc::clone(&self.inner),
        }
    }

    /// Closes the connection for good; waiting calls reject with `closed`, and so do
    /// later ones.
    pub fn close(&self) {
        self.inner.closed.set(true);
        let effects = self.inner.book.borrow_mut().close();
        self.inner.connection.close();
        self.inner.perform(effects);
    }
}

/// The dead letter queue, over the relay's HTTP API (`/api/v1/messaging/dlq`).
#[wasm_bindgen]
pub struct Dlq {
    client: Rc<Inner>,
}

impl std::fmt::Debug for Dlq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dlq").finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl Dlq {
    /// A page of dead letters matching `filter`, newest first.
    #[wasm_bindgen(unchecked_return_type = "Promise<DlqPage>")]
    pub fn list(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "DlqFilter")] filter: Option<JsValue>,
    ) -> Promise {
        let filter = filter.unwrap_or(JsValue::UNDEFINED);
        let call = js::typed_arg::<DlqListQuery>(&filter, "the filter").map(|query| {
            let mut call = Call::new(Method::Get, "/api/v1/messaging/dlq");
            call.query = api::query_pairs(&query.unwrap_or_default());
            call
        });
        self.client.api_call(call)
    }

    /// Puts dead letter `id` back on its stream (`options`: another `priority`, a new
    /// `payload`, other task fields); resolves with where it went.
    #[wasm_bindgen(unchecked_return_type = "Promise<Retried>")]
    pub fn retry(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RetryOptions")] options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let call = js::string_arg(&id, "the dead letter's id").and_then(|id| {
            let options = js::typed_arg::<RetryRequest>(&options, "the options")?;
            let path = format!("/api/v1/messaging/dlq/retry/{}", path_segment(&id));
            json_body(Call::new(Method::Post, path), &options.unwrap_or_default())
        });
        self.client.api_call(call)
    }

    /// Deletes dead letter `id`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Deleted>")]
    pub fn delete(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Promise {
        let call = js::string_arg(&id, "the dead letter's id").map(|id| {
            Call::new(
                Method::Delete,
                format!("/api/v1/messaging/dlq/{}", path_segment(&id)),
            )
        });
        self.client.api_call(call)
    }
}

/// A `watch` or `consume` the relay confirmed.
#[wasm_bindgen]
pub struct Subscription {
    client: Rc<Inner>,
    info: SubscriptionInfo,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl Subscription {
    /// The agent, or `*`.
    #[wasm_bindgen(getter)]
    pub fn agent(&self) -> String {
        self.info.agent.clone()
    }

    /// `watch` or `consume`.
    #[wasm_bindgen(getter, unchecked_return_type = "\"watch\" | \"consume\"")]
    pub fn mode(&self) -> String {
        self.info.mode.as_str().to_owned()
    }

    /// The consumer name, when consuming.
    #[wasm_bindgen(getter)]
    pub fn consumer(&self) -> Option<String> {
        self.info.consumer.clone()
    }

    /// Stops the callback; the relay subscription ends with the agent's last one.
    /// Consumed tasks not acked stay pending and are delivered again.
    pub fn unsubscribe(&self) {
        let listener: ListenerId = self.info.listener;
        let effects = self.client.book.borrow_mut().unsubscribe(listener);
        self.client.perform(effects);
    }
}

/// The `ack`/`nack` of one delivered task, bound onto the task object.
#[wasm_bindgen(skip_typescript)]
pub struct Delivery {
    client: Rc<Inner>,
    stream: String,
    entry_id: String,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("stream", &self.stream)
            .field("entry_id", &self.entry_id)
            .finish_non_exhaustive()
    }
}

#[wasm_bindgen]
impl Delivery {
    /// The task is done.
    #[wasm_bindgen(skip_typescript)]
    pub fn ack(&self) -> Promise {
        self.settle(None)
    }

    /// The task failed: `error` (a string, or an `Error` whose message is taken).
    #[wasm_bindgen(skip_typescript)]
    pub fn nack(&self, error: JsValue) -> Promise {
        let text = error
            .as_string()
            .or_else(|| js::property(&error, "message").as_string())
            .unwrap_or_else(|| "failed in the client".to_owned());
        self.settle(Some(text))
    }

    fn settle(&self, error: Option<String>) -> Promise {
        let (stream, entry_id) = (self.stream.clone(), self.entry_id.clone());
        self.client
            .book_call(|book, resolver| book.settle(&stream, &entry_id, error, resolver))
    }
}

fn optional_function(value: &JsValue, what: &str) -> Result<Option<Function>, ClientError> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    js::function_arg(value, what).map(Some)
}

/// `call` with `body` as its JSON body.
fn json_body(mut call: Call, body: &impl serde::Serialize) -> Result<Call, ClientError> {
    call.body = Some(serde_json::to_value(body).map_err(|e| ClientError::argument(e.to_string()))?);
    Ok(call)
}

/// What `tasks(query)` takes: `{agent, state, after?, count?}` (unknown keys refused).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskListQuery {
    agent: String,
    state: cortex_shared::lifecycle::TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u32>,
}

/// Eight hex digits, for a consumer name of this client's own.
fn random_suffix() -> String {
    let n = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    format!("{n:08x}")
}
