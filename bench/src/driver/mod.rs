//! `cortex-bench run`: the scenarios of the README's Benchmarks section, in order, each on a fresh
//! `redis-server` and relay; a table on stdout and JSON under the output directory.
//!
//! 1. Latency: watch and consume, 1,000 and 10,000 tasks/s, 100 clients.
//! 2. Throughput: consumers acking at rising rates until the relay falls behind; a
//!    backlog of 200,000 drained by 32 consumers (their top speed, latency aside); and
//!    fan-out to 1,000 watchers at rising rates.
//! 3. Connections: 10,000 watchers held (relay RSS per connection), then one task per
//!    second to each.
//! 4. Polling: the replay endpoint polled every 1 s and 100 ms at 1,000 tasks/s by 10
//!    clients, each reading every task.
//!
//! `--quick` runs each briefly with small sizes. The run fails (exit 1) on a lost task
//! or an error in any scenario that counts, never on a time: steps of a rising-rate
//! search past the first are exploration, shown but not counted.
//!
//! Parts of it: `--only throughput` runs one group, `--scenario "consume max 30,000"`
//! the scenarios whose name contains the text. `--callgrind` runs the consume path
//! once under `valgrind --tool=callgrind` (a backlog of `--callgrind-tasks` drained
//! by 32 consumers) and reports the relay's instructions per task: a number that
//! stays put on a machine shared with compilers, where tasks per second do not. Each
//! consume run also reports the relay's CPU per task and Redis's commands per task.
//! `--relay-arg FLAG` (repeatable) adds a flag to every relay started, e.g.
//! `--relay-arg=--lifecycle --relay-arg=off` to compare with the lifecycle record off.

pub(crate) mod procs;
mod report;
pub(crate) mod scenario;

use anyhow::{Context, Result};
use clap::Args;
use scenario::{Env, Mode, Outcome, Spec};
use std::path::PathBuf;

/// Options of `cortex-bench run`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RunArgs {
    /// Each scenario briefly, small sizes (CI).
    #[arg(long)]
    quick: bool,
    /// The relay binary (build it with `cargo build --release -p cortex-relay`).
    #[arg(long, default_value = "target/release/cortex-relay")]
    relay_bin: PathBuf,
    /// `redis-server` (default: found on `PATH`).
    #[arg(long)]
    redis_server: Option<PathBuf>,
    /// Where the JSON results and the logs go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Only these groups: latency, throughput, drain, fanout, connections, polling.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only the scenarios whose name contains this (repeatable), e.g.
    /// `--scenario "consume max 30,000"`. A rising-rate search still stops at the
    /// first of its selected steps not sustained.
    #[arg(long)]
    scenario: Vec<String>,
    /// Instead of the scenarios: one consume run (32 consumers of one agent, `--callgrind-tasks`
    /// tasks published at once, so the relay drains a backlog) with the relay under
    /// `valgrind --tool=callgrind`; reports the relay's instructions per task, counted
    /// from when the consumers are up to when every task is acked. Repeatable where
    /// timings are not (a shared, noisy machine).
    #[arg(long)]
    callgrind: bool,
    /// Tasks of the `--callgrind` run.
    #[arg(long, default_value_t = 5_000)]
    callgrind_tasks: u64,
    /// Tasks per second of the `--callgrind` run (default: all at once, a backlog). A
    /// rate the relay keeps up with under callgrind (a few hundred) measures the
    /// other regime: consumers waiting for tasks, small reads.
    #[arg(long)]
    callgrind_rate: Option<f64>,
    /// Before each scenario, wait up to this many seconds for other work on the
    /// machine to fall below 25% of its CPUs (default: 60, or 0 with `--quick`).
    #[arg(long)]
    wait_idle_secs: Option<u64>,
    /// Instead of the scenarios: the soak (opt-in, it is long): `--soak-secs` at
    /// `--soak-rate` tasks/s to 100 watchers with `--trim-maxlen` `--soak-maxlen`,
    /// while consume connections come and go (10 a second over 4 agents, each for
    /// half a second); relay RSS, Redis memory and consumers per group sampled every
    /// 5 s, and the run fails unless, after the warm-up (the streams filling to the
    /// cap, two trim rounds), relay RSS and Redis memory grow by at most 10% and
    /// consumers do not pile up.
    #[arg(long)]
    soak: bool,
    /// Seconds of the soak.
    #[arg(long, default_value_t = 600.0)]
    soak_secs: f64,
    /// Tasks per second of the soak.
    #[arg(long, default_value_t = 2_000.0)]
    soak_rate: f64,
    /// The soak relay's `--trim-maxlen`.
    #[arg(long, default_value_t = 100_000)]
    soak_maxlen: u64,
    /// A flag for the relay under test, added to every scenario's (repeatable; each
    /// word its own: `--relay-arg=--lifecycle --relay-arg=off`).
    #[arg(long = "relay-arg", allow_hyphen_values = true)]
    relay_args: Vec<String>,
}

/// One group of scenarios: a list run as it is, or a search over rising rates that
/// stops at the first step the relay does not keep up with.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// `latency`, `throughput`, `fanout`, `connections` or `polling`.
    pub(crate) name: &'static str,
    /// The runs, in order.
    pub(crate) specs: Vec<Spec>,
    /// Whether this is a rising-rate search.
    pub(crate) ramp: bool,
}

/// A run's results.
#[derive(Debug, Clone)]
pub(crate) struct Ran {
    /// Which group.
    pub(crate) group: &'static str,
    /// What it measured.
    pub(crate) outcome: Outcome,
    /// Whether its losses and errors fail the benchmark.
    pub(crate) counts: bool,
}

/// Runs the benchmark; `Ok(false)` when a counted scenario lost tasks or had errors.
pub(crate) fn run(args: RunArgs) -> Result<bool> {
    let redis_bin = match &args.redis_server {
        Some(path) => path.clone(),
        None => procs::which("redis-server").context(
            "redis-server not found on PATH; install it with: apt-get install -y redis-server",
        )?,
    };
    anyhow::ensure!(
        args.relay_bin.is_file(),
        "{} not found: build it with `cargo build --release -p cortex-relay`",
        args.relay_bin.display()
    );
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs)?;
    let env = Env {
        relay_bin: args.relay_bin.clone(),
        redis_bin,
        bench_bin: std::env::current_exe()?,
        logs,
    };
    let machine = report::Machine::read(&env);
    println!("{}", machine.line());
    println!(
        "relay {}; load processes: {}",
        env.relay_bin.display(),
        env.bench_bin.display()
    );
    let wait_idle = std::time::Duration::from_secs(args.wait_idle_secs.unwrap_or(if args.quick {
        0
    } else {
        60
    }));
    let mut ran = Vec::new();
    let mut groups = if args.callgrind {
        callgrind_plan(&args, &env)
    } else if args.soak {
        soak_plan(args.soak_secs, args.soak_rate, args.soak_maxlen)
    } else {
        plan(args.quick)
    };
    for spec in groups.iter_mut().flat_map(|g| g.specs.iter_mut()) {
        spec.relay_flags.extend(args.relay_args.iter().cloned());
    }
    for group in groups {
        if !args.only.is_empty() && !args.only.iter().any(|o| o == group.name) {
            continue;
        }
        let selected = group.specs.iter().filter(|spec| {
            args.scenario.is_empty() || args.scenario.iter().any(|s| spec.name.contains(s))
        });
        for (step, spec) in selected.enumerate() {
            println!(
                "== {} / {}: {} clients, {} tasks/s for {} s; relay flags: {}",
                group.name,
                spec.name,
                spec.clients,
                spec.rate,
                spec.secs,
                if spec.relay_flags.is_empty() {
                    "(defaults)".to_owned()
                } else {
                    spec.relay_flags.join(" ")
                }
            );
            wait_for_idle(wait_idle);
            let outcome =
                scenario::run(spec, &env).with_context(|| format!("scenario {}", spec.name))?;
            println!("   {}", report::one_line(&outcome));
            for sample in &outcome.error_samples {
                println!("   error: {sample}");
            }
            let kept_up = outcome.kept_up();
            ran.push(Ran {
                group: group.name,
                outcome,
                counts: !group.ramp || step == 0,
            });
            if group.ramp && !kept_up {
                break;
            }
        }
    }
    let summary = report::Report::new(machine, args.quick, ran);
    println!();
    println!("{}", summary.table());
    println!("{}", summary.targets_table());
    let written = summary.write(&args.out)?;
    println!("results: {}", written.display());
    let failures = summary.failures();
    for failure in &failures {
        println!("FAILED: {failure}");
    }
    Ok(failures.is_empty())
}

/// Waits up to `limit` for the machine's other work to fall below 25% of its CPUs
/// (other sessions' builds skew every number), saying so when it has to wait.
fn wait_for_idle(limit: std::time::Duration) {
    let start = std::time::Instant::now();
    let mut said = false;
    while start.elapsed() < limit {
        let busy = procs::machine_busy_pct(std::time::Duration::from_millis(500));
        if busy < 25.0 {
            return;
        }
        if !said {
            println!(
                "   (the machine is {busy:.0}% busy with other work; waiting up to {limit:?})"
            );
            said = true;
        }
    }
}

/// Common relay flags: the rate limit out of the way of a load that sends one ack per
/// task on a few connections.
fn many_frames() -> Vec<String> {
    vec!["--max-frames-per-second".into(), "1000000".into()]
}

fn spec(name: &str, mode: Mode, clients: u64, agents: u64, rate: f64, secs: f64) -> Spec {
    Spec {
        name: name.to_owned(),
        mode,
        clients,
        agents,
        rate,
        secs,
        drain_secs: 5.0,
        processes: 1,
        relay_flags: Vec::new(),
        relay_wrapper: Vec::new(),
        soak: None,
    }
}

/// The `--callgrind` run: a backlog of `--callgrind-tasks` tasks drained by 32
/// consumers (the throughput scenario's shape) from a relay under callgrind, which is
/// some 50 times slower, hence the generous drain time.
fn callgrind_plan(args: &RunArgs, env: &Env) -> Vec<Group> {
    let out = env.logs.join("callgrind.relay.out");
    let tasks = args.callgrind_tasks as f64;
    // By default all at once: the publisher is done long before the relay.
    let rate = args.callgrind_rate.unwrap_or(tasks).max(1.0);
    let spec = Spec {
        drain_secs: 600.0,
        relay_flags: many_frames(),
        relay_wrapper: vec![
            "valgrind".into(),
            "--tool=callgrind".into(),
            format!("--callgrind-out-file={}", out.display()),
        ],
        ..spec(
            &match args.callgrind_rate {
                None => format!("consume backlog {} (callgrind)", thousands(tasks)),
                Some(rate) => format!(
                    "consume {} at {}/s (callgrind)",
                    thousands(tasks),
                    thousands(rate)
                ),
            },
            Mode::Consume,
            32,
            1,
            rate,
            tasks / rate,
        )
    };
    vec![Group {
        name: "callgrind",
        specs: vec![spec],
        ramp: false,
    }]
}

/// The soak: `secs` at `rate` tasks/s to 100 watchers of 100 agents, with
/// `--trim-maxlen maxlen`, and consume connections churning beside it (see
/// [`scenario::Soak`]). Its warm-up: the stream filling to the cap, then two trim
/// rounds (10 s each) and a margin.
fn soak_plan(secs: f64, rate: f64, maxlen: u64) -> Vec<Group> {
    let warmup_secs = maxlen as f64 / rate.max(1.0) + 25.0;
    let spec = Spec {
        drain_secs: 10.0,
        relay_flags: vec!["--trim-maxlen".into(), maxlen.to_string()],
        soak: Some(scenario::Soak {
            sample_secs: 5.0,
            warmup_secs,
            churn_agents: 4,
            churn_per_sec: 10.0,
            churn_hold_ms: 500,
        }),
        ..spec(
            &format!(
                "soak {} s, {}/s, trim {}, churn 10 conns/s",
                thousands(secs),
                thousands(rate),
                thousands(maxlen as f64)
            ),
            Mode::Watch,
            100,
            100,
            rate,
            secs,
        )
    };
    vec![Group {
        name: "soak",
        specs: vec![spec],
        ramp: false,
    }]
}

/// The scenarios, full or quick.
fn plan(quick: bool) -> Vec<Group> {
    if quick {
        return quick_plan();
    }
    let latency = vec![
        spec("watch 1,000/s", Mode::Watch, 100, 100, 1_000.0, 10.0),
        spec("watch 10,000/s", Mode::Watch, 100, 100, 10_000.0, 10.0),
        spec("consume 1,000/s", Mode::Consume, 100, 1, 1_000.0, 10.0),
        spec("consume 10,000/s", Mode::Consume, 100, 1, 10_000.0, 10.0),
    ];
    let throughput = [
        5_000.0, 10_000.0, 15_000.0, 20_000.0, 25_000.0, 30_000.0, 35_000.0, 40_000.0, 50_000.0,
    ]
    .iter()
    .map(|&rate| Spec {
        drain_secs: 20.0,
        relay_flags: many_frames(),
        ..spec(
            &format!("consume max {}/s", thousands(rate)),
            Mode::Consume,
            32,
            1,
            rate,
            5.0,
        )
    })
    .collect();
    // The consumers' top speed, whatever the latency: a backlog of 200,000 tasks
    // published as fast as the publisher goes, drained by 32 consumers (acked per
    // second from the first publish to the last ack).
    let drain = vec![Spec {
        drain_secs: 60.0,
        relay_flags: many_frames(),
        ..spec(
            "consume backlog 200,000",
            Mode::Consume,
            32,
            1,
            200_000.0,
            1.0,
        )
    }];
    let fanout = [100.0, 150.0, 200.0, 300.0, 500.0]
        .iter()
        .map(|&rate| Spec {
            drain_secs: 10.0,
            ..spec(
                &format!("fan-out 1,000 x {}/s", thousands(rate)),
                Mode::Watch,
                1_000,
                1,
                rate,
                5.0,
            )
        })
        .collect();
    let connections = vec![Spec {
        relay_flags: vec!["--max-connections".into(), "20000".into()],
        ..spec(
            "10,000 conns x 1/s",
            Mode::Watch,
            10_000,
            10_000,
            10_000.0,
            10.0,
        )
    }];
    let polling = vec![
        spec(
            "poll 1 s, 1,000/s",
            Mode::Poll { interval_ms: 1_000 },
            10,
            1,
            1_000.0,
            10.0,
        ),
        spec(
            "poll 100 ms, 1,000/s",
            Mode::Poll { interval_ms: 100 },
            10,
            1,
            1_000.0,
            10.0,
        ),
    ];
    vec![
        Group {
            name: "latency",
            specs: latency,
            ramp: false,
        },
        Group {
            name: "throughput",
            specs: throughput,
            ramp: true,
        },
        Group {
            name: "drain",
            specs: drain,
            ramp: false,
        },
        Group {
            name: "fanout",
            specs: fanout,
            ramp: true,
        },
        Group {
            name: "connections",
            specs: connections,
            ramp: false,
        },
        Group {
            name: "polling",
            specs: polling,
            ramp: false,
        },
    ]
}

/// Each scenario for two or three seconds, at sizes a debug build on two shared cores
/// handles with room to spare.
fn quick_plan() -> Vec<Group> {
    let short = |mut s: Spec| {
        s.drain_secs = 5.0;
        s
    };
    vec![
        Group {
            name: "latency",
            specs: vec![
                short(spec("watch 1,000/s", Mode::Watch, 20, 20, 1_000.0, 2.0)),
                short(spec("consume 1,000/s", Mode::Consume, 20, 1, 1_000.0, 2.0)),
            ],
            ramp: false,
        },
        Group {
            name: "throughput",
            specs: vec![Spec {
                relay_flags: many_frames(),
                ..short(spec(
                    "consume max 3,000/s",
                    Mode::Consume,
                    8,
                    1,
                    3_000.0,
                    2.0,
                ))
            }],
            ramp: true,
        },
        Group {
            name: "fanout",
            specs: vec![short(spec(
                "fan-out 100 x 100/s",
                Mode::Watch,
                100,
                1,
                100.0,
                2.0,
            ))],
            ramp: true,
        },
        Group {
            name: "connections",
            specs: vec![short(spec(
                "500 conns x 1/s",
                Mode::Watch,
                500,
                500,
                500.0,
                2.0,
            ))],
            ramp: false,
        },
        Group {
            name: "polling",
            specs: vec![
                short(spec(
                    "poll 1 s, 200/s",
                    Mode::Poll { interval_ms: 1_000 },
                    10,
                    10,
                    200.0,
                    3.0,
                )),
                short(spec(
                    "poll 100 ms, 200/s",
                    Mode::Poll { interval_ms: 100 },
                    10,
                    10,
                    200.0,
                    3.0,
                )),
            ],
            ramp: false,
        },
    ]
}

/// `12345.0` → `12,345`.
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{}", value.round() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.4), "1,234,567");
    }

    #[test]
    fn every_scenario_publishes_and_stops() {
        let soak = soak_plan(600.0, 2_000.0, 100_000);
        assert!(
            plan(false)
                .iter()
                .chain(plan(true).iter())
                .all(|g| g.name != "soak"),
            "the soak is opt-in"
        );
        let warmup = soak[0].specs[0].soak.unwrap().warmup_secs;
        assert!((warmup - 75.0).abs() < 1e-9, "fill 50 s, then two rounds");
        for groups in [plan(true), plan(false), soak] {
            for group in groups {
                for spec in group.specs {
                    assert!(spec.count() > 0, "{}", spec.name);
                    assert!(spec.secs > 0.0 && spec.drain_secs > 0.0, "{}", spec.name);
                }
            }
        }
    }
}
