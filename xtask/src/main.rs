//! `cargo xtask`: set-up and orchestration for Cortex Relay (`run`, `test`, `setup`, `web`,
//! `bench`).

mod bench;
mod cmd;
mod setup;
mod test;
mod web;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::cmd::{run, say, step};
use crate::setup::Tools;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Set up, build, run and test Cortex Relay"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Set up, build the dashboard and the relay (release), then run the relay.
    Run {
        /// Passed to cortex-relay after `--`, e.g. `-- --listen 0.0.0.0:8080`.
        #[arg(last = true)]
        relay_args: Vec<String>,
    },
    /// Set up, then fmt, dashboard, clippy, relay build and `cargo test --workspace`.
    Test {
        /// Skip `cargo fmt --check` and clippy.
        #[arg(long)]
        skip_lint: bool,
        /// Passed to `cargo test` after `--`, e.g. `-- dlq -- --nocapture`.
        #[arg(last = true)]
        test_args: Vec<String>,
    },
    /// Only check the tools and install what is missing.
    Setup,
    /// Set up, then build the dashboard into `dist/`.
    Web,
    /// Build the release relay and benchmark, then measure latency, throughput,
    /// fan-out, connections and polling; table on stdout, JSON in `target/bench/`.
    Bench {
        /// Each scenario briefly, small sizes; fails only on lost tasks or errors.
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            say!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: Cmd) -> Result<()> {
    let start = Instant::now();
    let root = workspace_root();
    let tools = step("setup", || setup::ensure(&root))?;
    match command {
        Cmd::Setup => Ok(()),
        Cmd::Web => step("dashboard", || web::build_dashboard(&tools)).map(|_| ()),
        Cmd::Test {
            skip_lint,
            test_args,
        } => test::run_all(&tools, skip_lint, &test_args, start),
        Cmd::Run { relay_args } => run_relay(&tools, &relay_args),
        Cmd::Bench { quick } => bench::run_bench(&tools, quick, bench::Build::Release),
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Builds everything in release mode, then replaces this process with the relay.
///
/// `exec` rather than spawn-and-wait: `cargo run` has already exec'd us, so the relay
/// ends up with the pid and the terminal the user started, and gets Ctrl-C and SIGTERM
/// directly; its exit code is the command's exit code.
fn run_relay(tools: &Tools, relay_args: &[String]) -> Result<()> {
    let dist = step("dashboard", || web::build_dashboard(tools))?;
    step("build relay", || {
        run(tools
            .cargo()
            .args(["build", "--release", "-p", "cortex-relay"])
            .args(["--features", "embed-dashboard"]))
    })?;
    let relay_bin = tools.host_target_dir().join("release/cortex-relay");
    say!("starting {} (Ctrl-C stops it)", relay_bin.display());
    let err = Command::new(&relay_bin)
        .arg("--dashboard-dir")
        .arg(&dist)
        .args(relay_args)
        .env("PATH", &tools.path)
        .exec();
    Err(err).with_context(|| format!("cannot start {}", relay_bin.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_after_double_dash_pass_through() {
        let cli = Cli::try_parse_from([
            "xtask",
            "test",
            "--skip-lint",
            "--",
            "dlq",
            "--",
            "--nocapture",
        ])
        .unwrap();
        let Cmd::Test {
            skip_lint,
            test_args,
        } = cli.command
        else {
            panic!("not the test command");
        };
        assert!(skip_lint);
        assert_eq!(test_args, ["dlq", "--", "--nocapture"]);

        let cli = Cli::try_parse_from(["xtask", "run", "--", "--listen", "0.0.0.0:8080"]).unwrap();
        let Cmd::Run { relay_args } = cli.command else {
            panic!("not the run command");
        };
        assert_eq!(relay_args, ["--listen", "0.0.0.0:8080"]);

        let cli = Cli::try_parse_from(["xtask", "bench", "--quick"]).unwrap();
        assert!(matches!(cli.command, Cmd::Bench { quick: true }));
    }
}
