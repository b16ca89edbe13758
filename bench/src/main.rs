//! `cortex-bench`: the benchmark (README, Benchmarks). `cortex-bench run [--quick]` is
//! the driver: it starts a fresh `redis-server` and the release relay for each
//! scenario, spawns this same program as the load processes (`publish`, `watch`,
//! `consume`, `poll`), and prints and writes the results. `cargo xtask bench` builds
//! everything and runs it.

mod driver;
mod load;
mod wire;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "cortex-bench",
    about = "Cortex Relay benchmark: latency, throughput, fan-out, connections, polling"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scenarios and report (the driver).
    Run(driver::RunArgs),
    /// Load: XADD tasks to Redis at a rate.
    #[command(hide = true)]
    Publish(load::publish::PublishArgs),
    /// Load: WebSocket watchers.
    #[command(hide = true)]
    Watch(load::watch::WatchArgs),
    /// Load: WebSocket consumers that ack every task.
    #[command(hide = true)]
    Consume(load::consume::ConsumeArgs),
    /// Load: HTTP pollers of the replay endpoint.
    #[command(hide = true)]
    Poll(load::poll::PollArgs),
    /// Load: short consume connections at a steady rate (the soak's churn).
    #[command(hide = true)]
    Churn(load::churn::ChurnArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => match driver::run(args) {
            Ok(true) => return ExitCode::SUCCESS,
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Publish(args) => on_tokio(load::publish::run(args)),
        Command::Watch(args) => on_tokio(load::watch::run(args)),
        Command::Consume(args) => on_tokio(load::consume::run(args)),
        Command::Poll(args) => on_tokio(load::poll::run(args)),
        Command::Churn(args) => on_tokio(load::churn::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cortex-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a load on a multi-threaded tokio runtime (one worker per core).
fn on_tokio(load: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(load)
}
