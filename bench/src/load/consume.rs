//! `cortex-bench consume`: WebSocket consumers sharing one agent's work. Each task is
//! acked as soon as it arrives; the process stops once the relay has confirmed an ack
//! for every task of the run (or at the deadline). It records publish-to-delivery and
//! publish-to-`acked` latency.

use super::conn::{fleet, Dialer, Ws};
use super::Plan;
use crate::wire::{field, frame_type, now_us, number, Latency, Line, LoadReport, Seen, Tally};
use anyhow::Result;
use clap::Args;
use cortex_shared::ClientFrame;
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Who consumes what.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConsumeArgs {
    /// The relay (`127.0.0.1:<port>`).
    #[arg(long)]
    relay: SocketAddr,
    /// Consumer connections, all for the run's one agent.
    #[arg(long)]
    connections: u64,
    /// Seconds to run at most once the connections are up.
    #[arg(long)]
    run_secs: f64,
    #[command(flatten)]
    plan: Plan,
}

impl ConsumeArgs {
    /// Arguments for `connections` consumers of `plan` (whose tasks all go to one agent).
    pub(crate) fn to_args(
        relay: &str,
        connections: u64,
        run_secs: f64,
        plan: &Plan,
    ) -> Vec<String> {
        vec![
            "consume".into(),
            "--relay".into(),
            relay.into(),
            "--connections".into(),
            connections.to_string(),
            "--run-secs".into(),
            run_secs.to_string(),
            "--count".into(),
            plan.count.to_string(),
            "--agents".into(),
            "1".into(),
            "--prefix".into(),
            plan.prefix.clone(),
        ]
    }
}

/// What every consumer connection of the process shares.
#[derive(Debug)]
struct Shared {
    delivery: Mutex<Latency>,
    ack: Mutex<Latency>,
    delivered: Mutex<Seen>,
    acked: Mutex<Seen>,
    count: u64,
    /// Becomes true once every task is acked.
    all_acked: watch::Sender<bool>,
}

/// What one consumer connection saw.
#[derive(Debug, Default)]
struct Outcome {
    tally: Tally,
}

/// Consumes, then prints the report.
pub(crate) async fn run(args: ConsumeArgs) -> Result<()> {
    let dialer = Dialer::new(args.relay);
    let agent = args.plan.agent(0);
    let count = args.plan.count;
    let shared = Arc::new(Shared {
        delivery: Mutex::default(),
        ack: Mutex::default(),
        delivered: Mutex::new(Seen::new(count)),
        acked: Mutex::new(Seen::new(count)),
        count,
        all_acked: watch::Sender::new(count == 0),
    });
    let (outcomes, failed) = {
        let shared = shared.clone();
        fleet(
            &dialer,
            0..args.connections,
            move |_| ClientFrame::consume(agent.clone(), None),
            args.run_secs,
            move |i, ws, deadline| consume_one(i, ws, deadline, shared.clone()),
        )
        .await
    };
    let mut report = LoadReport {
        connections: outcomes.len() as u64,
        expected: count,
        ..LoadReport::default()
    };
    report.errors.merge(failed);
    for outcome in outcomes {
        report.add(outcome.tally);
    }
    report.acked = shared.acked.lock().expect("lock").len();
    report.latency = shared.delivery.lock().expect("lock").to_pairs();
    report.ack_latency = shared.ack.lock().expect("lock").to_pairs();
    Line::done(report);
    Ok(())
}

async fn consume_one(i: u64, mut ws: Ws, deadline: Instant, shared: Arc<Shared>) -> Outcome {
    let mut outcome = Outcome::default();
    // Entry id → (task number, its publish time), for the tasks awaiting `acked`.
    let mut in_flight: HashMap<String, (u64, u64)> = HashMap::new();
    let mut all_acked = shared.all_acked.subscribe();
    let end = tokio::time::sleep_until(deadline);
    tokio::pin!(end);
    loop {
        let message = tokio::select! {
            message = ws.next() => message,
            _ = &mut end => break,
            done = all_acked.wait_for(|done| *done) => {
                let _ = done;
                break;
            }
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                outcome
                    .tally
                    .errors
                    .add(format!("consumer {i}: closed by the relay: {frame:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                outcome.tally.errors.add(format!("consumer {i}: {e}"));
                break;
            }
            None => {
                outcome
                    .tally
                    .errors
                    .add(format!("consumer {i}: connection ended"));
                break;
            }
        };
        let now = now_us();
        match frame_type(&text) {
            Some("task") => {
                let (Some(seq), Some(sent), Some(stream), Some(entry_id)) = (
                    number(&text, "seq"),
                    number(&text, "sent_us"),
                    field(&text, "stream"),
                    field(&text, "entry_id"),
                ) else {
                    outcome.tally.errors.add(format!(
                        "consumer {i}: task frame without its fields: {text}"
                    ));
                    continue;
                };
                shared
                    .delivery
                    .lock()
                    .expect("lock")
                    .record(now.saturating_sub(sent));
                outcome
                    .tally
                    .receipt(now, shared.delivered.lock().expect("lock").insert(seq));
                let ack =
                    format!(r#"{{"type":"ack","stream":"{stream}","entry_id":"{entry_id}"}}"#);
                in_flight.insert(entry_id.to_owned(), (seq, sent));
                if let Err(e) = ws.send(Message::Text(ack.into())).await {
                    outcome
                        .tally
                        .errors
                        .add(format!("consumer {i}: send ack: {e}"));
                    break;
                }
            }
            Some("acked") => {
                let Some((seq, sent)) =
                    field(&text, "entry_id").and_then(|id| in_flight.remove(id))
                else {
                    outcome
                        .tally
                        .errors
                        .add(format!("consumer {i}: acked for no task in flight: {text}"));
                    continue;
                };
                shared
                    .ack
                    .lock()
                    .expect("lock")
                    .record(now.saturating_sub(sent));
                let mut acked = shared.acked.lock().expect("lock");
                if acked.insert(seq) && acked.len() == shared.count {
                    shared.all_acked.send_replace(true);
                }
            }
            Some("error") => outcome.tally.errors.add(format!("consumer {i}: {text}")),
            _ => {}
        }
    }
    if !in_flight.is_empty() && !*shared.all_acked.borrow() {
        outcome.tally.errors.add(format!(
            "consumer {i}: {} acks unconfirmed at the deadline",
            in_flight.len()
        ));
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    outcome
}
