//! `cortex-relay tail`: print an agent's tasks as they arrive, until Ctrl-C or
//! `--count` entries.
//!
//! Without `--relay` it reads Redis itself: watching is a blocking `XREAD` on the four
//! task streams from their current ends (read-only: it never acks or claims, so it
//! changes nothing for agents); `--consume` joins the agent's consumer group with the
//! relay's own [`GroupConsumer`], so the tasks are taken as the agent takes them: each
//! is printed, then acked. With `--relay` it does the same through the relay's `/ws`
//! (a watch or consume subscription), sending the token in the handshake.
//!
//! Once it is reading, it says so on stderr (`watching pink on …`), so a task
//! published after that line is shown.

use super::entry::{Decoded, Entry};
use super::output::Output;
use super::{mask_password, parse_agent, parse_target, CliError};
use super::{OutputArgs, RedisArgs, RelayArgs, CONNECT_TIMEOUT};
use crate::consume::{ConsumerCommand, ConsumerEvent, DeliverySettings, GroupConsumer};
use crate::store::keys;
use crate::store::lifecycle::LifecycleSettings;
use crate::store::streams::{tails, xread};
use cortex_shared::Backoff;
use cortex_shared::{
    AgentName, ClientFrame, Heartbeat, ServerFrame, SubscribeTarget, HEARTBEAT_STREAM,
};
use futures_util::{SinkExt, StreamExt};
use redis::aio::MultiplexedConnection;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// How long one blocking read waits in Redis.
const BLOCK: Duration = Duration::from_secs(5);

/// Entries one read returns at most.
const BATCH: usize = 512;

/// `tail AGENT [--consume [--consumer NAME]] [--heartbeats] [--count N]`
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// The agent whose tasks to show (tasks addressed to it or to every agent); `*`
    /// for every task (watch only).
    #[arg(value_name = "AGENT", value_parser = parse_target)]
    pub agent: SubscribeTarget,
    /// Take the tasks as the agent does, in its consumer group: each is printed, then
    /// acked, so the agent's other consumers do not get it. Without it, watch:
    /// read-only.
    #[arg(long)]
    pub consume: bool,
    /// With `--consume`: the consumer's name in the agent's group. Give a stable one
    /// to get its unacked tasks back after a restart. Default: `<agent>-cli-<pid>`
    /// (through a relay: one the relay picks).
    #[arg(long, value_name = "NAME", requires = "consume", value_parser = parse_agent)]
    pub consumer: Option<AgentName>,
    /// Also show the agent's heartbeats (watch only).
    #[arg(long, conflicts_with = "consume")]
    pub heartbeats: bool,
    /// Exit after printing N entries (consuming: after acking N tasks).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Through a relay instead of Redis.
    #[command(flatten)]
    pub relay: RelayArgs,
    /// Which Redis (without `--relay`).
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Human or JSON output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Prints entries as they arrive (see [`Entry`]), until Ctrl-C or `--count`.
pub async fn run(
    args: TailArgs,
    redis_url: &str,
    lifecycle: LifecycleSettings,
) -> Result<(), CliError> {
    let agent = match &args.agent {
        SubscribeTarget::Agent(agent) => Some(agent.clone()),
        SubscribeTarget::All => None,
    };
    if args.consume && agent.is_none() {
        return Err(CliError::Invalid(
            "--consume needs one agent; `*` can only be watched".into(),
        ));
    }
    let out = Output::new(args.output.json);
    let tail = async {
        match (&args.relay.relay, agent) {
            (Some(relay), _) => through_relay(&args, relay, &out).await,
            (None, Some(agent)) if args.consume => {
                consume(&args, agent, redis_url, lifecycle, &out).await
            }
            (None, _) => watch(&args, redis_url, &out).await,
        }
    };
    tokio::select! {
        result = tail => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Counts what was printed against `--count`.
struct Budget(Option<u64>);

impl Budget {
    /// Counts one; true when the budget is spent.
    fn spend(&mut self) -> bool {
        match &mut self.0 {
            Some(left) => {
                *left = left.saturating_sub(1);
                *left == 0
            }
            None => false,
        }
    }
}

/// Watch on Redis: `XREAD` from the streams' current ends; reconnects (keeping its
/// place) if Redis goes away after the start.
async fn watch(args: &TailArgs, redis_url: &str, out: &Output) -> Result<(), CliError> {
    let client = redis::Client::open(redis_url).map_err(|e| CliError::redis(redis_url, e))?;
    let mut streams = keys::task_streams().to_vec();
    if args.heartbeats {
        streams.push(keys::HEARTBEATS);
    }
    let mut conn = connect_blocking(&client)
        .await
        .map_err(|e| CliError::redis(redis_url, e))?;
    let mut positions = tails(&mut conn, &streams)
        .await
        .map_err(|e| CliError::redis(redis_url, e))?;
    out.note(&format!(
        "watching {} on {} (Ctrl-C to stop)",
        args.agent.as_str(),
        mask_password(redis_url)
    ));
    let mut budget = Budget(args.count);
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        // Walked as Redis sent it: a field whose name is not UTF-8 fails no read.
        let read = xread(&mut conn, &streams, &positions, BATCH, BLOCK).await;
        let reply = match read {
            Ok(reply) => reply,
            Err(e) => {
                out.note(&format!("lost Redis ({e}); reconnecting"));
                conn = loop {
                    tokio::time::sleep(backoff.next_delay()).await;
                    if let Ok(conn) = connect_blocking(&client).await {
                        break conn;
                    }
                };
                backoff.reset();
                out.note("reconnected");
                continue;
            }
        };
        for (stream, id) in reply {
            let Some(index) = streams.iter().position(|s| *s == stream) else {
                continue;
            };
            positions[index].clone_from(&id.id);
            let entry = Entry::decode(stream, &id.into_stream_id());
            if !shows(&args.agent, &entry.decoded) {
                continue;
            }
            out.item(|| entry.human(), &entry.json())?;
            if budget.spend() {
                return Ok(());
            }
        }
    }
}

/// Whether a watcher of `target` sees `decoded` (an undecodable entry is shown when
/// its raw `to`, or `agent`, names the target).
fn shows(target: &SubscribeTarget, decoded: &Decoded) -> bool {
    match decoded {
        Decoded::Task(task) => target.sees_task_for(&task.to),
        Decoded::Heartbeat(hb) => target.sees_heartbeat_of(&hb.agent),
        Decoded::DeadLetter(_) => false,
        Decoded::Raw { fields, .. } => match (fields.get("to"), fields.get("agent")) {
            (Some(to), _) => target.sees_task_for(to),
            (None, Some(agent)) => target.sees_heartbeat_of(agent),
            (None, None) => *target == SubscribeTarget::All,
        },
    }
}

/// A connection for blocking reads: its response timeout is longer than the block.
async fn connect_blocking(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(BLOCK + Duration::from_secs(5)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Consume on Redis, with the relay's own consumer-group logic: print, then ack.
async fn consume(
    args: &TailArgs,
    agent: AgentName,
    redis_url: &str,
    lifecycle: LifecycleSettings,
    out: &Output,
) -> Result<(), CliError> {
    let client = redis::Client::open(redis_url).map_err(|e| CliError::redis(redis_url, e))?;
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(super::RESPONSE_TIMEOUT))
        .set_number_of_retries(1);
    let manager = tokio::time::timeout(
        CONNECT_TIMEOUT * 2,
        client.get_connection_manager_with_config(manager_config),
    )
    .await
    .map_err(|_| CliError::redis(redis_url, "no connection"))?
    .map_err(|e| CliError::redis(redis_url, e))?;
    let consumer = args.consumer.as_ref().map_or_else(
        || format!("{agent}-cli-{}", std::process::id()),
        |name| name.to_string(),
    );
    let settings = DeliverySettings {
        // Take no more than will be printed: the rest stays for the agent's consumers.
        prefetch: args.count.map_or(32, |n| n.min(32) as usize),
        ..DeliverySettings::default()
    };
    let (events_tx, mut events) = mpsc::channel(64);
    let (commands, commands_rx) = mpsc::channel(64);
    let stop = CancellationToken::new();
    let _stop_on_return = stop.clone().drop_guard();
    let mut group = GroupConsumer::new(
        client,
        manager,
        agent,
        consumer,
        settings,
        lifecycle,
        std::sync::Arc::default(),
    );
    if let Some(n) = args.count {
        group = group.with_limit(n as usize);
    }
    tokio::spawn(group.run(events_tx, commands_rx, stop));
    let mut acked = Budget(args.count);
    let mut ready = false;
    while let Some(event) = events.recv().await {
        match event {
            ConsumerEvent::Ready { agent, consumer } => {
                ready = true;
                out.note(&format!(
                    "consuming {agent} as {consumer} on {} (Ctrl-C to stop)",
                    mask_password(redis_url)
                ));
            }
            ConsumerEvent::Delivery {
                task,
                stream,
                entry_id,
                count,
            } => {
                let mut entry = Entry::task(stream, &entry_id, task);
                entry.delivery_count = Some(count);
                out.item(|| entry.human(), &entry.json())?;
                let ack = ConsumerCommand::Ack {
                    stream: stream.to_owned(),
                    entry_id,
                };
                if commands.send(ack).await.is_err() {
                    break;
                }
            }
            // Done once the last task counted is acked, not merely printed.
            ConsumerEvent::Acked { .. } if acked.spend() => return Ok(()),
            ConsumerEvent::Failed { message, .. } if !ready => {
                return Err(CliError::redis(redis_url, message));
            }
            ConsumerEvent::Failed { message, .. } => out.note(&format!("error: {message}")),
            _ => {}
        }
    }
    Err(CliError::redis(redis_url, "the consumer stopped"))
}

/// Watch or consume through a relay's `/ws`.
async fn through_relay(args: &TailArgs, relay: &str, out: &Output) -> Result<(), CliError> {
    let ws_url = format!("ws{}/ws", relay.strip_prefix("http").unwrap_or(relay));
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| CliError::relay(relay, e))?;
    if let Some(token) = &args.relay.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| CliError::Invalid("--token: not valid in an HTTP header".into()))?;
        request
            .headers_mut()
            .insert(axum::http::header::AUTHORIZATION, value);
    }
    let connect = tokio_tungstenite::connect_async_with_config(request, None, true);
    let (mut socket, _) = tokio::time::timeout(CONNECT_TIMEOUT * 2, connect)
        .await
        .map_err(|_| CliError::relay(relay, "no WebSocket after a few seconds"))?
        .map_err(|e| handshake_error(relay, e))?;
    let agent = args.agent.as_str().to_owned();
    let subscribe = if args.consume {
        ClientFrame::consume(agent, args.consumer.as_ref().map(|c| c.to_string()))
    } else {
        ClientFrame::watch(agent)
    };
    let text = serde_json::to_string(&subscribe).expect("client frames serialize");
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|e| CliError::relay(relay, e))?;
    let mut budget = Budget(args.count);
    // Consuming: tasks printed (and acked) so far. The relay may deliver more than
    // `--count` at once (its prefetch); those are neither printed nor acked, and go
    // back to the agent after the visibility timeout.
    let mut taken = 0;
    let mut subscribed = false;
    while let Some(message) = socket.next().await {
        let text = match message.map_err(|e| CliError::relay(relay, e))? {
            Message::Text(text) => text,
            Message::Close(Some(frame))
                if u16::from(frame.code) == cortex_shared::frame::close_code::UNAUTHORIZED =>
            {
                return Err(CliError::Refused {
                    code: "unauthorized".into(),
                    message: format!("{} (give --token or set CORTEX_TOKEN)", frame.reason),
                });
            }
            Message::Close(frame) => {
                let why = frame.map_or_else(
                    || "no reason given".to_owned(),
                    |f| format!("code {}: {}", u16::from(f.code), f.reason),
                );
                return Err(CliError::relay(
                    relay,
                    format!("the relay closed the connection ({why})"),
                ));
            }
            _ => continue,
        };
        let Ok(frame) = serde_json::from_str::<ServerFrame>(&text) else {
            continue;
        };
        match frame {
            ServerFrame::Subscribed {
                agent, consumer, ..
            } => {
                subscribed = true;
                match consumer {
                    Some(consumer) => out.note(&format!(
                        "consuming {agent} as {consumer} via {relay} (Ctrl-C to stop)"
                    )),
                    None => out.note(&format!("watching {agent} via {relay} (Ctrl-C to stop)")),
                }
            }
            ServerFrame::Task {
                data,
                stream,
                entry_id,
                delivery_count,
                ..
            } => {
                if args.consume && args.count.is_some_and(|n| taken >= n) {
                    continue;
                }
                taken += 1;
                let mut entry = Entry::task(&stream, &entry_id, data);
                entry.delivery_count = delivery_count;
                out.item(|| entry.human(), &entry.json())?;
                if args.consume {
                    let ack = ClientFrame::Ack { stream, entry_id };
                    let text = serde_json::to_string(&ack).expect("client frames serialize");
                    socket
                        .send(Message::Text(text.into()))
                        .await
                        .map_err(|e| CliError::relay(relay, e))?;
                } else if budget.spend() {
                    return Ok(());
                }
            }
            ServerFrame::Acked { .. } if budget.spend() => return Ok(()),
            ServerFrame::Heartbeat {
                agent,
                status,
                time,
                entry_id,
                ..
            } if args.heartbeats => {
                let entry = Entry {
                    stream: HEARTBEAT_STREAM.to_owned(),
                    entry_id,
                    decoded: Decoded::Heartbeat(Heartbeat {
                        agent,
                        time,
                        status,
                    }),
                    delivery_count: None,
                };
                out.item(|| entry.human(), &entry.json())?;
                if budget.spend() {
                    return Ok(());
                }
            }
            ServerFrame::Gap {
                stream,
                after,
                resumed_from,
                ..
            } => out.note(&format!(
                "gap: entries of {stream} after {after} were trimmed; resumed from {resumed_from}"
            )),
            ServerFrame::Error { code, message } if !subscribed => {
                return Err(CliError::Refused {
                    code: code.to_string(),
                    message,
                });
            }
            ServerFrame::Error { code, message } => {
                out.note(&format!("relay error {code}: {message}"))
            }
            _ => {}
        }
    }
    Err(CliError::relay(relay, "the connection ended"))
}

/// A failed WebSocket handshake: the relay's `{code,message}` when it sent one.
fn handshake_error(relay: &str, e: tokio_tungstenite::tungstenite::Error) -> CliError {
    if let tokio_tungstenite::tungstenite::Error::Http(response) = &e {
        let body: Option<serde_json::Value> = response
            .body()
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok());
        let field = |name: &str| {
            body.as_ref()
                .and_then(|b| b.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        if let Some(code) = field("code") {
            return CliError::Refused {
                code,
                message: field("message").unwrap_or_else(|| response.status().to_string()),
            };
        }
        return CliError::relay(
            relay,
            format!("WebSocket refused: HTTP {}", response.status()),
        );
    }
    CliError::relay(relay, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_watcher_sees_its_tasks_and_raw_entries_addressed_to_it() {
        let pink = SubscribeTarget::parse("pink").unwrap();
        let raw = |pairs: &[(&str, &str)]| Decoded::Raw {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            error: Some("x".into()),
        };
        assert!(shows(&pink, &raw(&[("to", "pink")])));
        assert!(shows(&pink, &raw(&[("to", "")])));
        assert!(!shows(&pink, &raw(&[("to", "harold")])));
        assert!(!shows(&pink, &raw(&[("id", "1")])));
        assert!(shows(&SubscribeTarget::All, &raw(&[("id", "1")])));
        let mut budget = Budget(Some(2));
        assert!(!budget.spend());
        assert!(budget.spend());
        assert!(!Budget(None).spend());
    }
}
