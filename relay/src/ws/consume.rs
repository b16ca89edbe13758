//! A session's consumer (README, Delivery: consume): the [`GroupConsumer`] task of the agent
//! the client consumes, the routing of its acks and nacks, and the `ref` each of its
//! replies carries back.
//!
//! One connection consumes at most one agent: a task for every agent has the same
//! stream and entry id in each agent's group, so an ack on a connection consuming
//! two agents could not say which it meant. Several connections (or several relays)
//! consuming the same agent share its work.

use crate::consume::{ConsumerCommand, ConsumerEvent, GroupConsumer};
use crate::state::Services;
use cortex_shared::{AgentName, ErrorCode, Ref, ServerFrame, SubscribeMode, SubscribeTarget};
use std::collections::VecDeque;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events queued from a consumer to the session.
const EVENTS: usize = 256;

/// A consume request refused on the spot; sent to the client as an `error` frame.
#[derive(Debug)]
pub(crate) struct Refusal {
    code: ErrorCode,
    message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The `error` frame.
    pub(crate) fn into_frame(self) -> ServerFrame {
        ServerFrame::Error {
            code: self.code,
            message: self.message,
        }
    }
}

/// The consumer of one session, if it consumes, and those it stopped, whose last
/// events (replies to acks sent before the stop) still reach the client.
#[derive(Debug)]
pub(crate) struct Consumers {
    current: Option<(AgentName, Handle)>,
    /// Stopped, each until its task has ended and its events are drained.
    stopped: Vec<Handle>,
    cancel: CancellationToken,
}

/// One consumer task: its commands, its events (a channel of its own, so that each
/// event is known to be its reply, for its refs), its stop.
#[derive(Debug)]
struct Handle {
    commands: mpsc::Sender<ConsumerCommand>,
    events: mpsc::Receiver<ConsumerEvent>,
    cancel: CancellationToken,
    refs: Refs,
}

/// The refs a consumer's replies carry. A consumer answers the `subscribe` that
/// started it first (`Failed` while Redis cannot be reached, then `Ready`), then each
/// ack and nack it was given exactly once, in the order given (see
/// [`GroupConsumer`]'s `handle`): the refs wait in that order.
#[derive(Debug, Default)]
struct Refs {
    subscribe: Option<Ref>,
    ready: bool,
    /// One per ack or nack not yet answered, oldest first; `None` for one sent
    /// without a ref.
    commands: VecDeque<Option<Ref>>,
}

impl Refs {
    /// The ref of the frame `event` answers (none for a delivery, which answers none).
    fn of(&mut self, event: &ConsumerEvent) -> Option<Ref> {
        match event {
            ConsumerEvent::Delivery { .. } => None,
            ConsumerEvent::Ready { .. } => {
                self.ready = true;
                self.subscribe.take()
            }
            ConsumerEvent::Failed { .. } if !self.ready => self.subscribe.clone(),
            ConsumerEvent::Acked { .. }
            | ConsumerEvent::Nacked { .. }
            | ConsumerEvent::Failed { .. } => self.commands.pop_front().flatten(),
        }
    }
}

impl Handle {
    /// The next event of this consumer, with the ref of the frame it answers; `None`
    /// once the consumer has ended and its events are drained.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<(ConsumerEvent, Option<Ref>)>> {
        self.events.poll_recv(cx).map(|event| {
            event.map(|event| {
                let reference = self.refs.of(&event);
                (event, reference)
            })
        })
    }
}

impl Consumers {
    /// No consumers yet. `cancel` stops them all.
    pub(crate) fn new(cancel: CancellationToken) -> Self {
        Self {
            current: None,
            stopped: Vec::new(),
            cancel,
        }
    }

    /// The next event of any consumer of the session, and the ref of the client's
    /// frame it answers; pending while there is none. Cancel-safe.
    pub(crate) async fn next(&mut self) -> (ConsumerEvent, Option<Ref>) {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<(ConsumerEvent, Option<Ref>)> {
        let mut i = 0;
        while i < self.stopped.len() {
            match self.stopped[i].poll_event(cx) {
                Poll::Ready(Some(event)) => return Poll::Ready(event),
                Poll::Ready(None) => drop(self.stopped.swap_remove(i)),
                Poll::Pending => i += 1,
            }
        }
        match &mut self.current {
            Some((_, handle)) => match handle.poll_event(cx) {
                Poll::Ready(Some(event)) => Poll::Ready(event),
                // A consumer ends only once stopped; until then, nothing more comes.
                Poll::Ready(None) | Poll::Pending => Poll::Pending,
            },
            None => Poll::Pending,
        }
    }

    /// Starts consuming `target` as `consumer` (generated when `None`). The
    /// `subscribed` reply comes as [`ConsumerEvent::Ready`] once the groups exist,
    /// carrying `reference`.
    pub(crate) fn subscribe(
        &mut self,
        target: SubscribeTarget,
        consumer: Option<String>,
        reference: Option<Ref>,
        ctx: &Services,
    ) -> Result<(), Refusal> {
        let SubscribeTarget::Agent(agent) = target else {
            return Err(Refusal::new(
                ErrorCode::NotAllowed,
                "consume needs one agent; \"*\" can only be watched",
            ));
        };
        let consumer = match consumer {
            Some(name) => AgentName::parse(&name)
                .map_err(|e| Refusal::new(ErrorCode::InvalidAgent, format!("consumer name: {e}")))?
                .to_string(),
            None => format!(
                "{agent}-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
        };
        if let Some((current, _)) = &self.current {
            return Err(Refusal::new(
                ErrorCode::NotAllowed,
                format!(
                    "this connection already consumes {current}; consume another agent on \
                     another connection"
                ),
            ));
        }
        let (commands, commands_rx) = mpsc::channel(ctx.delivery.prefetch.max(1) * 2);
        let (events, events_rx) = mpsc::channel(EVENTS);
        let cancel = self.cancel.child_token();
        let worker = GroupConsumer::new(
            ctx.client.clone(),
            ctx.redis.clone(),
            agent.clone(),
            consumer,
            ctx.delivery,
            ctx.lifecycle,
            ctx.metrics.clone(),
        );
        tokio::spawn(worker.run(events, commands_rx, cancel.clone()));
        let handle = Handle {
            commands,
            events: events_rx,
            cancel,
            refs: Refs {
                subscribe: reference,
                ..Refs::default()
            },
        };
        self.current = Some((agent, handle));
        Ok(())
    }

    /// Stops consuming `target`, or everything when `None`. Tasks in flight stay
    /// pending in Redis, handed back (due for redelivery at once): the next consumer of
    /// the agent to reclaim gets them, one reconnecting with the same name first of all.
    pub(crate) fn unsubscribe(&mut self, target: Option<&SubscribeTarget>) {
        let matches = match (target, &self.current) {
            (None, _) => true,
            (Some(SubscribeTarget::Agent(agent)), Some((current, _))) => agent == current,
            _ => false,
        };
        if matches {
            self.stop_all();
        }
    }

    /// Stops every consumer; what they still send comes through [`Consumers::next`].
    pub(crate) fn stop_all(&mut self) {
        if let Some((_, handle)) = self.current.take() {
            handle.cancel.cancel();
            self.stopped.push(handle);
        }
    }

    /// Routes an ack to the consumer that delivered the task; its reply will carry
    /// `reference`.
    pub(crate) fn ack(
        &mut self,
        stream: &str,
        entry_id: &str,
        reference: Option<Ref>,
    ) -> Result<(), Refusal> {
        let command = ConsumerCommand::Ack {
            stream: stream.to_owned(),
            entry_id: entry_id.to_owned(),
        };
        self.send(command, reference)
    }

    /// Routes a nack to the consumer that delivered the task; its reply will carry
    /// `reference`.
    pub(crate) fn nack(
        &mut self,
        stream: &str,
        entry_id: &str,
        error: String,
        reference: Option<Ref>,
    ) -> Result<(), Refusal> {
        let command = ConsumerCommand::Nack {
            stream: stream.to_owned(),
            entry_id: entry_id.to_owned(),
            error,
        };
        self.send(command, reference)
    }

    fn send(&mut self, command: ConsumerCommand, reference: Option<Ref>) -> Result<(), Refusal> {
        let Some((_, handle)) = &mut self.current else {
            return Err(Refusal::new(
                ErrorCode::UnknownDelivery,
                "this connection consumes no agent",
            ));
        };
        handle
            .commands
            .try_send(command)
            .map_err(|_| Refusal::new(ErrorCode::Internal, "too many acks queued"))?;
        handle.refs.commands.push_back(reference);
        Ok(())
    }
}

impl ConsumerEvent {
    /// The frame this event is sent as.
    pub(crate) fn into_frame(self) -> ServerFrame {
        match self {
            ConsumerEvent::Ready { agent, consumer } => ServerFrame::Subscribed {
                agent,
                status: "ok".into(),
                mode: SubscribeMode::Consume,
                consumer: Some(consumer),
            },
            ConsumerEvent::Delivery {
                task,
                stream,
                entry_id,
                count,
            } => ServerFrame::Task {
                data: task,
                stream: stream.to_owned(),
                entry_id,
                delivery_count: Some(count),
            },
            ConsumerEvent::Acked { stream, entry_id } => ServerFrame::Acked { stream, entry_id },
            ConsumerEvent::Nacked {
                stream,
                entry_id,
                dead_lettered,
            } => ServerFrame::Nacked {
                stream,
                entry_id,
                dead_lettered,
            },
            ConsumerEvent::Failed { code, message } => ServerFrame::Error { code, message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acked(n: u64) -> ConsumerEvent {
        ConsumerEvent::Acked {
            stream: "cortex:tasks:high".into(),
            entry_id: format!("{n}-0"),
        }
    }

    fn failed() -> ConsumerEvent {
        ConsumerEvent::Failed {
            code: ErrorCode::RedisUnavailable,
            message: "down".into(),
        }
    }

    fn ready() -> ConsumerEvent {
        ConsumerEvent::Ready {
            agent: "pink".into(),
            consumer: "pink-1".into(),
        }
    }

    fn delivery() -> ConsumerEvent {
        ConsumerEvent::Delivery {
            task: cortex_shared::TaskMessage {
                id: "t".into(),
                from: "harold".into(),
                to: "pink".into(),
                priority: cortex_shared::Priority::High,
                task_type: "coding".into(),
                payload: Default::default(),
                created: 1,
                parent_id: None,
                correlation_id: None,
            },
            stream: "cortex:tasks:high",
            entry_id: "9-0".into(),
            count: 1,
        }
    }

    /// A consumer's end of a handle, without a consumer task: its events go in here.
    fn handle(subscribe: Option<Ref>) -> (Handle, mpsc::Sender<ConsumerEvent>) {
        let (commands, _) = mpsc::channel(8);
        let (events, rx) = mpsc::channel(8);
        let handle = Handle {
            commands,
            events: rx,
            cancel: CancellationToken::new(),
            refs: Refs {
                subscribe,
                ..Refs::default()
            },
        };
        (handle, events)
    }

    #[test]
    fn each_reply_takes_the_ref_of_the_frame_it_answers() {
        let mut refs = Refs {
            subscribe: Some(Ref::text("sub").unwrap()),
            ..Refs::default()
        };
        refs.commands
            .extend([Some(Ref::number(1)), None, Some(Ref::number(3))]);
        let sub = Some(Ref::text("sub").unwrap());
        // Before `Ready`, failures answer the subscribe (once per retry).
        assert_eq!(refs.of(&failed()), sub);
        assert_eq!(refs.of(&failed()), sub);
        assert_eq!(refs.of(&ready()), sub);
        // Then acks and nacks, in order; deliveries answer nothing.
        assert_eq!(refs.of(&acked(1)), Some(Ref::number(1)));
        assert_eq!(refs.of(&delivery()), None);
        assert_eq!(refs.of(&failed()), None);
        let nacked = ConsumerEvent::Nacked {
            stream: "cortex:tasks:high".into(),
            entry_id: "3-0".into(),
            dead_lettered: false,
        };
        assert_eq!(refs.of(&nacked), Some(Ref::number(3)));
        assert!(refs.commands.is_empty());
    }

    #[tokio::test]
    async fn a_stopped_consumers_last_replies_keep_their_refs() {
        let mut consumers = Consumers::new(CancellationToken::new());
        let agent = AgentName::parse("pink").unwrap();
        let (mut old, old_events) = handle(None);
        old.refs.ready = true;
        old.refs.commands.push_back(Some(Ref::number(7)));
        consumers.current = Some((agent.clone(), old));
        consumers.stop_all();
        // A new consumer of the same agent, started with a ref of its own.
        let (new, new_events) = handle(Some(Ref::number(8)));
        consumers.current = Some((agent, new));
        new_events.send(ready()).await.unwrap();
        old_events.send(acked(5)).await.unwrap();
        drop(old_events);
        let mut got = Vec::new();
        for _ in 0..2 {
            let (event, reference) = consumers.next().await;
            got.push((matches!(event, ConsumerEvent::Ready { .. }), reference));
        }
        got.sort();
        assert_eq!(
            got,
            [(false, Some(Ref::number(7))), (true, Some(Ref::number(8)))]
        );
        // The stopped one, drained and ended, is gone.
        assert!(futures::FutureExt::now_or_never(consumers.next()).is_none());
        assert!(consumers.stopped.is_empty());
    }
}
