//! `cortex-bench publish`: XADDs tasks straight to Redis, as the original
//! agents do, on an open-loop schedule (task `k` is due at `k / rate` seconds), so a
//! slow relay cannot slow the offered load down. Each task's payload carries the time
//! of its XADD, read just before the command is sent.

use super::Plan;
use crate::wire::{now_us, Line, LoadReport};
use anyhow::{Context, Result};
use clap::Args;
use cortex_shared::{JsonObject, Priority, TaskMessage};
use redis::aio::MultiplexedConnection;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What to publish, and how fast.
#[derive(Debug, Clone, Args)]
pub(crate) struct PublishArgs {
    /// The Redis to write to.
    #[arg(long)]
    redis_url: String,
    /// Tasks per second.
    #[arg(long)]
    rate: f64,
    /// Redis connections, used in turn (commands on each are pipelined).
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// XADDs awaiting their reply at most; beyond it the publisher waits (and falls
    /// behind its schedule, which it reports).
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    #[command(flatten)]
    plan: Plan,
}

/// Publishes, then prints the report.
pub(crate) async fn run(args: PublishArgs) -> Result<()> {
    let client = redis::Client::open(args.redis_url.as_str())?;
    // A slow answer is latency to measure, not a failure: redis-rs gives up after
    // 500 ms by default.
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(30)));
    let mut connections = Vec::new();
    for _ in 0..args.connections.max(1) {
        connections.push(
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .context("connect to redis")?,
        );
    }
    Line::Ready {
        connections: connections.len() as u64,
        failed: 0,
    }
    .print();

    let mut report = LoadReport {
        first_us: u64::MAX,
        ..LoadReport::default()
    };
    let mut in_flight = JoinSet::new();
    let interval = 1e9 / args.rate.max(1e-3);
    let start = Instant::now();
    for k in 0..args.plan.count {
        let due = start + Duration::from_nanos((k as f64 * interval) as u64);
        let now = Instant::now();
        if due > now {
            let sleep = tokio::time::sleep_until(due);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    biased;
                    _ = &mut sleep => break,
                    Some(done) = in_flight.join_next() => settle(done, &mut report),
                }
            }
        } else {
            let behind = (now - due).as_micros() as u64;
            report.max_behind_us = report.max_behind_us.max(behind);
        }
        while in_flight.len() >= args.max_in_flight {
            if let Some(done) = in_flight.join_next().await {
                settle(done, &mut report);
            }
        }
        let conn = connections[k as usize % connections.len()].clone();
        let to = args.plan.agent(k);
        in_flight.spawn(xadd(conn, k, to));
    }
    while let Some(done) = in_flight.join_next().await {
        settle(done, &mut report);
    }
    if report.first_us == u64::MAX {
        report.first_us = 0;
    }
    Line::done(report);
    Ok(())
}

/// XADDs task `k`; the time it was stamped with.
async fn xadd(mut conn: MultiplexedConnection, k: u64, to: String) -> Result<u64, String> {
    let sent_us = now_us();
    let mut payload = JsonObject::new();
    payload.insert("seq".into(), k.into());
    payload.insert("sent_us".into(), sent_us.into());
    let task = TaskMessage {
        id: format!("bench-{k}"),
        from: "bench".into(),
        to,
        priority: Priority::Normal,
        task_type: "bench".into(),
        payload,
        created: (sent_us / 1_000_000) as i64,
        parent_id: None,
        correlation_id: None,
    };
    let mut cmd = redis::cmd("XADD");
    cmd.arg(task.priority.stream()).arg("*");
    for (field, value) in task.to_fields() {
        cmd.arg(field).arg(value);
    }
    cmd.query_async::<String>(&mut conn)
        .await
        .map(|_| sent_us)
        .map_err(|e| format!("XADD task {k}: {e}"))
}

fn settle(done: Result<Result<u64, String>, tokio::task::JoinError>, report: &mut LoadReport) {
    match done {
        Ok(Ok(sent_us)) => {
            report.published += 1;
            report.first_us = report.first_us.min(sent_us);
            report.last_us = report.last_us.max(sent_us);
        }
        Ok(Err(e)) => report.errors.add(e),
        Err(e) => report.errors.add(format!("publish task failed: {e}")),
    }
}

impl PublishArgs {
    /// Arguments for a publisher of `plan` at `rate` tasks/s into `redis_url`.
    pub(crate) fn to_args(redis_url: &str, rate: f64, plan: &Plan) -> Vec<String> {
        vec![
            "publish".into(),
            "--redis-url".into(),
            redis_url.into(),
            "--rate".into(),
            rate.to_string(),
            "--count".into(),
            plan.count.to_string(),
            "--agents".into(),
            plan.agents.to_string(),
            "--prefix".into(),
            plan.prefix.clone(),
        ]
    }
}
