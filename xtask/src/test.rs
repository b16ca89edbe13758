//! `cargo xtask test`: format check, dashboard, clippy, relay build, every test, then
//! the quick benchmark.

use std::time::Instant;

use anyhow::Result;

use crate::bench;
use crate::cmd::{run, say, step};
use crate::setup::Tools;
use crate::web;

/// Runs the checks in order and stops at the first failure, naming the step.
///
/// `--workspace` is passed everywhere: the workspace's `default-members` leave out `web`.
pub(crate) fn run_all(
    tools: &Tools,
    skip_lint: bool,
    test_args: &[String],
    start: Instant,
) -> Result<()> {
    if !skip_lint {
        step("fmt", || {
            run(tools.cargo().args(["fmt", "--all", "--", "--check"]))
        })?;
    }
    let dist = step("dashboard", || web::build_dashboard(tools))?;
    if !skip_lint {
        step("clippy", || {
            run(tools.cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]))
        })?;
    }
    // With the dashboard inside: the tests check that the binary serves it alone.
    step("build relay", || {
        run(tools.cargo().args([
            "build",
            "-p",
            "cortex-relay",
            "--features",
            "embed-dashboard",
        ]))
    })?;
    let relay_bin = tools.host_target_dir().join("debug/cortex-relay");
    // Every test binary runs even after one fails, so one run shows every failure.
    step("test", || {
        run(tools
            .cargo()
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(test_args)
            .env("CORTEX_RELAY_BIN", &relay_bin)
            .env("CORTEX_DASHBOARD_DIR", &dist)
            .env("CHROMEDRIVER", &tools.chromedriver)
            .env("CHROMIUM", &tools.chromium))
    })?;
    // Last: lost tasks or errors under load fail the run (times never do). On the
    // debug build just made, so the test run needs no release build. A run filtered
    // to some tests skips it.
    if test_args.is_empty() {
        bench::run_bench(tools, true, bench::Build::Debug)?;
    } else {
        say!("bench --quick skipped: tests were filtered");
    }
    say!(
        "total {:.1}s, all steps passed",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
