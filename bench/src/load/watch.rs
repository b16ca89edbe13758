//! `cortex-bench watch`: WebSocket watchers. Connection `i` watches agent
//! `<prefix><i % agents>` and must receive exactly that agent's tasks, each once; it
//! records publish-to-receipt latency for each, and stops when it has them all or at
//! the deadline.

use super::conn::{fleet, Dialer, Ws};
use super::Plan;
use crate::wire::{frame_type, now_us, number, Latency, Line, LoadReport, Seen, Tally};
use anyhow::Result;
use clap::Args;
use cortex_shared::ClientFrame;
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Who watches what.
#[derive(Debug, Clone, Args)]
pub(crate) struct WatchArgs {
    /// The relay (`127.0.0.1:<port>`).
    #[arg(long)]
    relay: SocketAddr,
    /// Connections this process opens.
    #[arg(long)]
    connections: u64,
    /// The number of this process's first connection (when several processes share
    /// the watchers).
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Seconds to run at most once the connections are up.
    #[arg(long)]
    run_secs: f64,
    #[command(flatten)]
    plan: Plan,
}

impl WatchArgs {
    /// Arguments for watchers `first..first + connections` of `plan`.
    pub(crate) fn to_args(
        relay: &str,
        first: u64,
        connections: u64,
        run_secs: f64,
        plan: &Plan,
    ) -> Vec<String> {
        vec![
            "watch".into(),
            "--relay".into(),
            relay.into(),
            "--connections".into(),
            connections.to_string(),
            "--first".into(),
            first.to_string(),
            "--run-secs".into(),
            run_secs.to_string(),
            "--count".into(),
            plan.count.to_string(),
            "--agents".into(),
            plan.agents.to_string(),
            "--prefix".into(),
            plan.prefix.clone(),
        ]
    }
}

/// What one watcher saw.
#[derive(Debug, Default)]
struct Outcome {
    expected: u64,
    tally: Tally,
}

/// Watches, then prints the report.
pub(crate) async fn run(args: WatchArgs) -> Result<()> {
    let dialer = Dialer::new(args.relay);
    let plan = Arc::new(args.plan.clone());
    let latency = Arc::new(Mutex::new(Latency::default()));
    let (outcomes, failed) = {
        let (plan, latency) = (plan.clone(), latency.clone());
        let subscribe_plan = plan.clone();
        fleet(
            &dialer,
            args.first..args.first + args.connections,
            move |i| ClientFrame::watch(subscribe_plan.agent(i)),
            args.run_secs,
            move |i, ws, deadline| watch_one(i, ws, deadline, plan.clone(), latency.clone()),
        )
        .await
    };
    let mut report = LoadReport {
        connections: outcomes.len() as u64,
        ..LoadReport::default()
    };
    report.errors.merge(failed);
    for outcome in outcomes {
        report.expected += outcome.expected;
        report.add(outcome.tally);
    }
    report.latency = latency.lock().expect("latency lock").to_pairs();
    Line::done(report);
    Ok(())
}

async fn watch_one(
    i: u64,
    mut ws: Ws,
    deadline: Instant,
    plan: Arc<Plan>,
    latency: Arc<Mutex<Latency>>,
) -> Outcome {
    let agents = plan.agents.max(1);
    let agent = i % agents;
    let expected = plan.tasks_for(agent);
    // Task k of this agent is number k / agents among its tasks.
    let mut seen = Seen::new(expected);
    let mut outcome = Outcome {
        expected,
        ..Outcome::default()
    };
    let end = tokio::time::sleep_until(deadline);
    tokio::pin!(end);
    while seen.len() < expected {
        let message = tokio::select! {
            message = ws.next() => message,
            _ = &mut end => break,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                outcome
                    .tally
                    .errors
                    .add(format!("watcher {i}: closed by the relay: {frame:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                outcome.tally.errors.add(format!("watcher {i}: {e}"));
                break;
            }
            None => {
                outcome
                    .tally
                    .errors
                    .add(format!("watcher {i}: connection ended"));
                break;
            }
        };
        match frame_type(&text) {
            Some("task") => {
                let now = now_us();
                let (Some(seq), Some(sent)) = (number(&text, "seq"), number(&text, "sent_us"))
                else {
                    outcome
                        .tally
                        .errors
                        .add(format!("watcher {i}: task without seq/sent_us: {text}"));
                    continue;
                };
                latency
                    .lock()
                    .expect("latency lock")
                    .record(now.saturating_sub(sent));
                if seq % agents != agent {
                    outcome.tally.errors.add(format!(
                        "watcher {i}: task {seq} is for agent {}, not {agent}",
                        seq % agents
                    ));
                } else {
                    outcome.tally.receipt(now, seen.insert(seq / agents));
                }
            }
            Some("error") => outcome.tally.errors.add(format!("watcher {i}: {text}")),
            // Heartbeats, presence and DLQ notices are not part of the load.
            _ => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    outcome
}
