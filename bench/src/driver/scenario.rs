//! One scenario run: a fresh `redis-server` and relay, the receiving load processes
//! (watchers, consumers or pollers) up first, then the publisher; then every report
//! gathered, counted (each task received or acked once, none lost), and the relay's
//! memory and CPU read from `/proc`.

use super::procs::{cpu_secs, machine_busy_pct, rss_kib, MachineCpu, Proc, Redis, Relay};
use crate::load::churn::ChurnArgs;
use crate::load::consume::ConsumeArgs;
use crate::load::poll::PollArgs;
use crate::load::publish::PublishArgs;
use crate::load::watch::WatchArgs;
use crate::load::Plan;
use crate::wire::{Latency, LoadReport, Summary};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The p99 latency, ms, above which a rate counts as not sustained.
pub(crate) const KEPT_UP_P99_MS: f64 = 100.0;

/// Where the programs are, and where logs go.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    /// The release relay.
    pub(crate) relay_bin: PathBuf,
    /// `redis-server`.
    pub(crate) redis_bin: PathBuf,
    /// This program, spawned again as the load processes.
    pub(crate) bench_bin: PathBuf,
    /// The relay's and Redis's logs, one file per scenario.
    pub(crate) logs: PathBuf,
}

/// How the receivers take the tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    /// WebSocket watch subscriptions.
    Watch,
    /// WebSocket consumers of one agent, acking every task.
    Consume,
    /// HTTP polling of the replay endpoint every `interval_ms`.
    Poll {
        /// Milliseconds between polls.
        interval_ms: u64,
    },
}

/// What a scenario run does.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Spec {
    /// Shown in the table.
    pub(crate) name: String,
    /// How tasks are received.
    pub(crate) mode: Mode,
    /// Receiving connections (or pollers).
    pub(crate) clients: u64,
    /// Agents the tasks are spread over; watcher `i` watches agent `i % agents`.
    pub(crate) agents: u64,
    /// Tasks published per second.
    pub(crate) rate: f64,
    /// Seconds of publishing.
    pub(crate) secs: f64,
    /// Seconds the receivers may take after publishing ends.
    pub(crate) drain_secs: f64,
    /// Receiving processes the clients are split over (watch only).
    pub(crate) processes: u64,
    /// Flags given to the relay beyond `--listen` and `--redis-url`.
    pub(crate) relay_flags: Vec<String>,
    /// A program (and its arguments) the relay runs under: `valgrind --tool=callgrind
    /// --callgrind-out-file=F` makes the run count the relay's instructions.
    pub(crate) relay_wrapper: Vec<String>,
    /// A soak: samples taken through the run, and connection churn beside the load.
    pub(crate) soak: Option<Soak>,
}

/// What a soak adds to a scenario.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Soak {
    /// Seconds between samples.
    pub(crate) sample_secs: f64,
    /// Samples before this (seconds from the first publish) are not compared: the
    /// streams fill up to the cap and the trimmer starts.
    pub(crate) warmup_secs: f64,
    /// Agents the churn's consume connections join.
    pub(crate) churn_agents: u64,
    /// Consume connections opened per second.
    pub(crate) churn_per_sec: f64,
    /// How long each stays, ms.
    pub(crate) churn_hold_ms: u64,
}

impl Soak {
    /// Consume connections open at once, per agent, on average.
    pub(crate) fn open_per_agent(&self) -> f64 {
        self.churn_per_sec * self.churn_hold_ms as f64 / 1000.0 / self.churn_agents.max(1) as f64
    }
}

/// One soak sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct SoakSample {
    /// Seconds since the first publish.
    pub(crate) at_secs: f64,
    /// Relay RSS, KiB.
    pub(crate) relay_rss_kib: u64,
    /// Redis `used_memory`, KiB.
    pub(crate) redis_used_kib: u64,
    /// The most consumers any group of a task stream has.
    pub(crate) consumers_per_group: u64,
    /// Entries of the stream the tasks go to.
    pub(crate) stream_len: u64,
}

/// A soak's samples and whether they stayed flat.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SoakReport {
    /// Every sample, in order.
    pub(crate) samples: Vec<SoakSample>,
    /// Relay RSS at the first sample after the warm-up, KiB.
    pub(crate) rss_base_kib: u64,
    /// The most relay RSS after it, KiB.
    pub(crate) rss_max_kib: u64,
    /// Redis memory at the first sample after the warm-up, KiB.
    pub(crate) redis_base_kib: u64,
    /// The most Redis memory after it, KiB.
    pub(crate) redis_max_kib: u64,
    /// The most consumers per group after the warm-up.
    pub(crate) consumers_max: u64,
    /// The most consumers per group that flat allows: three times the connections
    /// open at once per agent, plus two.
    pub(crate) consumers_allowed: u64,
    /// Churn connections opened.
    pub(crate) churn_connections: u64,
}

/// How much a soak's memory may grow after the warm-up and still count as flat.
pub(crate) const SOAK_FLAT_PCT: f64 = 10.0;

impl SoakReport {
    /// `samples` judged against `soak`.
    pub(crate) fn of(samples: Vec<SoakSample>, soak: &Soak, churn_connections: u64) -> Self {
        let after: Vec<&SoakSample> = samples
            .iter()
            .filter(|s| s.at_secs >= soak.warmup_secs)
            .collect();
        let base = after.first().copied();
        Self {
            rss_base_kib: base.map_or(0, |s| s.relay_rss_kib),
            rss_max_kib: after.iter().map(|s| s.relay_rss_kib).max().unwrap_or(0),
            redis_base_kib: base.map_or(0, |s| s.redis_used_kib),
            redis_max_kib: after.iter().map(|s| s.redis_used_kib).max().unwrap_or(0),
            consumers_max: after
                .iter()
                .map(|s| s.consumers_per_group)
                .max()
                .unwrap_or(0),
            consumers_allowed: (soak.open_per_agent() * 3.0).ceil() as u64 + 2,
            churn_connections,
            samples,
        }
    }

    /// Growth of `max` over `base`, percent.
    pub(crate) fn growth_pct(base: u64, max: u64) -> f64 {
        (max as f64 - base as f64) / base.max(1) as f64 * 100.0
    }

    /// Relay RSS growth after the warm-up, percent.
    pub(crate) fn rss_growth_pct(&self) -> f64 {
        Self::growth_pct(self.rss_base_kib, self.rss_max_kib)
    }

    /// Redis memory growth after the warm-up, percent.
    pub(crate) fn redis_growth_pct(&self) -> f64 {
        Self::growth_pct(self.redis_base_kib, self.redis_max_kib)
    }

    /// Why it is not flat, if it is not: relay RSS or Redis memory grew by more than
    /// [`SOAK_FLAT_PCT`], consumers piled up, or no sample came after the warm-up.
    pub(crate) fn not_flat(&self) -> Vec<String> {
        let mut why = Vec::new();
        if self.rss_base_kib == 0 {
            why.push("no sample after the warm-up".to_owned());
            return why;
        }
        if self.rss_growth_pct() > SOAK_FLAT_PCT {
            why.push(format!(
                "relay RSS grew {:.1}% ({} → {} KiB)",
                self.rss_growth_pct(),
                self.rss_base_kib,
                self.rss_max_kib
            ));
        }
        if self.redis_growth_pct() > SOAK_FLAT_PCT {
            why.push(format!(
                "Redis memory grew {:.1}% ({} → {} KiB)",
                self.redis_growth_pct(),
                self.redis_base_kib,
                self.redis_max_kib
            ));
        }
        if self.consumers_max > self.consumers_allowed {
            why.push(format!(
                "{} consumers in a group (at most {} expected)",
                self.consumers_max, self.consumers_allowed
            ));
        }
        why
    }
}

impl Spec {
    /// Tasks published.
    pub(crate) fn count(&self) -> u64 {
        (self.rate * self.secs).round() as u64
    }
}

/// What a scenario run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Outcome {
    /// What was run.
    pub(crate) spec: Spec,
    /// Tasks the publisher got an entry id for.
    pub(crate) published: u64,
    /// Receiving connections that were up.
    pub(crate) connections: u64,
    /// Receipts (watch, poll: per connection) or acks (consume) expected.
    pub(crate) expected: u64,
    /// Distinct receipts.
    pub(crate) received: u64,
    /// Distinct tasks acked (consume).
    pub(crate) acked: u64,
    /// Expected and never received (watch, poll) or never acked (consume).
    pub(crate) lost: u64,
    /// Receipts of a task already received on the same connection (consume: anywhere).
    pub(crate) duplicates: u64,
    /// Errors of every kind: failed publishes, connections, error frames, closes.
    pub(crate) errors: u64,
    /// The first few errors.
    pub(crate) error_samples: Vec<String>,
    /// Publish to receipt.
    pub(crate) latency: Summary,
    /// Publish to the relay's `acked` (consume).
    pub(crate) ack_latency: Option<Summary>,
    /// First publish to last receipt (or ack), seconds.
    pub(crate) completion_secs: f64,
    /// Receipts (consume: acks) per second over [`Outcome::completion_secs`].
    pub(crate) per_sec: f64,
    /// Most the publisher fell behind its schedule, ms.
    pub(crate) publisher_behind_ms: f64,
    /// HTTP requests (poll).
    pub(crate) requests: u64,
    /// Relay RSS before any client connected, KiB.
    pub(crate) rss_start_kib: u64,
    /// Relay RSS with every client connected and subscribed, before any task, KiB.
    pub(crate) rss_connected_kib: u64,
    /// Relay RSS at the end, KiB.
    pub(crate) rss_end_kib: u64,
    /// Relay CPU seconds from the start of publishing to the end.
    pub(crate) relay_cpu_secs: f64,
    /// Instructions the relay ran over the same time (under callgrind only).
    pub(crate) relay_instructions: Option<u64>,
    /// Redis CPU seconds over the same time.
    pub(crate) redis_cpu_secs: f64,
    /// A soak's samples and verdict.
    pub(crate) soak: Option<SoakReport>,
    /// Entries still pending in the agent's consumer group at the end (consume).
    pub(crate) pending_in_redis: Option<u64>,
    /// Commands Redis ran over the whole scenario, by name (`INFO commandstats`): calls,
    /// and microseconds Redis spent in them (a script's includes the commands it ran,
    /// which are also counted under their own names).
    pub(crate) redis_calls: std::collections::BTreeMap<String, (u64, u64)>,
    /// Wall time of the publishing and receiving, seconds.
    pub(crate) wall_secs: f64,
    /// CPU seconds of the load processes (publisher and receivers, set-up included).
    pub(crate) load_cpu_secs: f64,
    /// The machine's busy CPU seconds over the publishing and receiving, everything
    /// included.
    pub(crate) machine_cpu_secs: f64,
    /// Of those, the VM's steal time: CPU the hypervisor gave to someone else while
    /// relay, Redis or load wanted it. Latency tails move with it.
    pub(crate) steal_cpu_secs: f64,
    /// How busy the machine was just before the scenario started (other work than the
    /// benchmark's), percent of all CPUs.
    pub(crate) background_cpu_pct: f64,
}

impl Outcome {
    /// Whether the relay kept up with the offered rate: everything delivered, nothing
    /// wrong, the last receipt within half a second of the last publish, and p99
    /// latency under [`KEPT_UP_P99_MS`] (a backlog that grows shows up as latency long
    /// before it shows up as a late finish).
    pub(crate) fn kept_up(&self) -> bool {
        self.clean()
            && self.completion_secs <= self.spec.secs + 0.5
            && self.latency.p99_ms <= KEPT_UP_P99_MS
    }

    /// No loss, no duplicates, no errors, every task published.
    pub(crate) fn clean(&self) -> bool {
        self.lost == 0
            && self.errors == 0
            && self.duplicates == 0
            && self.published == self.spec.count()
            && self.pending_in_redis.unwrap_or(0) == 0
    }

    /// Relay RSS added per connection held, KiB.
    pub(crate) fn rss_per_connection_kib(&self) -> f64 {
        self.rss_connected_kib.saturating_sub(self.rss_start_kib) as f64
            / self.connections.max(1) as f64
    }
}

/// Runs `spec` on fresh servers.
pub(crate) fn run(spec: &Spec, env: &Env) -> Result<Outcome> {
    let slug: String = spec
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let log = env.logs.join(format!("{slug}.log"));
    let _ = std::fs::remove_file(&log);
    let background_cpu_pct = machine_busy_pct(Duration::from_millis(500));
    let redis = Redis::start(&env.redis_bin, &log).context("start redis-server")?;
    let relay = Relay::start(
        &env.relay_bin,
        &spec.relay_wrapper,
        &redis.url(),
        &spec.relay_flags,
        &log,
    )
    .context("start the relay")?;
    let callgrind = callgrind_out(&spec.relay_wrapper);
    let rss_start_kib = rss_kib(relay.pid())?;

    let prefix = match spec.mode {
        Mode::Watch => "w",
        Mode::Consume => "c",
        Mode::Poll { .. } => "p",
    };
    let plan = Plan {
        count: spec.count(),
        agents: if spec.mode == Mode::Consume {
            1
        } else {
            spec.agents.max(1)
        },
        prefix: prefix.into(),
    };
    let run_secs = spec.secs + spec.drain_secs + 2.0;
    let mut receivers = Vec::new();
    match spec.mode {
        Mode::Watch => {
            let processes = spec.processes.clamp(1, spec.clients.max(1));
            let mut first = 0;
            for p in 0..processes {
                let n = spec.clients / processes + u64::from(p < spec.clients % processes);
                let args = WatchArgs::to_args(relay.addr(), first, n, run_secs, &plan);
                receivers.push(spawn_load(env, &format!("watch-{p}"), &args)?);
                first += n;
            }
        }
        Mode::Consume => {
            let args = ConsumeArgs::to_args(relay.addr(), spec.clients, run_secs, &plan);
            receivers.push(spawn_load(env, "consume", &args)?);
        }
        Mode::Poll { interval_ms } => {
            let args = PollArgs::to_args(relay.addr(), spec.clients, interval_ms, run_secs, &plan);
            receivers.push(spawn_load(env, "poll", &args)?);
        }
    }
    let ready_timeout = Duration::from_secs(30 + spec.clients / 100);
    for receiver in &mut receivers {
        receiver.ready(ready_timeout)?;
    }
    let rss_connected_kib = rss_kib(relay.pid())?;
    let relay_cpu0 = cpu_secs(relay.pid())?;
    let redis_cpu0 = cpu_secs(redis.pid())?;
    let machine_cpu0 = MachineCpu::now();
    if callgrind.is_some() {
        callgrind_control("-z", relay.pid())?;
    }

    let started = Instant::now();
    let mut publisher = spawn_load(
        env,
        "publish",
        &PublishArgs::to_args(&redis.url(), spec.rate, &plan),
    )?;
    let mut churn = match &spec.soak {
        Some(soak) => {
            let args = ChurnArgs::to_args(
                relay.addr(),
                soak.churn_agents,
                soak.churn_per_sec,
                soak.churn_hold_ms,
                spec.secs,
            );
            let mut churn = spawn_load(env, "churn", &args)?;
            churn.ready(ready_timeout)?;
            Some(churn)
        }
        None => None,
    };
    let sampler = spec.soak.map(|soak| {
        Sampler::start(
            soak.sample_secs,
            relay.pid(),
            redis.url(),
            cortex_shared::Priority::Normal.stream(),
        )
    });
    let publish_timeout = Duration::from_secs_f64(spec.secs * 3.0 + 30.0);
    let published = publisher.done(publish_timeout)?;
    let mut reports = Vec::new();
    for receiver in &mut receivers {
        reports.push(receiver.done(Duration::from_secs_f64(run_secs + 60.0))?);
    }
    let churned = match &mut churn {
        Some(churn) => Some(churn.done(Duration::from_secs_f64(spec.secs + 60.0))?),
        None => None,
    };
    let soak = match (sampler, &spec.soak) {
        (Some(sampler), Some(soak)) => Some(SoakReport::of(
            sampler.stop(),
            soak,
            churned.as_ref().map_or(0, |c| c.connections),
        )),
        _ => None,
    };
    if let Some(churned) = &churned {
        reports.push(LoadReport {
            errors: churned.errors.clone(),
            cpu_secs: churned.cpu_secs,
            ..LoadReport::default()
        });
    }
    let wall_secs = started.elapsed().as_secs_f64();
    let relay_instructions = match &callgrind {
        Some(out) => {
            callgrind_control("-d", relay.pid())?;
            Some(callgrind_total(out)?)
        }
        None => None,
    };
    let relay_cpu_secs = cpu_secs(relay.pid())? - relay_cpu0;
    let redis_cpu_secs = cpu_secs(redis.pid())? - redis_cpu0;
    let machine_cpu = MachineCpu::now().since(machine_cpu0);
    let rss_end_kib = rss_kib(relay.pid())?;
    let pending_in_redis = match spec.mode {
        Mode::Consume => Some(pending(&redis.url(), &plan.agent(0))?),
        _ => None,
    };
    let redis_calls = command_stats(&redis.url()).unwrap_or_default();
    drop(receivers);
    drop(relay);
    drop(redis);

    let mut outcome = Outcome {
        spec: spec.clone(),
        published: published.published,
        connections: 0,
        expected: 0,
        received: 0,
        acked: 0,
        lost: 0,
        duplicates: 0,
        errors: published.errors.count,
        error_samples: published.errors.samples.clone(),
        latency: Summary::default(),
        ack_latency: None,
        completion_secs: 0.0,
        per_sec: 0.0,
        publisher_behind_ms: published.max_behind_us as f64 / 1000.0,
        requests: 0,
        rss_start_kib,
        rss_connected_kib,
        rss_end_kib,
        relay_cpu_secs,
        relay_instructions,
        redis_cpu_secs,
        soak,
        pending_in_redis,
        redis_calls,
        wall_secs,
        load_cpu_secs: published.cpu_secs,
        machine_cpu_secs: machine_cpu.busy_secs,
        steal_cpu_secs: machine_cpu.steal_secs,
        background_cpu_pct,
    };
    merge(&mut outcome, &published, reports);
    Ok(outcome)
}

/// The `--callgrind-out-file` of a callgrind wrapper.
fn callgrind_out(wrapper: &[String]) -> Option<PathBuf> {
    wrapper
        .iter()
        .find_map(|a| a.strip_prefix("--callgrind-out-file="))
        .map(PathBuf::from)
}

/// `callgrind_control <action> <pid>` (`-z` zeroes the counters, `-d` dumps them).
fn callgrind_control(action: &str, pid: u32) -> Result<()> {
    let status = std::process::Command::new("callgrind_control")
        .arg(action)
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .context("run callgrind_control")?;
    anyhow::ensure!(
        status.success(),
        "callgrind_control {action} {pid}: {status}"
    );
    Ok(())
}

/// The instructions of the newest dump of `out` (`out.1`, `out.2`, …): its
/// `summary:` line.
fn callgrind_total(out: &std::path::Path) -> Result<u64> {
    let dir = out.parent().context("no directory")?;
    let name = out.file_name().context("no name")?.to_string_lossy();
    let newest = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let k = n
                .strip_prefix(&*name)?
                .strip_prefix('.')?
                .parse::<u64>()
                .ok()?;
            Some((k, e.path()))
        })
        .max_by_key(|(k, _)| *k)
        .context("no callgrind dump")?;
    std::fs::read_to_string(&newest.1)?
        .lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no summary line in the callgrind dump")
}

fn spawn_load(env: &Env, name: &str, args: &[String]) -> Result<Proc> {
    Proc::spawn(name, &env.bench_bin, args, &[], None)
}

/// Adds the receivers' reports to `outcome`.
fn merge(outcome: &mut Outcome, published: &LoadReport, reports: Vec<LoadReport>) {
    let mut latency = Latency::default();
    let mut ack_latency = Latency::default();
    let mut last_us = 0;
    for report in reports {
        outcome.connections += report.connections;
        outcome.expected += report.expected;
        outcome.received += report.received;
        outcome.acked += report.acked;
        outcome.duplicates += report.duplicates;
        outcome.requests += report.requests;
        outcome.load_cpu_secs += report.cpu_secs;
        outcome.errors += report.errors.count;
        for sample in report.errors.samples {
            if outcome.error_samples.len() < 8 {
                outcome.error_samples.push(sample);
            }
        }
        latency.merge(&Latency::from_pairs(&report.latency));
        ack_latency.merge(&Latency::from_pairs(&report.ack_latency));
        last_us = last_us.max(report.last_us);
    }
    outcome.latency = latency.summary();
    let delivered = if outcome.spec.mode == Mode::Consume {
        outcome.ack_latency = Some(ack_latency.summary());
        outcome.lost = outcome.expected.saturating_sub(outcome.acked);
        outcome.acked
    } else {
        outcome.lost = outcome.expected.saturating_sub(outcome.received);
        outcome.received
    };
    if last_us > published.first_us && published.first_us > 0 {
        outcome.completion_secs = (last_us - published.first_us) as f64 / 1e6;
        outcome.per_sec = delivered as f64 / outcome.completion_secs;
    }
}

/// Calls and microseconds per command since Redis started
/// (`cmdstat_xack:calls=12,usec=30,…` lines of `INFO commandstats`).
fn command_stats(redis_url: &str) -> Result<std::collections::BTreeMap<String, (u64, u64)>> {
    let mut conn = redis::Client::open(redis_url)?.get_connection()?;
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut conn)?;
    Ok(info
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let stat = |key: &str| -> Option<u64> {
                rest.split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            Some((name.to_owned(), (stat("calls")?, stat("usec")?)))
        })
        .collect())
}

/// Entries pending in `agent`'s group on the normal stream (XPENDING's summary).
fn pending(redis_url: &str, agent: &str) -> Result<u64> {
    let mut conn = redis::Client::open(redis_url)?.get_connection()?;
    let reply: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
        .arg(cortex_shared::Priority::Normal.stream())
        .arg(format!("agent:{agent}"))
        .query(&mut conn)?;
    Ok(reply.count() as u64)
}

/// Samples a soak every `every` on a thread of its own until stopped: the relay's RSS,
/// Redis's memory, the most consumers in a group, the task stream's length.
struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<SoakSample>>,
}

impl Sampler {
    fn start(every: f64, relay_pid: u32, redis_url: String, stream: &'static str) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let every = Duration::from_secs_f64(every);
            let mut samples = Vec::new();
            let mut conn = redis::Client::open(redis_url.as_str())
                .and_then(|c| c.get_connection())
                .ok();
            let mut n = 0u32;
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                // On a schedule: a sample every `every`, however long one takes.
                let due = started + every * n;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::park_timeout(wait);
                    if Instant::now() < due {
                        continue;
                    }
                }
                n += 1;
                let Some(conn) = conn.as_mut() else { break };
                samples.push(SoakSample {
                    at_secs: started.elapsed().as_secs_f64(),
                    relay_rss_kib: rss_kib(relay_pid).unwrap_or(0),
                    redis_used_kib: redis_used_kib(conn).unwrap_or(0),
                    consumers_per_group: consumers_per_group(conn).unwrap_or(0),
                    stream_len: redis::cmd("XLEN").arg(stream).query(conn).unwrap_or(0),
                });
            }
            samples
        });
        Self { stop, thread }
    }

    fn stop(self) -> Vec<SoakSample> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.thread().unpark();
        self.thread.join().unwrap_or_default()
    }
}

/// Redis's `used_memory` (`INFO memory`), KiB.
fn redis_used_kib(conn: &mut redis::Connection) -> Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query(conn)?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|bytes| bytes / 1024)
        .context("no used_memory in INFO memory")
}

/// The most consumers any group of a task stream has (`XINFO GROUPS`).
fn consumers_per_group(conn: &mut redis::Connection) -> Result<u64> {
    let mut most = 0;
    for priority in cortex_shared::Priority::ALL {
        let groups: Vec<std::collections::HashMap<String, redis::Value>> = match redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(priority.stream())
            .query(conn)
        {
            Ok(groups) => groups,
            Err(_) => continue,
        };
        for group in groups {
            if let Some(redis::Value::Int(n)) = group.get("consumers") {
                most = most.max(*n as u64);
            }
        }
    }
    Ok(most)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_secs: f64, rss: u64, redis: u64, consumers: u64) -> SoakSample {
        SoakSample {
            at_secs,
            relay_rss_kib: rss,
            redis_used_kib: redis,
            consumers_per_group: consumers,
            stream_len: 0,
        }
    }

    #[test]
    fn a_soak_is_flat_within_ten_percent_after_its_warm_up() {
        let soak = Soak {
            sample_secs: 5.0,
            warmup_secs: 10.0,
            churn_agents: 2,
            churn_per_sec: 4.0,
            churn_hold_ms: 500,
        };
        // One connection open per agent on average: up to 5 consumers allowed.
        let flat = SoakReport::of(
            vec![
                sample(0.0, 5_000, 1_000, 0),
                sample(10.0, 12_000, 30_000, 2),
                sample(15.0, 13_000, 32_000, 3),
                sample(20.0, 12_500, 31_000, 1),
            ],
            &soak,
            100,
        );
        assert_eq!(flat.not_flat(), Vec::<String>::new());
        assert_eq!((flat.rss_base_kib, flat.rss_max_kib), (12_000, 13_000));
        assert_eq!(flat.consumers_allowed, 5);
        let growing = SoakReport::of(
            vec![
                sample(10.0, 12_000, 30_000, 2),
                sample(20.0, 40_000, 34_000, 30),
            ],
            &soak,
            100,
        );
        let why = growing.not_flat();
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(why[0].starts_with("relay RSS grew 233.3%"), "{why:?}");
        let early = SoakReport::of(vec![sample(1.0, 1, 1, 0)], &soak, 0);
        assert_eq!(early.not_flat(), ["no sample after the warm-up"]);
    }
}
