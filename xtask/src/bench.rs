//! `cargo xtask bench [--quick]`: builds the relay and the benchmark, then runs
//! `cortex-bench run`, which starts a fresh redis-server and the relay per scenario,
//! drives load from separate processes, prints a table and writes JSON under
//! `target/bench/`.

use std::process::Command;

use anyhow::Result;

use crate::cmd::{run, step};
use crate::setup::Tools;

/// Which build the benchmark runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Build {
    /// `--release`: the numbers the README reports.
    Release,
    /// The debug build `cargo xtask test` has just made: no release build in the test
    /// run, and `--quick` only checks for lost tasks and errors anyway.
    Debug,
}

/// Builds the relay and `cortex-bench` (`build`), then runs every scenario (`quick`:
/// briefly, small sizes). Fails when a scenario lost tasks or had errors, never on a
/// time.
pub(crate) fn run_bench(tools: &Tools, quick: bool, build: Build) -> Result<()> {
    let (profile_flag, profile_dir): (&[&str], &str) = match build {
        Build::Release => (&["--release"], "release"),
        Build::Debug => (&[], "debug"),
    };
    // Two invocations, so each package keeps the features `cargo xtask run` and
    // `cargo xtask test` build it with, and nothing is rebuilt for the other.
    if build == Build::Release {
        step("build relay (release)", || {
            run(tools
                .cargo()
                .args(["build", "--release", "-p", "cortex-relay"]))
        })?;
    }
    step(&format!("build bench ({profile_dir})"), || {
        run(tools
            .cargo()
            .arg("build")
            .args(profile_flag)
            .args(["-p", "cortex-bench"]))
    })?;
    let target = tools.host_target_dir();
    let out = target.join("bench");
    let name = if quick { "bench --quick" } else { "bench" };
    step(name, || {
        let mut cmd = Command::new(target.join(profile_dir).join("cortex-bench"));
        cmd.current_dir(&tools.root)
            .env("PATH", &tools.path)
            .arg("run")
            .arg("--relay-bin")
            .arg(target.join(profile_dir).join("cortex-relay"))
            .arg("--out")
            .arg(&out);
        if quick {
            cmd.arg("--quick");
        }
        run(&mut cmd)
    })
}
