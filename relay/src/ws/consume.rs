//! A session's consumer (SPEC §3, consume): the [`GroupConsumer`] task of the agent
//! the client consumes, and the routing of its acks and nacks.
//!
//! One connection consumes at most one agent: a task for every agent has the same
//! stream and entry id in each agent's group, so an ack on a connection consuming
//! two agents could not say which it meant. Several connections (or several relays)
//! consuming the same agent share its work.

use super::session::SessionContext;
use crate::bridge::consumer::{ConsumerCommand, ConsumerEvent, GroupConsumer};
use cortex_shared::{AgentName, ErrorCode, ServerFrame, SubscribeMode, SubscribeTarget};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events queued from the consumer to the session.
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

/// The consumer of one session, if it consumes.
#[derive(Debug)]
pub(crate) struct Consumers {
    current: Option<(AgentName, Handle)>,
    events: mpsc::Sender<ConsumerEvent>,
    cancel: CancellationToken,
}

#[derive(Debug)]
struct Handle {
    commands: mpsc::Sender<ConsumerCommand>,
    cancel: CancellationToken,
}

impl Consumers {
    /// No consumers yet; their events arrive on the returned receiver. `cancel` stops
    /// them all.
    pub(crate) fn new(cancel: CancellationToken) -> (Self, mpsc::Receiver<ConsumerEvent>) {
        let (events, rx) = mpsc::channel(EVENTS);
        (
            Self {
                current: None,
                events,
                cancel,
            },
            rx,
        )
    }

    /// Starts consuming `target` as `consumer` (generated when `None`). The
    /// `subscribed` reply comes as [`ConsumerEvent::Ready`] once the groups exist.
    pub(crate) fn subscribe(
        &mut self,
        target: SubscribeTarget,
        consumer: Option<String>,
        ctx: &SessionContext,
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
        let cancel = self.cancel.child_token();
        let worker = GroupConsumer::new(
            ctx.client.clone(),
            ctx.redis.clone(),
            agent.clone(),
            consumer,
            ctx.delivery,
            ctx.metrics.clone(),
        );
        tokio::spawn(worker.run(self.events.clone(), commands_rx, cancel.clone()));
        self.current = Some((agent, Handle { commands, cancel }));
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

    /// Stops every consumer.
    pub(crate) fn stop_all(&mut self) {
        if let Some((_, handle)) = self.current.take() {
            handle.cancel.cancel();
        }
    }

    /// Routes an ack to the consumer that delivered the task.
    pub(crate) fn ack(&self, stream: &str, entry_id: &str) -> Result<(), Refusal> {
        self.send(ConsumerCommand::Ack {
            stream: stream.to_owned(),
            entry_id: entry_id.to_owned(),
        })
    }

    /// Routes a nack to the consumer that delivered the task.
    pub(crate) fn nack(&self, stream: &str, entry_id: &str, error: String) -> Result<(), Refusal> {
        self.send(ConsumerCommand::Nack {
            stream: stream.to_owned(),
            entry_id: entry_id.to_owned(),
            error,
        })
    }

    fn send(&self, command: ConsumerCommand) -> Result<(), Refusal> {
        let Some((_, handle)) = &self.current else {
            return Err(Refusal::new(
                ErrorCode::UnknownDelivery,
                "this connection consumes no agent",
            ));
        };
        handle
            .commands
            .try_send(command)
            .map_err(|_| Refusal::new(ErrorCode::Internal, "too many acks queued"))
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
