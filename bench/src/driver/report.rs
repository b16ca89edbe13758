//! The results: the machine they ran on, one table row per run, the targets of
//! the README's Benchmarks targets met or missed, and the JSON written under the output directory.

use super::scenario::{Env, Mode, Outcome};
use super::{thousands, Ran};
use anyhow::Result;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What the numbers ran on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// `nproc`.
    pub(crate) cpus: usize,
    /// `model name` in `/proc/cpuinfo`.
    pub(crate) cpu_model: String,
    /// `MemTotal` in `/proc/meminfo`, MiB.
    pub(crate) memory_mib: u64,
    /// The kernel release.
    pub(crate) kernel: String,
    /// `redis-server --version`.
    pub(crate) redis: String,
}

impl Machine {
    /// Reads it from `/proc` and the tools.
    pub(crate) fn read(env: &Env) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let redis = std::process::Command::new(&env.redis_bin)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| {
                s.split_whitespace()
                    .find(|w| w.starts_with("v="))
                    .map(str::to_owned)
            })
            .map(|v| v.trim_start_matches("v=").to_owned())
            .unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
                .unwrap_or_default(),
            memory_mib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map_or(0, |kib| kib / 1024),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            redis,
        }
    }

    /// One line for the output and the README.
    pub(crate) fn line(&self) -> String {
        format!(
            "machine: {} CPUs ({}), {:.1} GiB memory, Linux {}, Redis {}",
            self.cpus,
            self.cpu_model,
            self.memory_mib as f64 / 1024.0,
            self.kernel,
            self.redis
        )
    }
}

/// A target of the README's Benchmarks section, and how the run did against it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Target {
    /// What is promised.
    pub(crate) target: String,
    /// What was measured, or why it could not be.
    pub(crate) measured: String,
    /// Met, missed, or `None` when the run did not measure it.
    pub(crate) met: Option<bool>,
}

/// Everything one `cortex-bench run` produced.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    machine: Machine,
    quick: bool,
    /// Unix seconds at the end of the run.
    finished_at: u64,
    runs: Vec<RunRow>,
    targets: Vec<Target>,
    /// Informational ratios (polling against WebSocket).
    comparisons: Vec<String>,
    /// The Markdown table, as printed.
    table: String,
}

#[derive(Debug, Serialize)]
struct RunRow {
    group: &'static str,
    counts: bool,
    kept_up: bool,
    #[serde(flatten)]
    outcome: Outcome,
}

impl Report {
    /// The report of `ran` on `machine`.
    pub(crate) fn new(machine: Machine, quick: bool, ran: Vec<Ran>) -> Self {
        let runs: Vec<RunRow> = ran
            .into_iter()
            .map(|r| RunRow {
                group: r.group,
                counts: r.counts,
                kept_up: r.outcome.kept_up(),
                outcome: r.outcome,
            })
            .collect();
        let mut report = Self {
            machine,
            quick,
            finished_at: crate::wire::now_us() / 1_000_000,
            runs,
            targets: Vec::new(),
            comparisons: Vec::new(),
            table: String::new(),
        };
        report.targets = report.evaluate();
        report.comparisons = report.compare();
        report.table = report.table();
        report
    }

    fn find(&self, group: &str, name_start: &str) -> Option<&RunRow> {
        self.runs
            .iter()
            .find(|r| r.group == group && r.outcome.spec.name.starts_with(name_start))
    }

    /// The highest-rate run of `group` that kept up.
    fn best(&self, group: &str) -> Option<&RunRow> {
        self.runs
            .iter()
            .filter(|r| r.group == group && r.kept_up)
            .max_by(|a, b| a.outcome.spec.rate.total_cmp(&b.outcome.spec.rate))
    }

    fn evaluate(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let latency = |name: &str, pick: fn(&Outcome) -> f64, what: &str, limit: f64| {
            let target = format!("watch {what} ≤ {limit} ms at {name}");
            match self.find("latency", &format!("watch {name}")) {
                Some(r) if r.outcome.latency.count > 0 => {
                    let v = pick(&r.outcome);
                    Target {
                        target,
                        measured: format!("{v:.2} ms"),
                        met: Some(v <= limit && r.outcome.clean()),
                    }
                }
                _ => Target {
                    target,
                    measured: "not run".into(),
                    met: None,
                },
            }
        };
        targets.push(latency("1,000/s", |o| o.latency.p50_ms, "p50", 1.0));
        targets.push(latency("1,000/s", |o| o.latency.p99_ms, "p99", 3.0));
        targets.push(latency("10,000/s", |o| o.latency.p99_ms, "p99", 10.0));

        let throughput = "≥ 30,000 tasks/s consumed and acked, none lost".to_owned();
        targets.push(match self.best("throughput") {
            Some(r) => Target {
                target: throughput,
                measured: format!(
                    "{}/s sustained ({} clients, {}/s measured)",
                    thousands(r.outcome.spec.rate),
                    r.outcome.spec.clients,
                    thousands(r.outcome.per_sec)
                ),
                met: Some(r.outcome.spec.rate >= 30_000.0),
            },
            None => Target {
                target: throughput,
                measured: self.ran_but_failed("throughput"),
                met: self
                    .runs
                    .iter()
                    .any(|r| r.group == "throughput")
                    .then_some(false),
            },
        });

        let fanout = "≥ 100,000 frames/s fan-out to 1,000 watchers".to_owned();
        targets.push(match self.best("fanout") {
            Some(r) => {
                let frames = r.outcome.spec.rate * r.outcome.connections as f64;
                Target {
                    target: fanout,
                    measured: format!(
                        "{} frames/s sustained ({} watchers x {}/s)",
                        thousands(frames),
                        thousands(r.outcome.connections as f64),
                        thousands(r.outcome.spec.rate)
                    ),
                    met: Some(frames >= 100_000.0 && r.outcome.connections >= 1_000),
                }
            }
            None => Target {
                target: fanout,
                measured: self.ran_but_failed("fanout"),
                met: self
                    .runs
                    .iter()
                    .any(|r| r.group == "fanout")
                    .then_some(false),
            },
        });

        let idle = "10,000 idle connections at ≤ 16 KiB each".to_owned();
        targets.push(match self.runs.iter().find(|r| r.group == "connections") {
            Some(r) => {
                let per = r.outcome.rss_per_connection_kib();
                Target {
                    target: idle,
                    measured: format!(
                        "{} held, {per:.1} KiB each (RSS {} → {} MiB)",
                        thousands(r.outcome.connections as f64),
                        r.outcome.rss_start_kib / 1024,
                        r.outcome.rss_connected_kib / 1024
                    ),
                    met: Some(per <= 16.0 && r.outcome.connections >= 10_000),
                }
            }
            None => Target {
                target: idle,
                measured: "not run".into(),
                met: None,
            },
        });
        targets
    }

    fn ran_but_failed(&self, group: &str) -> String {
        match self.runs.iter().find(|r| r.group == group) {
            Some(r) => format!(
                "no step kept up; first step {}/s: {}/s, {} lost, {} errors",
                thousands(r.outcome.spec.rate),
                thousands(r.outcome.per_sec),
                r.outcome.lost,
                r.outcome.errors
            ),
            None => "not run".into(),
        }
    }

    fn compare(&self) -> Vec<String> {
        let Some(watch) = self.find("latency", "watch") else {
            return Vec::new();
        };
        self.runs
            .iter()
            .filter(|r| matches!(r.outcome.spec.mode, Mode::Poll { .. }))
            .filter(|r| r.outcome.latency.count > 0 && watch.outcome.latency.p50_ms > 0.0)
            .map(|poll| {
                let (p, w) = (&poll.outcome.latency, &watch.outcome.latency);
                format!(
                    "{}: p50 {:.1} ms vs WebSocket {:.2} ms ({}): {:.0}x slower at the median, \
                     {:.0}x at p99; mean {:.0}x",
                    poll.outcome.spec.name,
                    p.p50_ms,
                    w.p50_ms,
                    watch.outcome.spec.name,
                    p.p50_ms / w.p50_ms,
                    p.p99_ms / w.p99_ms.max(1e-3),
                    p.mean_ms / w.mean_ms.max(1e-3)
                )
            })
            .collect()
    }

    /// The runs as a Markdown table.
    pub(crate) fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "| scenario | clients | tasks/s | tasks | lost | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | delivered/s | relay CPU | notes |"
        );
        let _ = writeln!(
            t,
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"
        );
        for r in &self.runs {
            let o = &r.outcome;
            let row = |t: &mut String, name: &str, l: &crate::wire::Summary, notes: &str| {
                let _ = writeln!(
                    t,
                    "| {name} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.0}% | {notes} |",
                    thousands(o.connections as f64),
                    thousands(o.spec.rate),
                    thousands(o.published as f64),
                    o.lost,
                    o.errors,
                    l.p50_ms,
                    l.p90_ms,
                    l.p99_ms,
                    l.p999_ms,
                    l.max_ms,
                    thousands(o.per_sec),
                    100.0 * o.relay_cpu_secs / o.wall_secs.max(1e-3),
                );
            };
            let notes = notes(r);
            match (&o.spec.mode, &o.ack_latency) {
                (Mode::Consume, Some(ack)) => {
                    row(
                        &mut t,
                        &format!("{} (delivered)", o.spec.name),
                        &o.latency,
                        &notes,
                    );
                    row(&mut t, &format!("{} (acked)", o.spec.name), ack, "");
                }
                _ => row(&mut t, &o.spec.name, &o.latency, &notes),
            }
        }
        t
    }

    /// The targets as a Markdown table, and the polling comparisons under it.
    pub(crate) fn targets_table(&self) -> String {
        let mut t = String::new();
        if self.quick {
            let _ = writeln!(
                t,
                "(quick run: small sizes, so these are not the targets' conditions)\n"
            );
        }
        let _ = writeln!(t, "| target | measured | |");
        let _ = writeln!(t, "|---|---|---|");
        for target in &self.targets {
            let verdict = match target.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not run",
            };
            let _ = writeln!(t, "| {} | {} | {verdict} |", target.target, target.measured);
        }
        for line in &self.comparisons {
            let _ = writeln!(t, "\n{line}");
        }
        t
    }

    /// Why the run fails: lost tasks or errors in a counted run.
    pub(crate) fn failures(&self) -> Vec<String> {
        let soaks = self.runs.iter().filter_map(|r| {
            let why = r.outcome.soak.as_ref()?.not_flat();
            (!why.is_empty())
                .then(|| format!("{}: not flat: {}", r.outcome.spec.name, why.join("; ")))
        });
        let soaks: Vec<String> = soaks.collect();
        self.runs
            .iter()
            .filter(|r| r.counts)
            .filter_map(|r| {
                let o = &r.outcome;
                let unpublished = o.spec.count().saturating_sub(o.published);
                let pending = o.pending_in_redis.unwrap_or(0);
                (o.lost + o.errors + o.duplicates + unpublished + pending > 0).then(|| {
                    format!(
                        "{}: {} lost, {} errors, {} duplicates, {} not published, {} pending in Redis",
                        o.spec.name, o.lost, o.errors, o.duplicates, unpublished, pending
                    )
                })
            })
            .chain(soaks)
            .collect()
    }

    /// Writes `latest.json` (or `latest-quick.json`), a copy named by the time, and the
    /// tables as `latest.md`; returns the JSON's path.
    pub(crate) fn write(&self, out: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(out)?;
        let stem = if self.quick { "latest-quick" } else { "latest" };
        let json = serde_json::to_string_pretty(self)?;
        let latest = out.join(format!("{stem}.json"));
        std::fs::write(&latest, &json)?;
        let kind = if self.quick { "quick" } else { "full" };
        std::fs::write(out.join(format!("{kind}-{}.json", self.finished_at)), &json)?;
        let markdown = format!(
            "{}\n\n{}\n{}",
            self.machine.line(),
            self.table,
            self.targets_table()
        );
        std::fs::write(out.join(format!("{stem}.md")), markdown)?;
        Ok(latest)
    }
}

/// Steal time over a scenario worth a note in the table: a tenth of a CPU-second.
const STEAL_WORTH_NOTING_SECS: f64 = 0.1;

fn notes(r: &RunRow) -> String {
    let o = &r.outcome;
    let mut notes = Vec::new();
    if matches!(r.group, "throughput" | "fanout") {
        notes.push(if r.kept_up { "kept up" } else { "fell behind" }.to_owned());
    }
    if r.group == "fanout" {
        notes.push(format!("{} frames/s", thousands(o.per_sec)));
    }
    if r.group == "connections" {
        notes.push(format!(
            "RSS +{:.1} KiB/conn idle",
            o.rss_per_connection_kib()
        ));
    }
    if let Mode::Poll { .. } = o.spec.mode {
        notes.push(format!("{} requests", thousands(o.requests as f64)));
    }
    if o.duplicates > 0 {
        notes.push(format!("{} duplicates", o.duplicates));
    }
    if o.publisher_behind_ms > 50.0 {
        notes.push(format!("publisher {:.0} ms behind", o.publisher_behind_ms));
    }
    if !r.counts {
        notes.push("exploratory step".into());
    }
    if o.steal_cpu_secs >= STEAL_WORTH_NOTING_SECS {
        notes.push(format!("VM steal {:.1} CPU-s", o.steal_cpu_secs));
    }
    if o.background_cpu_pct > 10.0 {
        notes.push(format!(
            "machine {:.0}% busy with other work before the run",
            o.background_cpu_pct
        ));
    }
    notes.join("; ")
}

/// One line for the progress output.
pub(crate) fn one_line(o: &Outcome) -> String {
    let l = &o.latency;
    let mut line = format!(
        "{} up, {} published, {} lost, {} errors; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {}/s over {:.2} s; relay {:.1} CPU-s, redis {:.1} CPU-s, RSS {} → {} → {} MiB",
        o.connections,
        o.published,
        o.lost,
        o.errors,
        l.p50_ms,
        l.p99_ms,
        l.max_ms,
        thousands(o.per_sec),
        o.completion_secs,
        o.relay_cpu_secs,
        o.redis_cpu_secs,
        o.rss_start_kib / 1024,
        o.rss_connected_kib / 1024,
        o.rss_end_kib / 1024
    );
    let _ = write!(
        line,
        "; load {:.1} CPU-s; machine {:.1} CPU-s busy, {:.1} of it VM steal; {:.0}% busy before",
        o.load_cpu_secs, o.machine_cpu_secs, o.steal_cpu_secs, o.background_cpu_pct
    );
    if let Some(ack) = &o.ack_latency {
        let _ = write!(
            line,
            "; acked p50 {:.2} ms, p99 {:.2} ms; relay {:.1} µs CPU per task",
            ack.p50_ms,
            ack.p99_ms,
            o.relay_cpu_secs * 1e6 / o.acked.max(1) as f64
        );
    }
    if o.spec.mode == Mode::Consume && o.published > 0 {
        let per_task: Vec<String> = o
            .redis_calls
            .iter()
            .filter(|(name, _)| name.starts_with('x') || *name == "evalsha")
            .map(|(name, (calls, _))| format!("{name} {:.2}", *calls as f64 / o.published as f64))
            .collect();
        let _ = write!(line, "; redis calls per task: {}", per_task.join(", "));
        // Time in commands as Redis measures it: steady for the same work, whatever else
        // the machine does (a script's time includes the commands it ran).
        let usec: Vec<String> = o
            .redis_calls
            .iter()
            .filter(|(_, (_, usec))| *usec as f64 / o.published as f64 >= 0.05)
            .map(|(name, (_, usec))| format!("{name} {:.2}", *usec as f64 / o.published as f64))
            .collect();
        let _ = write!(line, "; redis µs per task: {}", usec.join(", "));
    }
    if let Some(soak) = &o.soak {
        let last = soak.samples.last();
        let _ = write!(
            line,
            "; soak after the warm-up: relay RSS {} → max {} KiB ({:+.1}%), Redis {} → max {} KiB ({:+.1}%), consumers per group max {} (last {}), stream len last {}, {} churn connections, {} samples",
            soak.rss_base_kib,
            soak.rss_max_kib,
            soak.rss_growth_pct(),
            soak.redis_base_kib,
            soak.redis_max_kib,
            soak.redis_growth_pct(),
            soak.consumers_max,
            last.map_or(0, |s| s.consumers_per_group),
            last.map_or(0, |s| s.stream_len),
            soak.churn_connections,
            soak.samples.len()
        );
    }
    if let Some(instructions) = o.relay_instructions {
        let _ = write!(
            line,
            "; relay {} instructions, {} per task",
            thousands(instructions as f64),
            thousands(instructions as f64 / o.published.max(1) as f64)
        );
    }
    line
}
