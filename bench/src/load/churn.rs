//! `cortex-bench churn`: short consume connections, one after another at a steady
//! rate, each joining one of a few agents' groups, staying a moment and closing (half
//! with a close frame, half by dropping the socket): the connection churn of agents
//! that reconnect. It reports how many it opened; the driver watches what they leave
//! in Redis (consumers per group, Redis's memory).

use super::conn::Dialer;
use crate::wire::{Line, LoadReport};
use anyhow::Result;
use clap::Args;
use cortex_shared::ClientFrame;
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// What the churn does.
#[derive(Debug, Clone, Args)]
pub(crate) struct ChurnArgs {
    /// The relay (`127.0.0.1:<port>`).
    #[arg(long)]
    relay: SocketAddr,
    /// Agents whose groups the connections join, `<prefix><i>`, in turn.
    #[arg(long)]
    agents: u64,
    /// Agent names are this followed by their number.
    #[arg(long, default_value = "churn")]
    prefix: String,
    /// New connections per second.
    #[arg(long)]
    per_sec: f64,
    /// How long each connection stays once subscribed, ms.
    #[arg(long)]
    hold_ms: u64,
    /// Seconds to run.
    #[arg(long)]
    run_secs: f64,
}

impl ChurnArgs {
    /// Arguments for a churn of `per_sec` connections a second over `agents` agents.
    pub(crate) fn to_args(
        relay: &str,
        agents: u64,
        per_sec: f64,
        hold_ms: u64,
        run_secs: f64,
    ) -> Vec<String> {
        vec![
            "churn".into(),
            "--relay".into(),
            relay.into(),
            "--agents".into(),
            agents.to_string(),
            "--per-sec".into(),
            per_sec.to_string(),
            "--hold-ms".into(),
            hold_ms.to_string(),
            "--run-secs".into(),
            run_secs.to_string(),
        ]
    }
}

/// Churns, then prints the report.
pub(crate) async fn run(args: ChurnArgs) -> Result<()> {
    let dialer = Dialer::new(args.relay);
    Line::Ready {
        connections: 0,
        failed: 0,
    }
    .print();
    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / args.per_sec.max(0.001));
    let hold = Duration::from_millis(args.hold_ms);
    let end = start + Duration::from_secs_f64(args.run_secs);
    let mut tasks = JoinSet::new();
    let mut report = LoadReport::default();
    let mut i: u64 = 0;
    while start + every * (i as u32) < end {
        tokio::time::sleep_until(start + every * (i as u32)).await;
        let agent = format!("{}{}", args.prefix, i % args.agents.max(1));
        let dialer = dialer.clone();
        // Spread over a few source addresses: each closed socket waits in TIME_WAIT.
        let index = (i % 8_000) as usize;
        tasks.spawn(async move {
            let frame = ClientFrame::consume(agent, None);
            let mut ws = dialer.open(index, &frame).await?;
            let stay = tokio::time::sleep(hold);
            tokio::pin!(stay);
            loop {
                tokio::select! {
                    _ = &mut stay => break,
                    message = ws.next() => match message {
                        Some(Ok(Message::Text(text))) if crate::wire::frame_type(&text) == Some("error") => {
                            anyhow::bail!("churn connection {i}: {text}");
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => anyhow::bail!("churn connection {i}: {e}"),
                        None => anyhow::bail!("churn connection {i}: closed by the relay"),
                    },
                }
            }
            if i % 2 == 0 {
                let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
            }
            Ok::<_, anyhow::Error>(())
        });
        i += 1;
        while let Some(joined) = tasks.try_join_next() {
            count(&mut report, joined);
        }
    }
    while let Some(joined) = tasks.join_next().await {
        count(&mut report, joined);
    }
    Line::done(report);
    Ok(())
}

fn count(report: &mut LoadReport, joined: Result<Result<()>, tokio::task::JoinError>) {
    match joined {
        Ok(Ok(())) => report.connections += 1,
        Ok(Err(e)) => report.errors.add(format!("{e:#}")),
        Err(e) => report.errors.add(format!("churn task failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_back() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            command: Sub,
        }
        #[derive(clap::Subcommand)]
        enum Sub {
            Churn(ChurnArgs),
        }
        let args = ChurnArgs::to_args("127.0.0.1:9", 4, 10.0, 500, 60.0);
        let cli = Cli::try_parse_from(std::iter::once("b".to_owned()).chain(args)).unwrap();
        let Sub::Churn(parsed) = cli.command;
        assert_eq!(
            (parsed.agents, parsed.per_sec, parsed.hold_ms),
            (4, 10.0, 500)
        );
        assert_eq!(parsed.prefix, "churn");
    }
}
