//! `cortex-bench poll`: the polling baseline. Each poller asks the relay's replay
//! endpoint (`GET /api/v1/streams/{stream}/entries`) for the entries after the last one
//! it saw, every `interval`, on one keep-alive HTTP/1.1 connection, following full
//! pages at once. A task's latency is from its XADD to the response that carried it.

use super::Plan;
use crate::wire::{now_us, Latency, Line, LoadReport, Seen, Tally};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

/// The largest page the endpoint serves.
const PAGE: usize = 1_000;

/// Who polls, how often.
#[derive(Debug, Clone, Args)]
pub(crate) struct PollArgs {
    /// The relay (`127.0.0.1:<port>`).
    #[arg(long)]
    relay: SocketAddr,
    /// Pollers, each reading every task.
    #[arg(long)]
    pollers: u64,
    /// Milliseconds between polls.
    #[arg(long)]
    interval_ms: u64,
    /// The stream polled.
    #[arg(long, default_value = "cortex:tasks:normal")]
    stream: String,
    /// Seconds to run at most.
    #[arg(long)]
    run_secs: f64,
    #[command(flatten)]
    plan: Plan,
}

impl PollArgs {
    /// Arguments for `pollers` pollers of every task of `plan`.
    pub(crate) fn to_args(
        relay: &str,
        pollers: u64,
        interval_ms: u64,
        run_secs: f64,
        plan: &Plan,
    ) -> Vec<String> {
        vec![
            "poll".into(),
            "--relay".into(),
            relay.into(),
            "--pollers".into(),
            pollers.to_string(),
            "--interval-ms".into(),
            interval_ms.to_string(),
            "--run-secs".into(),
            run_secs.to_string(),
            "--count".into(),
            plan.count.to_string(),
        ]
    }
}

#[derive(Debug, Deserialize)]
struct Page {
    entries: Vec<PageEntry>,
    next_start: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PageEntry {
    entry_id: String,
    task: Option<PageTask>,
}

#[derive(Debug, Deserialize)]
struct PageTask {
    payload: Payload,
}

#[derive(Debug, Deserialize)]
struct Payload {
    seq: u64,
    sent_us: u64,
}

/// What one poller saw.
#[derive(Debug, Default)]
struct Outcome {
    tally: Tally,
    requests: u64,
    latency: Latency,
}

/// Polls, then prints the report.
pub(crate) async fn run(args: PollArgs) -> Result<()> {
    // Pollers need no handshake: they are "up" at once.
    Line::Ready {
        connections: args.pollers,
        failed: 0,
    }
    .print();
    let deadline = super::deadline(args.run_secs);
    let mut pollers = JoinSet::new();
    let interval = Duration::from_millis(args.interval_ms.max(1));
    for p in 0..args.pollers {
        // Spread the pollers' phases over the interval, as independent clients would be.
        let phase = interval.mul_f64(p as f64 / args.pollers.max(1) as f64);
        pollers.spawn(poll_one(args.clone(), phase, interval, deadline));
    }
    let mut report = LoadReport {
        connections: args.pollers,
        expected: args.plan.count * args.pollers,
        ..LoadReport::default()
    };
    let mut latency = Latency::default();
    while let Some(joined) = pollers.join_next().await {
        let outcome = match joined {
            Ok(outcome) => outcome,
            Err(e) => {
                report.errors.add(format!("poller failed: {e}"));
                continue;
            }
        };
        report.requests += outcome.requests;
        latency.merge(&outcome.latency);
        report.add(outcome.tally);
    }
    report.latency = latency.to_pairs();
    Line::done(report);
    Ok(())
}

async fn poll_one(
    args: PollArgs,
    phase: Duration,
    interval: Duration,
    deadline: Instant,
) -> Outcome {
    let mut outcome = Outcome::default();
    let mut seen = Seen::new(args.plan.count);
    let mut http = None;
    let mut start = "0-0".to_owned();
    let mut ticks = tokio::time::interval_at(Instant::now() + phase, interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    while seen.len() < args.plan.count {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
        // Follow full pages at once; stop at a short one.
        loop {
            if Instant::now() >= deadline {
                break;
            }
            let conn = match &mut http {
                Some(conn) => conn,
                None => match TcpStream::connect(args.relay).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        http.insert(stream)
                    }
                    Err(e) => {
                        outcome.tally.errors.add(format!("connect: {e}"));
                        break;
                    }
                },
            };
            let path = format!(
                "/api/v1/streams/{}/entries?start={start}&count={PAGE}",
                args.stream
            );
            outcome.requests += 1;
            let page = match get_json::<Page>(conn, &args.relay, &path).await {
                Ok(page) => page,
                Err(e) => {
                    outcome.tally.errors.add(format!("GET {path}: {e:#}"));
                    http = None;
                    break;
                }
            };
            let now = now_us();
            let n = page.entries.len();
            for entry in &page.entries {
                let Some(task) = &entry.task else {
                    outcome
                        .tally
                        .errors
                        .add(format!("entry {} did not decode", entry.entry_id));
                    continue;
                };
                outcome
                    .latency
                    .record(now.saturating_sub(task.payload.sent_us));
                outcome.tally.receipt(now, seen.insert(task.payload.seq));
            }
            match (page.next_start, page.entries.last()) {
                (Some(next), _) => start = next,
                (None, Some(last)) => start = successor(&last.entry_id),
                (None, None) => {}
            }
            if n < PAGE {
                break;
            }
        }
    }
    outcome
}

/// The smallest entry id after `id` (`ms-seq` → `ms-(seq+1)`).
fn successor(id: &str) -> String {
    match id.split_once('-') {
        Some((ms, seq)) => match seq.parse::<u64>() {
            Ok(seq) => format!("{ms}-{}", seq + 1),
            Err(_) => id.to_owned(),
        },
        None => id.to_owned(),
    }
}

/// One keep-alive `GET`; the body parsed as JSON. Needs a `Content-Length` answer
/// (the relay's JSON responses have one).
async fn get_json<T: serde::de::DeserializeOwned>(
    conn: &mut TcpStream,
    host: &SocketAddr,
    path: &str,
) -> Result<T> {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n");
    conn.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let header_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > 64 * 1024 {
            bail!("response headers over 64 KiB");
        }
        let mut chunk = [0u8; 8192];
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed mid-response");
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..header_end]).context("headers not UTF-8")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .context("no status line")?;
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .context("no Content-Length")?;
    let mut body = buf[header_end..].to_vec();
    if body.len() < length {
        let have = body.len();
        body.resize(length, 0);
        conn.read_exact(&mut body[have..]).await?;
    }
    if status != 200 {
        bail!("status {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok(serde_json::from_slice(&body[..length])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_is_the_next_sequence() {
        assert_eq!(successor("1700000000000-0"), "1700000000000-1");
        assert_eq!(successor("5-41"), "5-42");
    }
}
