//! The connection loop: connect, replay subscriptions, pump frames both ways, and on
//! any loss wait with backoff and start again, until the application closes it.
//!
//! The loop is generic over a [`Connector`] so that it runs in the browser on a real
//! WebSocket and in host unit tests on a scripted one.

use super::{Backoff, Command, ConnEvent, ConnState};
use cortex_shared::frame::close_code;
use cortex_shared::reference::encode_with_ref;
use cortex_shared::{
    read_ref, ClientFrame, EntryId, Ref, ServerFrame, SubscribeMode, SubscribeTarget,
    HEARTBEAT_STREAM,
};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::time::Duration;
use yew::platform::pinned::mpsc::UnboundedReceiver;

/// How long an attempt to open the socket may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// After this long without a frame from the relay a `ping` is sent; after twice this
/// long the connection is taken for dead and replaced.
pub const IDLE_PING: Duration = Duration::from_secs(20);

/// Why a socket could not be opened or written to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketError(pub String);

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SocketError {}

/// An open, message-oriented socket carrying JSON text frames.
pub trait Socket {
    /// Sends one text frame.
    fn send(&mut self, text: String) -> impl Future<Output = Result<(), SocketError>>;
    /// The next text frame; `None` once the socket is closed. Dropping the future
    /// before it completes loses nothing.
    fn recv(&mut self) -> impl Future<Output = Option<String>>;
    /// Once [`Socket::recv`] has returned `None`: the close frame's code and reason, if
    /// the peer sent one.
    fn close_frame(&self) -> Option<(u16, String)> {
        None
    }
}

/// Opens sockets to the relay and measures time; what the loop needs from its platform.
pub trait Connector {
    /// The socket this connector opens.
    type Socket: Socket;
    /// Opens a socket and waits until it is open.
    fn connect(&self) -> impl Future<Output = Result<Self::Socket, SocketError>>;
    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> impl Future<Output = ()>;
}

/// How many of the newest entries per stream a watch asks for when it starts (and,
/// after a reconnection, for the streams where it has seen nothing yet).
pub const HISTORY: u32 = 50;

/// One subscription, as replayed after a reconnection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subscription {
    agent: String,
    /// Who the agent sees, to tell which frames belong to this subscription; `None`
    /// for a name the relay will refuse.
    target: Option<SubscribeTarget>,
    mode: SubscribeMode,
    consumer: Option<String>,
    /// Watch: the history size the subscription asked for.
    history: Option<u32>,
    /// Watch: per stream, the newest entry shown to this subscription.
    seen: BTreeMap<String, EntryId>,
}

impl Subscription {
    /// The `subscribe` frame that restores this subscription on a new connection: a
    /// watch resumes after the newest entry it saw on each stream; streams where it saw
    /// nothing get its history, which then holds only entries it has not seen.
    fn frame(&self) -> ClientFrame {
        match self.mode {
            SubscribeMode::Consume => ClientFrame::consume(&self.agent, self.consumer.clone()),
            SubscribeMode::Watch => ClientFrame::Subscribe {
                agent: self.agent.clone(),
                mode: SubscribeMode::Watch,
                consumer: None,
                resume: (!self.seen.is_empty()).then(|| {
                    self.seen
                        .iter()
                        .map(|(stream, id)| (stream.clone(), id.to_string()))
                        .collect()
                }),
                history: self.history,
            },
        }
    }

    fn saw(&mut self, stream: &str, entry_id: &str) {
        let Ok(id) = entry_id.parse::<EntryId>() else {
            return;
        };
        match self.seen.get_mut(stream) {
            Some(newest) => *newest = (*newest).max(id),
            None => {
                self.seen.insert(stream.to_owned(), id);
            }
        }
    }
}

/// The subscriptions, in the order they were made, and for each watch the newest entry
/// it was shown per stream; replayed after each reconnection so that the relay's view
/// matches the application's and the watches resume where they were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions(Vec<Subscription>);

impl Subscriptions {
    /// Records the effect of `frame` on the subscriptions. Subscribing again to an
    /// agent keeps what it has seen.
    pub fn apply(&mut self, frame: &ClientFrame) {
        match frame {
            ClientFrame::Subscribe {
                agent,
                mode,
                consumer,
                history,
                ..
            } => match self.0.iter_mut().find(|s| s.agent == *agent) {
                Some(existing) => {
                    existing.mode = *mode;
                    existing.consumer.clone_from(consumer);
                    existing.history = *history;
                }
                None => self.0.push(Subscription {
                    agent: agent.clone(),
                    target: SubscribeTarget::parse(agent).ok(),
                    mode: *mode,
                    consumer: consumer.clone(),
                    history: *history,
                    seen: BTreeMap::new(),
                }),
            },
            ClientFrame::Unsubscribe { agent: Some(agent) } => self.0.retain(|s| s.agent != *agent),
            ClientFrame::Unsubscribe { agent: None } => self.0.clear(),
            ClientFrame::Ping
            | ClientFrame::Auth { .. }
            | ClientFrame::Heartbeat { .. }
            | ClientFrame::Publish { .. }
            | ClientFrame::Ack { .. }
            | ClientFrame::Nack { .. } => {}
        }
    }

    /// Records what a frame from the relay showed: a watched `task` or `heartbeat`
    /// moves the position of every watch that sees it.
    pub fn observe(&mut self, frame: &ServerFrame) {
        let watches = self.0.iter_mut().filter(|s| s.mode == SubscribeMode::Watch);
        match frame {
            // Consume deliveries (with a count) come from the agent's group, not in
            // stream order; they say nothing about where a watch is.
            ServerFrame::Task {
                data,
                stream,
                entry_id,
                delivery_count: None,
            } => {
                for sub in
                    watches.filter(|s| s.target.as_ref().is_some_and(|t| t.sees_task_for(&data.to)))
                {
                    sub.saw(stream, entry_id);
                }
            }
            ServerFrame::Heartbeat {
                agent, entry_id, ..
            } => {
                for sub in watches.filter(|s| {
                    s.target
                        .as_ref()
                        .is_some_and(|t| t.sees_heartbeat_of(agent))
                }) {
                    sub.saw(HEARTBEAT_STREAM, entry_id);
                }
            }
            _ => {}
        }
    }

    /// Makes `agent` the only subscription, a watch; returns the frames that do it
    /// (unsubscribe the others, then subscribe to `agent` with [`HISTORY`] unless
    /// already subscribed).
    pub fn switch_to(&mut self, agent: &str) -> Vec<ClientFrame> {
        let mut frames: Vec<ClientFrame> = self
            .0
            .iter()
            .filter(|s| s.agent != agent)
            .map(|s| ClientFrame::Unsubscribe {
                agent: Some(s.agent.clone()),
            })
            .collect();
        if !self.0.iter().any(|s| s.agent == agent) {
            frames.push(ClientFrame::Subscribe {
                agent: agent.to_owned(),
                mode: SubscribeMode::Watch,
                consumer: None,
                resume: None,
                history: Some(HISTORY),
            });
        }
        for frame in &frames {
            self.apply(frame);
        }
        frames
    }

    /// The agents subscribed to.
    pub fn agents(&self) -> Vec<&str> {
        self.0.iter().map(|s| s.agent.as_str()).collect()
    }

    /// Per stream, the newest entry id `agent`'s watch has been shown.
    pub fn positions(&self, agent: &str) -> BTreeMap<String, String> {
        self.0
            .iter()
            .find(|s| s.agent == agent)
            .map(|s| {
                s.seen
                    .iter()
                    .map(|(stream, id)| (stream.clone(), id.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `subscribe` frames that restore these subscriptions on a new connection.
    pub fn replay(&self) -> impl Iterator<Item = ClientFrame> + '_ {
        self.0.iter().map(Subscription::frame)
    }
}

/// Turns a text frame from the relay into an event: a [`ConnEvent::Reply`] when it
/// carries a `ref`.
pub fn decode(text: String) -> ConnEvent {
    match serde_json::from_str::<ServerFrame>(&text) {
        Ok(frame) => match read_ref(&text) {
            Ok(Some(reference)) => ConnEvent::Reply(frame, reference),
            // The relay echoes only refs it took; any other is not ours to match.
            Ok(None) | Err(_) => ConnEvent::Frame(frame),
        },
        Err(error) => ConnEvent::Undecodable {
            text,
            error: error.to_string(),
        },
    }
}

/// `frame` as JSON text, with `reference` as its `ref`.
fn encode(frame: &ClientFrame, reference: Option<&Ref>) -> String {
    encode_with_ref(frame, reference)
}

/// How a session ended.
enum End {
    /// The socket closed or failed: reconnect.
    Lost,
    /// The application closed the connection: stop.
    Stopped,
    /// The relay refused the token (close code 4401): retrying unchanged is pointless.
    Refused,
}

/// Runs the connection until the application closes it (a [`Command::Close`], or every
/// sender of `commands` dropped) or the relay refuses `token` (close code 4401),
/// reporting everything through `on_event`. With a `token`, every connection starts
/// with an `auth` frame. Returns after reporting [`ConnState::Offline`]; the socket, if
/// open, is dropped, which closes it.
pub(crate) async fn run<C: Connector>(
    connector: C,
    token: Option<String>,
    mut commands: UnboundedReceiver<Command>,
    on_event: impl Fn(ConnEvent),
) {
    let auth = token.map(|token| ClientFrame::Auth { token });
    let mut subscriptions = Subscriptions::default();
    let mut backoff = Backoff::default();
    let mut state = ConnState::Connecting;
    on_event(ConnEvent::State(state));
    loop {
        let connect = pin!(connector.connect());
        let timeout = pin!(connector.sleep(CONNECT_TIMEOUT));
        let attempt = select(connect, timeout);
        let Some(attempt) = take_commands_until(attempt, &mut commands, &mut subscriptions).await
        else {
            break;
        };
        if let Either::Left((Ok(mut socket), _)) = attempt {
            on_event(ConnEvent::State(ConnState::Connected));
            let end = session(
                &connector,
                &mut socket,
                auth.as_ref(),
                &mut commands,
                &mut subscriptions,
                &mut backoff,
                &on_event,
            )
            .await;
            if let End::Stopped | End::Refused = end {
                break;
            }
            state = ConnState::Connected;
        }
        if state != ConnState::Reconnecting {
            state = ConnState::Reconnecting;
            on_event(ConnEvent::State(state));
        }
        let delay = backoff.next_delay();
        on_event(ConnEvent::Retrying { delay });
        let wait = pin!(connector.sleep(delay));
        if take_commands_until(wait, &mut commands, &mut subscriptions)
            .await
            .is_none()
        {
            break;
        }
    }
    on_event(ConnEvent::State(ConnState::Offline));
}

/// Waits for `fut` while there is no socket. Subscription changes are recorded (they are
/// replayed on the next connection); other frames are dropped, as there is nothing to
/// send them on. `None` if the application closed the connection meanwhile.
async fn take_commands_until<F: Future + Unpin>(
    mut fut: F,
    commands: &mut UnboundedReceiver<Command>,
    subscriptions: &mut Subscriptions,
) -> Option<F::Output> {
    loop {
        match select(&mut fut, commands.next()).await {
            Either::Left((output, _)) => return Some(output),
            Either::Right((Some(Command::Send(frame) | Command::Request(frame, _)), _)) => {
                subscriptions.apply(&frame)
            }
            Either::Right((Some(Command::Watch(agent)), _)) => {
                subscriptions.switch_to(&agent);
            }
            Either::Right((Some(Command::Close) | None, _)) => return None,
        }
    }
}

/// What woke the session up.
enum Input {
    Received(Option<String>),
    Command(Option<Command>),
    Idle,
}

/// One open socket's life: authenticate, replay the subscriptions, then pump frames
/// both ways.
async fn session<C: Connector>(
    connector: &C,
    socket: &mut C::Socket,
    auth: Option<&ClientFrame>,
    commands: &mut UnboundedReceiver<Command>,
    subscriptions: &mut Subscriptions,
    backoff: &mut Backoff,
    on_event: &impl Fn(ConnEvent),
) -> End {
    // The ping's reply (or any frame) proves that the relay talks to us; only then is
    // the backoff reset, so a relay that accepts and drops at once is not hammered.
    // The token goes first: the relay takes nothing else before it.
    let opening: Vec<ClientFrame> = auth
        .cloned()
        .into_iter()
        .chain(subscriptions.replay())
        .chain([ClientFrame::Ping])
        .collect();
    for frame in &opening {
        if socket.send(encode(frame, None)).await.is_err() {
            return End::Lost;
        }
    }
    let mut idle = pin!(connector.sleep(IDLE_PING));
    let mut pinged = false;
    loop {
        let input = {
            let received = pin!(socket.recv());
            match select(select(received, commands.next()), idle.as_mut()).await {
                Either::Left((Either::Left((text, _)), _)) => Input::Received(text),
                Either::Left((Either::Right((command, _)), _)) => Input::Command(command),
                Either::Right(((), _)) => Input::Idle,
            }
        };
        let outgoing = match input {
            Input::Received(None) => {
                let Some((code, reason)) = socket.close_frame() else {
                    return End::Lost;
                };
                on_event(ConnEvent::Closed { code, reason });
                return if code == close_code::UNAUTHORIZED {
                    End::Refused
                } else {
                    End::Lost
                };
            }
            Input::Received(Some(text)) => {
                backoff.reset();
                pinged = false;
                idle.set(connector.sleep(IDLE_PING));
                let event = decode(text);
                if let ConnEvent::Frame(frame) | ConnEvent::Reply(frame, _) = &event {
                    subscriptions.observe(frame);
                }
                on_event(event);
                continue;
            }
            Input::Command(None | Some(Command::Close)) => return End::Stopped,
            Input::Command(Some(Command::Send(frame))) => {
                subscriptions.apply(&frame);
                vec![(frame, None)]
            }
            Input::Command(Some(Command::Request(frame, reference))) => {
                subscriptions.apply(&frame);
                vec![(frame, Some(reference))]
            }
            Input::Command(Some(Command::Watch(agent))) => subscriptions
                .switch_to(&agent)
                .into_iter()
                .map(|frame| (frame, None))
                .collect(),
            Input::Idle if pinged => return End::Lost,
            Input::Idle => {
                pinged = true;
                idle.set(connector.sleep(IDLE_PING));
                vec![(ClientFrame::Ping, None)]
            }
        };
        for (frame, reference) in &outgoing {
            if socket
                .send(encode(frame, reference.as_ref()))
                .await
                .is_err()
            {
                return End::Lost;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::ErrorCode;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;
    use std::future::poll_fn;
    use std::rc::Rc;
    use std::task::{Context, Poll, Waker};
    use yew::platform::pinned::mpsc::{unbounded, UnboundedSender};

    /// One scripted socket: what the relay will say, and what it was told.
    #[derive(Default)]
    struct Wire {
        inbox: VecDeque<String>,
        sent: Vec<String>,
        closed: bool,
        /// The close frame the relay sent, if any, once `closed`.
        close_frame: Option<(u16, String)>,
        dropped: bool,
    }

    /// A scripted network with a clock that moves only when the test says so.
    #[derive(Default)]
    struct Net {
        /// Refuse connections (the relay is down).
        refuse: bool,
        /// Never answer connection attempts (a black hole).
        hang: bool,
        now_ms: u64,
        sleeps: Vec<Duration>,
        wires: Vec<Rc<RefCell<Wire>>>,
    }

    #[derive(Clone, Default)]
    struct FakeConnector(Rc<RefCell<Net>>);

    struct FakeSocket(Rc<RefCell<Wire>>);

    impl Drop for FakeSocket {
        fn drop(&mut self) {
            self.0.borrow_mut().dropped = true;
        }
    }

    impl Socket for FakeSocket {
        fn send(&mut self, text: String) -> impl Future<Output = Result<(), SocketError>> {
            let mut wire = self.0.borrow_mut();
            let result = if wire.closed {
                Err(SocketError("closed".into()))
            } else {
                wire.sent.push(text);
                Ok(())
            };
            std::future::ready(result)
        }

        fn recv(&mut self) -> impl Future<Output = Option<String>> {
            let wire = Rc::clone(&self.0);
            poll_fn(move |_| {
                let mut wire = wire.borrow_mut();
                match wire.inbox.pop_front() {
                    Some(text) => Poll::Ready(Some(text)),
                    None if wire.closed => Poll::Ready(None),
                    None => Poll::Pending,
                }
            })
        }
        fn close_frame(&self) -> Option<(u16, String)> {
            self.close_frame_of()
        }
    }

    impl FakeSocket {
        fn close_frame_of(&self) -> Option<(u16, String)> {
            self.0.borrow().close_frame.clone()
        }
    }

    impl Connector for FakeConnector {
        type Socket = FakeSocket;

        fn connect(&self) -> impl Future<Output = Result<FakeSocket, SocketError>> {
            let net = Rc::clone(&self.0);
            poll_fn(move |_| {
                let mut net = net.borrow_mut();
                if net.hang {
                    Poll::Pending
                } else if net.refuse {
                    Poll::Ready(Err(SocketError("refused".into())))
                } else {
                    let wire = Rc::new(RefCell::new(Wire::default()));
                    net.wires.push(Rc::clone(&wire));
                    Poll::Ready(Ok(FakeSocket(wire)))
                }
            })
        }

        fn sleep(&self, duration: Duration) -> impl Future<Output = ()> {
            let net = Rc::clone(&self.0);
            let deadline = {
                let mut net = net.borrow_mut();
                net.sleeps.push(duration);
                net.now_ms + duration.as_millis() as u64
            };
            poll_fn(move |_| {
                if net.borrow().now_ms >= deadline {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        }
    }

    /// Drives [`run`] by hand: every change is followed by polling until it settles.
    struct Harness {
        net: FakeConnector,
        token: Option<String>,
        events: Rc<RefCell<Vec<ConnEvent>>>,
        commands: Option<UnboundedSender<Command>>,
        run: std::pin::Pin<Box<dyn Future<Output = ()>>>,
        finished: Rc<Cell<bool>>,
    }

    impl Harness {
        fn new(configure: impl FnOnce(&mut Net)) -> Self {
            Self::with_token(None, configure)
        }

        fn with_token(token: Option<&str>, configure: impl FnOnce(&mut Net)) -> Self {
            let token = token.map(str::to_owned);
            let net = FakeConnector::default();
            configure(&mut net.0.borrow_mut());
            let events = Rc::new(RefCell::new(Vec::new()));
            let (tx, rx) = unbounded();
            let finished = Rc::new(Cell::new(false));
            let run = {
                let events = Rc::clone(&events);
                let finished = Rc::clone(&finished);
                let connector = net.clone();
                let token = token.clone();
                Box::pin(async move {
                    run(connector, token, rx, move |event| {
                        events.borrow_mut().push(event)
                    })
                    .await;
                    finished.set(true);
                })
            };
            let mut harness = Self {
                net,
                token,
                events,
                commands: Some(tx),
                run,
                finished,
            };
            harness.settle();
            harness
        }

        fn settle(&mut self) {
            let mut cx = Context::from_waker(Waker::noop());
            for _ in 0..50 {
                if self.run.as_mut().poll(&mut cx).is_ready() {
                    break;
                }
            }
        }

        fn advance(&mut self, duration: Duration) {
            self.net.0.borrow_mut().now_ms += duration.as_millis() as u64;
            self.settle();
        }

        fn command(&mut self, command: Command) {
            self.commands.as_ref().unwrap().send_now(command).unwrap();
            self.settle();
        }

        fn net(&self) -> std::cell::RefMut<'_, Net> {
            self.net.0.borrow_mut()
        }

        fn wire(&self, n: usize) -> Rc<RefCell<Wire>> {
            Rc::clone(&self.net.0.borrow().wires[n])
        }

        fn receive(&mut self, n: usize, text: &str) {
            self.wire(n).borrow_mut().inbox.push_back(text.to_owned());
            self.settle();
        }

        fn drop_wire(&mut self, n: usize) {
            self.wire(n).borrow_mut().closed = true;
            self.settle();
        }

        /// The relay closes socket `n` with a close frame.
        fn close_wire(&mut self, n: usize, code: u16) {
            {
                let wire = self.wire(n);
                let mut wire = wire.borrow_mut();
                wire.closed = true;
                wire.close_frame = Some((code, "bye".into()));
            }
            self.settle();
        }

        fn sent(&self, n: usize) -> Vec<String> {
            self.wire(n).borrow().sent.clone()
        }

        fn states(&self) -> Vec<ConnState> {
            self.events
                .borrow()
                .iter()
                .filter_map(|e| match e {
                    ConnEvent::State(s) => Some(*s),
                    _ => None,
                })
                .collect()
        }

        fn last_sleep(&self) -> Duration {
            *self.net.0.borrow().sleeps.last().unwrap()
        }
    }

    fn subscribe(agent: &str) -> Command {
        Command::Send(ClientFrame::watch(agent))
    }

    const PING: &str = r#"{"type":"ping"}"#;
    const PONG: &str = r#"{"type":"pong"}"#;

    #[test]
    fn connects_probes_and_sends_frames() {
        let mut h = Harness::new(|_| {});
        assert_eq!(h.states(), [ConnState::Connecting, ConnState::Connected]);
        assert_eq!(h.sent(0), [PING]);
        h.command(subscribe("pink"));
        assert_eq!(h.sent(0)[1], r#"{"type":"subscribe","agent":"pink"}"#);
        h.receive(0, r#"{"type":"subscribed","agent":"pink","status":"ok"}"#);
        assert_eq!(
            h.events.borrow().last(),
            Some(&ConnEvent::Frame(ServerFrame::Subscribed {
                agent: "pink".into(),
                status: "ok".into(),
                mode: SubscribeMode::Watch,
                consumer: None,
            }))
        );
    }

    #[test]
    fn a_request_goes_with_its_ref_and_its_reply_comes_back_with_it() {
        let mut h = Harness::new(|_| {});
        h.command(Command::Request(ClientFrame::watch("pink"), Ref::number(7)));
        assert_eq!(
            h.sent(0)[1],
            r#"{"ref":7,"type":"subscribe","agent":"pink"}"#
        );
        h.receive(
            0,
            r#"{"ref":7,"type":"subscribed","agent":"pink","status":"ok"}"#,
        );
        let subscribed = ServerFrame::Subscribed {
            agent: "pink".into(),
            status: "ok".into(),
            mode: SubscribeMode::Watch,
            consumer: None,
        };
        assert_eq!(
            h.events.borrow().last(),
            Some(&ConnEvent::Reply(subscribed, Ref::number(7)))
        );
        // Recorded like any subscribe: replayed, without the ref, after a reconnect.
        h.drop_wire(0);
        h.advance(h.last_sleep());
        assert_eq!(h.sent(1)[0], r#"{"type":"subscribe","agent":"pink"}"#);
    }

    #[test]
    fn reconnects_with_capped_backoff_and_replays_subscriptions() {
        let mut h = Harness::new(|_| {});
        h.command(subscribe("pink"));
        h.net().refuse = true;
        h.drop_wire(0);
        assert_eq!(
            h.states(),
            [
                ConnState::Connecting,
                ConnState::Connected,
                ConnState::Reconnecting
            ]
        );
        let mut delays = vec![h.last_sleep().as_millis()];
        for _ in 0..6 {
            h.advance(h.last_sleep());
            delays.push(h.last_sleep().as_millis());
        }
        assert_eq!(delays, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        // Changes made while offline are replayed, not the history of them.
        h.command(subscribe("harold"));
        h.command(Command::Send(ClientFrame::Unsubscribe {
            agent: Some("pink".into()),
        }));
        h.command(Command::Send(ClientFrame::Ping));
        h.net().refuse = false;
        h.advance(h.last_sleep());
        assert_eq!(h.states().last(), Some(&ConnState::Connected));
        assert_eq!(
            h.sent(1),
            [r#"{"type":"subscribe","agent":"harold"}"#, PING]
        );
        // Reconnecting stays one state while attempts keep failing.
        assert_eq!(h.states().len(), 4);
    }

    #[test]
    fn each_wait_is_announced_with_its_delay() {
        let mut h = Harness::new(|net| net.refuse = true);
        for _ in 0..3 {
            h.advance(h.last_sleep());
        }
        let retries: Vec<u128> = h
            .events
            .borrow()
            .iter()
            .filter_map(|e| match e {
                ConnEvent::Retrying { delay } => Some(delay.as_millis()),
                _ => None,
            })
            .collect();
        assert_eq!(retries, [250, 500, 1000, 2000]);
        // Announced after the state changes, and before the wait it announces.
        assert_eq!(
            h.events.borrow()[..3],
            [
                ConnEvent::State(ConnState::Connecting),
                ConnEvent::State(ConnState::Reconnecting),
                ConnEvent::Retrying {
                    delay: Duration::from_millis(250)
                },
            ]
        );
    }

    #[test]
    fn backoff_resets_only_once_the_relay_has_answered() {
        let mut h = Harness::new(|_| {});
        h.drop_wire(0);
        assert_eq!(h.last_sleep(), Duration::from_millis(250));
        h.advance(h.last_sleep());
        // Accepted, then dropped without a word: keep backing off.
        h.drop_wire(1);
        assert_eq!(h.last_sleep(), Duration::from_millis(500));
        h.advance(h.last_sleep());
        h.receive(2, PONG);
        h.drop_wire(2);
        assert_eq!(h.last_sleep(), Duration::from_millis(250));
    }

    #[test]
    fn watch_switches_the_single_subscription() {
        let mut h = Harness::new(|_| {});
        h.command(Command::Watch("pink".into()));
        h.command(Command::Watch("harold".into()));
        h.command(Command::Watch("harold".into()));
        assert_eq!(
            h.sent(0)[1..],
            [
                r#"{"type":"subscribe","agent":"pink","history":50}"#,
                r#"{"type":"unsubscribe","agent":"pink"}"#,
                r#"{"type":"subscribe","agent":"harold","history":50}"#,
            ]
        );
    }

    #[test]
    fn a_silent_connection_is_pinged_then_replaced() {
        let mut h = Harness::new(|_| {});
        h.advance(IDLE_PING);
        assert_eq!(h.sent(0), [PING, PING]);
        h.receive(0, PONG);
        h.advance(IDLE_PING);
        assert_eq!(h.sent(0).len(), 3, "a reply restarts the idle clock");
        h.advance(IDLE_PING);
        assert_eq!(h.states().last(), Some(&ConnState::Reconnecting));
        assert!(h.wire(0).borrow().dropped);
    }

    #[test]
    fn a_hanging_connect_times_out() {
        let mut h = Harness::new(|net| net.hang = true);
        assert_eq!(h.states(), [ConnState::Connecting]);
        h.advance(CONNECT_TIMEOUT);
        assert_eq!(h.states(), [ConnState::Connecting, ConnState::Reconnecting]);
    }

    #[test]
    fn bad_frames_are_reported_and_the_connection_stays() {
        let mut h = Harness::new(|_| {});
        h.receive(0, "not json");
        h.receive(0, r#"{"type":"error","code":"bad_frame","message":"no"}"#);
        let events = h.events.borrow();
        assert!(matches!(&events[2], ConnEvent::Undecodable { text, .. } if text == "not json"));
        assert!(matches!(
            &events[3],
            ConnEvent::Frame(ServerFrame::Error {
                code: ErrorCode::BadFrame,
                ..
            })
        ));
        assert_eq!(events.len(), 4);
    }

    #[test]
    fn closing_stops_the_loop_and_drops_the_socket() {
        let mut h = Harness::new(|_| {});
        h.commands = None;
        h.settle();
        assert!(h.finished.get());
        assert!(h.wire(0).borrow().dropped);
        assert_eq!(h.states().last(), Some(&ConnState::Offline));

        let mut h = Harness::new(|net| net.refuse = true);
        h.command(Command::Close);
        assert!(h.finished.get());
        assert_eq!(
            h.states(),
            [
                ConnState::Connecting,
                ConnState::Reconnecting,
                ConnState::Offline
            ]
        );
    }

    #[test]
    fn subscriptions_track_frames() {
        let mut subs = Subscriptions::default();
        subs.apply(&ClientFrame::watch("a"));
        subs.apply(&ClientFrame::watch("b"));
        subs.apply(&ClientFrame::watch("a"));
        assert_eq!(subs.agents(), ["a", "b"]);
        subs.apply(&ClientFrame::Unsubscribe {
            agent: Some("a".into()),
        });
        assert_eq!(subs.agents(), ["b"]);
        subs.apply(&ClientFrame::Unsubscribe { agent: None });
        assert!(subs.agents().is_empty());
    }

    fn task_frame(stream: &str, entry_id: &str, to: &str, delivery_count: Option<u64>) -> String {
        serde_json::json!({
            "type": "task",
            "data": {"id": format!("t-{entry_id}"), "from": "harold", "to": to,
                     "priority": "high", "type": "coding", "payload": {}, "created": 1},
            "stream": stream, "entry_id": entry_id, "delivery_count": delivery_count,
        })
        .to_string()
    }

    #[test]
    fn a_reconnection_resumes_each_watch_after_what_it_was_shown() {
        let mut h = Harness::new(|_| {});
        h.command(Command::Watch("pink".into()));
        assert_eq!(
            h.sent(0)[1],
            r#"{"type":"subscribe","agent":"pink","history":50}"#
        );
        h.receive(0, r#"{"type":"subscribed","agent":"pink","status":"ok"}"#);
        h.receive(0, &task_frame("cortex:tasks:high", "7-0", "pink", None));
        h.receive(0, &task_frame("cortex:tasks:high", "5-0", "", None));
        h.receive(0, &task_frame("cortex:tasks:normal", "9-0", "harold", None));
        h.receive(0, &task_frame("cortex:tasks:low", "20-0", "pink", Some(2)));
        h.receive(
            0,
            r#"{"type":"heartbeat","agent":"pink","status":{},"time":1,"entry_id":"8-0"}"#,
        );
        h.receive(
            0,
            r#"{"type":"gap","stream":"cortex:tasks:low","after":"1-0","resumed_from":"30-0"}"#,
        );
        h.receive(0, r#"{"type":"presence","agent":"pink"}"#);
        h.drop_wire(0);
        h.advance(h.last_sleep());
        assert_eq!(
            h.sent(1),
            [
                r#"{"type":"subscribe","agent":"pink","resume":{"cortex:heartbeats":"8-0","cortex:tasks:high":"7-0"},"history":50}"#,
                PING
            ]
        );
        // Resumed entries move the positions on; a new agent starts afresh.
        h.receive(1, &task_frame("cortex:tasks:high", "11-0", "pink", None));
        h.command(Command::Watch("harold".into()));
        h.command(Command::Watch("pink".into()));
        h.drop_wire(1);
        h.advance(h.last_sleep());
        assert_eq!(
            h.sent(2),
            [r#"{"type":"subscribe","agent":"pink","history":50}"#, PING]
        );
    }

    #[test]
    fn subscriptions_remember_positions_per_watch() {
        let mut subs = Subscriptions::default();
        subs.apply(&ClientFrame::watch("pink"));
        subs.apply(&ClientFrame::watch("*"));
        subs.apply(&ClientFrame::consume("harold", Some("harold-1".into())));
        let frames: Vec<ServerFrame> = [
            task_frame("cortex:tasks:high", "3-0", "harold", None),
            task_frame("cortex:tasks:high", "2-0", "pink", None),
            task_frame("cortex:tasks:high", "4-0", "harold", Some(1)),
            r#"{"type":"heartbeat","agent":"harold","status":{},"time":1,"entry_id":"6-0"}"#
                .to_owned(),
        ]
        .into_iter()
        .map(|text| match decode(text) {
            ConnEvent::Frame(frame) => frame,
            other => panic!("{other:?}"),
        })
        .collect();
        for frame in &frames {
            subs.observe(frame);
        }
        let positions = |agent| subs.positions(agent).into_iter().collect::<Vec<_>>();
        assert_eq!(
            positions("pink"),
            [("cortex:tasks:high".into(), "2-0".into())]
        );
        assert_eq!(
            positions("*"),
            [
                ("cortex:heartbeats".into(), "6-0".into()),
                ("cortex:tasks:high".into(), "3-0".into())
            ]
        );
        assert!(
            positions("harold").is_empty(),
            "consumers resume by their group"
        );
        let replay: Vec<String> = subs.replay().map(|f| encode(&f, None)).collect();
        assert_eq!(
            replay,
            [
                r#"{"type":"subscribe","agent":"pink","resume":{"cortex:tasks:high":"2-0"}}"#,
                r#"{"type":"subscribe","agent":"*","resume":{"cortex:heartbeats":"6-0","cortex:tasks:high":"3-0"}}"#,
                r#"{"type":"subscribe","agent":"harold","mode":"consume","consumer":"harold-1"}"#,
            ]
        );
        // Subscribing again keeps the positions; unsubscribing forgets them.
        subs.apply(&ClientFrame::watch("pink"));
        assert_eq!(subs.positions("pink").len(), 1);
        subs.apply(&ClientFrame::Unsubscribe {
            agent: Some("pink".into()),
        });
        subs.apply(&ClientFrame::watch("pink"));
        assert!(subs.positions("pink").is_empty());
    }

    #[test]
    fn a_token_goes_first_on_every_connection() {
        let mut h = Harness::with_token(Some("s3cret"), |_| {});
        assert_eq!(h.token.as_deref(), Some("s3cret"));
        h.command(subscribe("pink"));
        const AUTH: &str = r#"{"type":"auth","token":"s3cret"}"#;
        assert_eq!(
            h.sent(0),
            [AUTH, PING, r#"{"type":"subscribe","agent":"pink"}"#]
        );
        h.drop_wire(0);
        h.advance(h.last_sleep());
        assert_eq!(
            h.sent(1),
            [AUTH, r#"{"type":"subscribe","agent":"pink"}"#, PING]
        );
    }

    #[test]
    fn a_refused_token_ends_the_loop_and_other_closes_reconnect() {
        let mut h = Harness::with_token(Some("wrong"), |_| {});
        h.close_wire(0, 1012);
        assert_eq!(h.states().last(), Some(&ConnState::Reconnecting));
        assert!(h.events.borrow().contains(&ConnEvent::Closed {
            code: 1012,
            reason: "bye".into()
        }));
        h.advance(h.last_sleep());
        h.close_wire(1, close_code::UNAUTHORIZED);
        assert!(h.finished.get(), "4401 is not retried");
        let events = h.events.borrow();
        let n = events.len();
        assert_eq!(
            events[n - 2..],
            [
                ConnEvent::Closed {
                    code: close_code::UNAUTHORIZED,
                    reason: "bye".into()
                },
                ConnEvent::State(ConnState::Offline)
            ]
        );
        assert_eq!(h.net().wires.len(), 2);
    }
}
