//! `cortex`: the operator commands alone (publish, tail, heartbeat, dlq, replay), for
//! a machine that only operates the fleet. The same commands as
//! `cortex-relay <command>` (README, "Operator CLI"), without the server's flags.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "cortex",
    version,
    about = "Cortex Relay's operator commands: publish, tail, heartbeat, dlq, replay"
)]
struct Args {
    #[command(subcommand)]
    command: cortex_relay::cli::Command,
    /// The lifecycle record the commands on Redis write (`--lifecycle off`).
    #[command(flatten)]
    lifecycle: cortex_relay::config::LifecycleArgs,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // Exit 0 done, 1 failed, 2 refused (as `cortex-relay <command>`).
    std::process::exit(
        cortex_relay::cli::main(args.command, None, args.lifecycle.settings()).await,
    );
}
