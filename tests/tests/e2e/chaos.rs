//! Chaos: agents consuming through the relay, acking each task after its
//! work, while a publisher writes a few hundred tasks a second (a quarter of them for
//! every agent), and meanwhile, one after another: the relay killed with SIGKILL and
//! restarted on its port, consumer sockets reset mid-stream, Redis restarted, Redis
//! killed with SIGKILL (append-only file fsynced on every write, so what Redis
//! acknowledged survives), and Redis's client connections dropped (`CLIENT KILL TYPE
//! normal`) three times while a task is in flight.
//!
//! What it proves, afterwards: every task the publisher was told was written was acked
//! by every agent it was for (or its ack was sent when the connection broke, and it is
//! no longer pending); nothing is pending or unread in any agent's group; the DLQ is
//! empty; no task reached an agent it was not for; every delivery is counted: no two
//! deliveries of a task to an agent carry the same `delivery_count` (except for tasks in
//! flight when the relay was killed, which a consumer back under its name cannot tell
//! from tasks read and never sent: those are counted apart), and duplicates are counted
//! and printed; a task in flight across three `CLIENT KILL`s is counted by Redis as
//! delivered once.
//!
//! `cargo test -p cortex-e2e --test e2e chaos::` runs the bounded run (about a minute). The
//! soak: `cargo test -p cortex-e2e --test e2e chaos:: -- --ignored` runs the faults in a loop
//! for 10 minutes (`CORTEX_CHAOS_SECS=<s>` for another length), sampling the relay's
//! resident memory (VmRSS) every 5 s, and fails if the median of the last tenth of the
//! run is more than 10 % above the median of the tenth after a warm-up of a fifth. The
//! relay is killed once, before the warm-up, so that one process is measured throughout.
//! `CORTEX_CHAOS_SEED=<n>` repeats a run's choices of targets and priorities.

use cortex_agent::{AgentError, Delivery, Publisher, RelayConsumer, TaskRequest};
use cortex_e2e::fixtures::{self, DLQ};
use cortex_e2e::proxy::Proxy;
use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use cortex_shared::{ErrorCode, Priority};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// Tasks published per second.
const RATE: u64 = 300;
/// The agents; pink and blue have two consumers each. amber also takes the long task
/// held across the `CLIENT KILL`s.
const AGENTS: [&str; 4] = ["pink", "blue", "green", "amber"];
/// Consumers: agent, name, and whether it connects through the proxy whose sockets are
/// reset.
const CONSUMERS: [(&str, &str, bool); 6] = [
    ("pink", "pink-a", false),
    ("pink", "pink-b", true),
    ("blue", "blue-1", true),
    ("blue", "blue-2", false),
    ("green", "green-1", false),
    ("amber", "amber-1", false),
];
/// Acks between one fault's recovery and the next fault.
const STEP: usize = 4_000;
/// Acks after a fault that show delivery flows again.
const FLOWING: usize = 50;
/// The relay's visibility timeout: longer than the long task is held.
const VISIBILITY_MS: &str = "10000";
/// How long recovering, or finishing the work, may take.
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_published_task_is_acked_by_every_agent_through_faults() {
    // A minute of load and faults: no other heavy or timing test alongside
    // (`cortex_e2e::machine`).
    let _alone = cortex_e2e::machine::heavy().await;
    let mut run = Chaos::start().await;
    run.warm_up().await;
    run.relay_killed().await;
    run.progress(STEP).await;
    run.sockets_reset().await;
    run.progress(STEP).await;
    run.redis_restarted().await;
    run.progress(STEP).await;
    run.redis_killed().await;
    run.progress(STEP).await;
    run.clients_killed().await;
    run.progress(STEP).await;
    let failures = run.finish().await;
    assert!(failures.is_empty(), "chaos found: {failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a 10-minute soak: cargo test -p cortex-e2e --test e2e chaos:: -- --ignored"]
async fn a_soak_under_faults_keeps_the_relays_memory_flat() {
    // Ten minutes of load and faults: no other heavy or timing test alongside
    // (`cortex_e2e::machine`).
    let _alone = cortex_e2e::machine::heavy().await;
    let length = Duration::from_secs(
        std::env::var("CORTEX_CHAOS_SECS")
            .map(|s| s.parse().expect("CORTEX_CHAOS_SECS is a number of seconds"))
            .unwrap_or(600),
    );
    let mut run = Chaos::start().await;
    run.warm_up().await;
    // Once, before the measurement: from here on one relay process is measured.
    run.relay_killed().await;
    run.progress(STEP).await;
    let pid = run.relay.pid();
    let started = Instant::now();
    let samples: Arc<Mutex<Vec<(Duration, u64)>>> = Arc::default();
    let sampler = {
        let samples = samples.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                let rss = cortex_e2e::process::rss_kib(pid);
                samples.lock().unwrap().push((started.elapsed(), rss));
            }
        })
    };
    let mut cycles = 0;
    while started.elapsed() < length {
        run.sockets_reset().await;
        run.progress(STEP).await;
        run.redis_restarted().await;
        run.progress(STEP).await;
        run.redis_killed().await;
        run.progress(STEP).await;
        run.clients_killed().await;
        run.progress(STEP).await;
        cycles += 1;
    }
    sampler.abort();
    let mut failures = run.finish().await;

    let samples = samples.lock().unwrap().clone();
    let window = |from: Duration, to: Duration| -> Vec<u64> {
        let mut kib: Vec<u64> = samples
            .iter()
            .filter(|(at, _)| *at >= from && *at < to)
            .map(|(_, kib)| *kib)
            .collect();
        kib.sort_unstable();
        kib
    };
    let end = samples
        .last()
        .map_or(length, |(at, _)| *at + Duration::from_millis(1));
    let (warm, tenth) = (length / 5, length / 10);
    let first = window(warm, warm + tenth);
    let last = window(end.saturating_sub(tenth), end);
    for minute in 0..=end.as_secs() / 60 {
        let kib = window(
            Duration::from_secs(minute * 60),
            Duration::from_secs(minute * 60 + 60),
        );
        if let (Some(lo), Some(hi)) = (kib.first(), kib.last()) {
            eprintln!(
                "soak minute {minute}: relay RSS {lo}..{hi} KiB ({} samples)",
                kib.len()
            );
        }
    }
    assert!(
        !first.is_empty() && !last.is_empty(),
        "too few RSS samples: {samples:?}"
    );
    let (first, last) = (first[first.len() / 2], last[last.len() / 2]);
    eprintln!(
        "soak: {cycles} fault cycles in {:?}; relay RSS median {first} KiB after warm-up, \
         {last} KiB at the end ({:+.1} %)",
        started.elapsed(),
        (last as f64 / first as f64 - 1.0) * 100.0
    );
    if last as f64 > first as f64 * 1.10 {
        failures.push(format!(
            "the relay's memory grew: median RSS {first} KiB after warm-up, {last} KiB at the end"
        ));
    }
    assert!(failures.is_empty(), "chaos soak found: {failures:#?}");
}

/// Who a task is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    One(&'static str),
    All,
}

impl Target {
    fn agents(self) -> Vec<&'static str> {
        match self {
            Target::One(agent) => vec![agent],
            Target::All => AGENTS.to_vec(),
        }
    }
}

/// How an ack ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acked {
    /// The relay said `acked`.
    Yes,
    /// The connection broke (or a new one did not know the delivery): the ack may or
    /// may not have been recorded; if not, the task is delivered again.
    Unknown,
}

/// What one agent's consumers saw.
#[derive(Debug, Default)]
struct AgentTally {
    /// Per task id: the `delivery_count` of each delivery seen.
    seen: HashMap<String, Vec<u64>>,
    acked: HashSet<String>,
    unknown: HashSet<String>,
    deliveries: usize,
    /// Deliveries of a task seen before.
    duplicates: usize,
    /// Deliveries whose `delivery_count` is above 1.
    redeliveries: usize,
    max_count: u64,
    /// Deliveries with a `delivery_count` an earlier delivery of the task had, of tasks
    /// written before the relay was killed: the one redelivery it cannot count (a
    /// consumer back under its name cannot tell a task in flight when the relay died
    /// from one read and never sent).
    uncounted_after_relay_kill: usize,
    /// Deliveries with a `delivery_count` an earlier delivery of the task had, of any
    /// other task: a delivery not counted.
    uncounted: Vec<String>,
}

/// Everything the run saw; checked at the end.
#[derive(Debug, Default)]
struct Ledger {
    /// Tasks the publisher was told were written, and who they are for.
    published: HashMap<String, Target>,
    /// (agent, task id) published and not yet acked by that agent.
    outstanding: HashSet<(&'static str, String)>,
    publish_failures: usize,
    agents: BTreeMap<&'static str, AgentTally>,
    /// Acks answered `acked`, in all.
    acks: usize,
    /// Ack failures by kind (`redis_unavailable` is retried on the same connection).
    ack_errors: BTreeMap<String, usize>,
    /// Tasks delivered to an agent they are not for.
    misdelivered: Vec<String>,
    /// The long task amber holds: its entry (stream, id) once delivered.
    held: Option<(String, String)>,
    /// When the relay was last killed (unix ms; 0: not yet): tasks written before may
    /// have been in flight then.
    relay_killed_ms: u64,
}

impl Ledger {
    fn published(&mut self, id: String, target: Target) {
        for agent in target.agents() {
            let tally = self.agents.entry(agent).or_default();
            if !tally.acked.contains(&id) && !tally.unknown.contains(&id) {
                self.outstanding.insert((agent, id.clone()));
            }
        }
        self.published.insert(id, target);
    }

    fn delivered(&mut self, agent: &'static str, delivery: &Delivery) {
        let id = &delivery.task.id;
        if !delivery.task.is_for(agent) {
            self.misdelivered
                .push(format!("{id} for {:?} went to {agent}", delivery.task.to));
        }
        let tally = self.agents.entry(agent).or_default();
        tally.deliveries += 1;
        tally.max_count = tally.max_count.max(delivery.delivery_count);
        if delivery.delivery_count > 1 {
            tally.redeliveries += 1;
        }
        // Every delivery is counted, so no two of one task to one agent carry the same
        // count (compared as sets: the order they are seen in is not the order they
        // were sent in, once consumers buffer and reconnect).
        let counts = tally.seen.entry(id.clone()).or_default();
        if !counts.is_empty() {
            tally.duplicates += 1;
            if counts.contains(&delivery.delivery_count) {
                let written_ms = delivery
                    .entry_id
                    .split('-')
                    .next()
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .unwrap_or(u64::MAX);
                if written_ms <= self.relay_killed_ms {
                    tally.uncounted_after_relay_kill += 1;
                } else {
                    tally.uncounted.push(format!(
                        "{id} ({} {}): delivery_count {} again, after {counts:?}",
                        delivery.stream, delivery.entry_id, delivery.delivery_count
                    ));
                }
            }
        }
        counts.push(delivery.delivery_count);
    }

    fn acked(&mut self, agent: &'static str, id: &str, how: Acked) {
        let tally = self.agents.entry(agent).or_default();
        match how {
            Acked::Yes => {
                tally.acked.insert(id.to_owned());
                self.acks += 1;
            }
            Acked::Unknown => {
                tally.unknown.insert(id.to_owned());
            }
        }
        self.outstanding.remove(&(agent, id.to_owned()));
    }
}

/// The ledger, and a signal each time it changes.
#[derive(Default)]
struct Shared {
    ledger: Mutex<Ledger>,
    changed: Notify,
}

impl Shared {
    fn update<R>(&self, change: impl FnOnce(&mut Ledger) -> R) -> R {
        let result = change(&mut self.ledger.lock().unwrap());
        self.changed.notify_waiters();
        result
    }

    fn read<R>(&self, look: impl FnOnce(&Ledger) -> R) -> R {
        look(&self.ledger.lock().unwrap())
    }

    /// Waits up to `timeout` until `done` holds; whether it did.
    async fn wait(&self, timeout: Duration, done: impl Fn(&Ledger) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            if self.read(&done) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.read(&done);
            }
        }
    }
}

/// One run: Redis, the relay, the proxy, the consumers and the publisher.
struct Chaos {
    redis: RedisServer,
    relay: Relay,
    proxy: Proxy,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    publisher: Publisher,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Bumped to let amber finish the long task it holds.
    release: watch::Sender<u64>,
    /// Each fault and how long until acks flowed again.
    faults: Vec<(String, Duration)>,
    failures: Vec<String>,
    started: Instant,
}

impl Chaos {
    async fn start() -> Self {
        let seed = std::env::var("CORTEX_CHAOS_SEED")
            .map(|s| s.parse().expect("CORTEX_CHAOS_SEED is a u64"))
            .unwrap_or_else(|_| fastrand::u64(..));
        eprintln!("chaos seed {seed}: repeat with CORTEX_CHAOS_SEED={seed}");
        // fsync on this machine's disk takes 1 to 90 ms; in memory the run measures the
        // relay. Only processes are killed, so what Redis wrote survives either way.
        let shm = std::path::Path::new("/dev/shm");
        let redis = if shm.is_dir() {
            RedisServer::start_durable_in(shm)
        } else {
            RedisServer::start_durable()
        };
        let relay = Relay::start_with(
            &redis.url(),
            "127.0.0.1:0",
            &["--visibility-timeout-ms", VISIBILITY_MS],
        );
        let proxy = Proxy::start(relay.addr()).await;
        let shared = Arc::new(Shared::default());
        let (release, released) = watch::channel(0);
        let mut tasks = Vec::new();
        for (agent, name, proxied) in CONSUMERS {
            let url = if proxied {
                format!("ws://{}/ws", proxy.addr())
            } else {
                relay.ws_url()
            };
            let consumer = RelayConsumer::connect(&url, agent, name).await.unwrap();
            let hold = (agent == "amber").then(|| released.clone());
            tasks.push(tokio::spawn(consume(agent, consumer, shared.clone(), hold)));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = Publisher::connect(&redis.url()).await.unwrap();
        tasks.push(tokio::spawn(publish(
            publisher.clone(),
            shared.clone(),
            stop.clone(),
            seed,
        )));
        Self {
            redis,
            relay,
            proxy,
            shared,
            stop,
            publisher,
            tasks,
            release,
            faults: Vec::new(),
            failures: Vec::new(),
            started: Instant::now(),
        }
    }

    async fn warm_up(&mut self) {
        self.progress(STEP).await;
    }

    /// Waits until `n` more acks were answered; how long that took.
    async fn progress(&mut self, n: usize) -> Duration {
        let from = self.shared.read(|l| l.acks);
        let started = Instant::now();
        if !self.shared.wait(WAIT, |l| l.acks >= from + n).await {
            let (acks, outstanding) = self.shared.read(|l| (l.acks, l.outstanding.len()));
            panic!(
                "delivery stalled after {:?}: {} of {n} acks in {WAIT:?} ({outstanding} \
                 outstanding; faults so far: {:?})",
                self.started.elapsed(),
                acks - from,
                self.faults
            );
        }
        started.elapsed()
    }

    /// Records a fault that just ended: the time until acks flowed again.
    async fn recovered(&mut self, fault: &str, since: Instant) {
        self.progress(FLOWING).await;
        let took = since.elapsed();
        eprintln!("chaos: {fault}: acks flowing again {took:?} after it");
        self.faults.push((fault.to_owned(), took));
    }

    async fn relay_killed(&mut self) {
        let at = Instant::now();
        // SIGKILL, then the same binary on the same address.
        tokio::task::block_in_place(|| self.relay.restart());
        // (Once it is back: a task written while no relay ran was in flight on none.)
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        self.shared.update(|l| l.relay_killed_ms = now);
        self.recovered("relay SIGKILL and restart", at).await;
    }

    async fn sockets_reset(&mut self) {
        let at = Instant::now();
        let reset = self.proxy.abort_all();
        assert!(reset >= 2, "only {reset} consumer sockets to reset");
        self.recovered(&format!("{reset} consumer sockets reset"), at)
            .await;
    }

    /// Checks, while Redis is down, that the relay stays up and says it is not ready.
    async fn relay_not_ready(&mut self) {
        let (status, body) = cortex_e2e::http::get(self.relay.addr(), "/readyz").await;
        if status != 503 || !body.contains("redis_unavailable") {
            self.failures
                .push(format!("/readyz with Redis down: {status} {body}"));
        }
        let (status, _) = cortex_e2e::http::get(self.relay.addr(), "/healthz").await;
        if status != 200 {
            self.failures
                .push(format!("/healthz with Redis down: {status}"));
        }
    }

    async fn redis_restarted(&mut self) {
        let at = Instant::now();
        tokio::task::block_in_place(|| self.redis.shutdown());
        self.relay_not_ready().await;
        tokio::task::block_in_place(|| self.redis.restart());
        self.recovered("Redis restart (SIGTERM)", at).await;
    }

    async fn redis_killed(&mut self) {
        let at = Instant::now();
        tokio::task::block_in_place(|| self.redis.kill());
        self.relay_not_ready().await;
        tokio::task::block_in_place(|| self.redis.restart());
        self.recovered("Redis SIGKILL and restart", at).await;
    }

    /// Three `CLIENT KILL TYPE normal`, each once delivery flows again, while amber
    /// holds a task it was delivered once: Redis must still count one delivery.
    async fn clients_killed(&mut self) {
        let request = TaskRequest::new("amber", Priority::Normal, "long");
        let sent = self.publisher.publish("chaos", request).await.unwrap();
        self.shared
            .update(|l| l.published(sent.task_id.clone(), Target::One("amber")));
        if !self.shared.wait(WAIT, |l| l.held.is_some()).await {
            panic!("amber never got its long task {}", sent.task_id);
        }
        let (stream, entry_id) = self.shared.update(|l| l.held.take().unwrap());
        let at = Instant::now();
        let mut killed = Vec::new();
        for _ in 0..3 {
            killed.push(self.redis.kill_clients().await);
            self.progress(FLOWING).await;
        }
        let took = at.elapsed();
        eprintln!("chaos: CLIENT KILL TYPE normal ×3 ({killed:?} connections): flowing again, {took:?} in all");
        self.faults
            .push((format!("CLIENT KILL ×3 ({killed:?} connections)"), took));
        let mut conn = self.redis.connection().await;
        let counted = fixtures::times_delivered(&mut conn, &stream, "agent:amber", &entry_id).await;
        if counted != Some(1) {
            // A defect found by fuzzing (README, "Failure behaviour"): each reconnect re-read the consumer's pending
            // entries with XREADGROUP … 0, which Redis counts as a delivery.
            self.failures.push(format!(
                "a task delivered once and held across three CLIENT KILLs is counted as \
                 delivered {counted:?} times (defect 3)"
            ));
        }
        self.release.send_modify(|n| *n += 1);
    }

    /// Stops publishing, waits for every task to be acked and every group to be
    /// drained, and checks the DLQ and the duplicates; what went wrong.
    async fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        let publishing = self.started.elapsed();
        let backlog = self.shared.read(|l| l.outstanding.len());
        let done = self.shared.wait(WAIT, |l| l.outstanding.is_empty()).await;
        eprintln!(
            "chaos: publishing stopped after {publishing:?} with {backlog} deliveries \
             outstanding, done {:?} later",
            self.started.elapsed() - publishing
        );
        if !done {
            let missing: Vec<String> = self.shared.read(|l| {
                l.outstanding
                    .iter()
                    .take(10)
                    .map(|(agent, id)| {
                        let seen = l.agents.get(agent).and_then(|t| t.seen.get(id));
                        format!("{agent}: {id} (delivered with counts {seen:?})")
                    })
                    .collect()
            });
            let n = self.shared.read(|l| l.outstanding.len());
            self.failures
                .push(format!("{n} published tasks never acked, e.g. {missing:?}"));
        }
        // Entries whose write was not confirmed to the publisher may exist too; they
        // are delivered and acked like the rest: every group drains.
        let mut conn = self.redis.connection().await;
        let drained = cortex_e2e::eventually(WAIT, || {
            let mut conn = conn.clone();
            async move {
                let groups = fixtures::task_groups(&mut conn).await;
                let done = groups.iter().all(|g| g.pending == 0 && !g.behind);
                done.then_some(groups)
            }
        })
        .await;
        if drained.is_none() {
            let groups = fixtures::task_groups(&mut conn).await;
            let busy: Vec<_> = groups
                .iter()
                .filter(|g| g.pending != 0 || g.behind)
                .collect();
            self.failures.push(format!("groups not drained: {busy:?}"));
        }
        let letters = fixtures::xrange(&mut conn, DLQ).await;
        if !letters.is_empty() {
            let errors: Vec<_> = letters
                .iter()
                .take(5)
                .map(|(id, f)| {
                    format!(
                        "{id} {}: {}",
                        fixtures::field(f, "original_id").unwrap_or("?"),
                        fixtures::field(f, "error").unwrap_or("?")
                    )
                })
                .collect();
            // A defect found by fuzzing (README, "Failure behaviour") dead-letters tasks after reconnects ("not acked after
            // N deliveries") though they were delivered fewer times.
            self.failures.push(format!(
                "{} letters in the DLQ, e.g. {errors:?}",
                letters.len()
            ));
        }
        for task in &self.tasks {
            task.abort();
        }
        self.shared.read(|l| {
            let published = l.published.len();
            let broadcast = l.published.values().filter(|t| **t == Target::All).count();
            let elapsed = publishing;
            // Writes Redis made but whose reply was lost with the connection: the
            // publisher was told they failed, and agents got them all the same.
            let unconfirmed: HashSet<&String> = l
                .agents
                .values()
                .flat_map(|t| t.seen.keys())
                .filter(|id| !l.published.contains_key(*id))
                .collect();
            eprintln!(
                "chaos: {published} tasks published ({broadcast} for every agent) in \
                 {elapsed:?} ({:.0}/s), {} publishes failed ({} of them written all the \
                 same, and delivered); faults: {:?}",
                published as f64 / elapsed.as_secs_f64(),
                l.publish_failures,
                unconfirmed.len(),
                self.faults
            );
            for (agent, t) in &l.agents {
                eprintln!(
                    "chaos: {agent}: {} deliveries of {} tasks, {} duplicates ({} of them \
                     in flight when the relay was killed, again with the same \
                     delivery_count), {} \
                     redeliveries (delivery_count > 1, at most {}), {} acked, {} acks \
                     unanswered",
                    t.deliveries,
                    t.seen.len(),
                    t.duplicates,
                    t.uncounted_after_relay_kill,
                    t.redeliveries,
                    t.max_count,
                    t.acked.len(),
                    t.unknown.difference(&t.acked).count()
                );
            }
            eprintln!("chaos: ack errors {:?}", l.ack_errors);
            for (agent, t) in &l.agents {
                if !t.uncounted.is_empty() {
                    self.failures.push(format!(
                        "{agent}: {} deliveries not counted (a delivery_count seen before, \
                         of a task written after the relay's SIGKILL), e.g. {:?}",
                        t.uncounted.len(),
                        &t.uncounted[..t.uncounted.len().min(5)]
                    ));
                }
            }
            if !l.misdelivered.is_empty() {
                self.failures.push(format!(
                    "tasks delivered to the wrong agent: {:?}",
                    l.misdelivered
                ));
            }
        });
        self.failures
    }
}

/// Publishes at [`RATE`] until `stop`: a quarter of the tasks for every agent, the rest
/// for one, at random priorities. Only tasks whose write Redis confirmed are recorded.
/// Writes overlap (each waits for Redis's fsync), a few dozen at most.
async fn publish(publisher: Publisher, shared: Arc<Shared>, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut every = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(64));
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        every.tick().await;
        let target = match rng.u8(0..20) {
            0..=4 => Target::All,
            5..=11 => Target::One("pink"),
            12..=14 => Target::One("blue"),
            15..=17 => Target::One("green"),
            _ => Target::One("amber"),
        };
        let to = match target {
            Target::All => "",
            Target::One(agent) => agent,
        };
        let request = TaskRequest::new(to, Priority::ALL[rng.usize(..4)], "chaos")
            .with_payload(serde_json::json!({ "n": n }).as_object().unwrap().clone());
        n += 1;
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let (publisher, shared) = (publisher.clone(), shared.clone());
        tokio::spawn(async move {
            match publisher.publish("chaos", request).await {
                Ok(sent) => shared.update(|l| l.published(sent.task_id, target)),
                Err(_) => shared.update(|l| l.publish_failures += 1),
            }
            drop(permit);
        });
    }
}

/// One consumer: each task is worked on, then acked. With `hold`, a task of type
/// `long` is held (not acked) until `hold` changes.
async fn consume(
    agent: &'static str,
    mut consumer: RelayConsumer,
    shared: Arc<Shared>,
    mut hold: Option<watch::Receiver<u64>>,
) {
    let mut held: Vec<Delivery> = Vec::new();
    let holds = hold.is_some();
    loop {
        let released = async {
            match hold.as_mut() {
                Some(hold) => hold.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            delivery = consumer.next() => {
                let Some(delivery) = delivery else { return };
                shared.update(|l| l.delivered(agent, &delivery));
                if holds && delivery.task.task_type == "long" && delivery.delivery_count == 1 {
                    shared.update(|l| l.held = Some((delivery.stream.clone(), delivery.entry_id.clone())));
                    held.push(delivery);
                    continue;
                }
                // The work.
                tokio::task::yield_now().await;
                let how = ack(&consumer, &delivery, &shared).await;
                shared.update(|l| l.acked(agent, &delivery.task.id, how));
            }
            true = released => {
                for delivery in std::mem::take(&mut held) {
                    let how = ack(&consumer, &delivery, &shared).await;
                    shared.update(|l| l.acked(agent, &delivery.task.id, how));
                }
            }
        }
    }
}

/// Acks `delivery` as a careful agent does: when Redis is away the task stays in flight
/// on this connection, so the ack is sent again a little later; when the connection
/// broke, the outcome is unknown (the task comes back if the ack was not recorded).
async fn ack(consumer: &RelayConsumer, delivery: &Delivery, shared: &Shared) -> Acked {
    for attempt in 0..20u64 {
        let error = match consumer.ack(delivery).await {
            Ok(()) => return Acked::Yes,
            Err(e) => e,
        };
        let kind = match &error {
            AgentError::Refused { code, .. } => code.as_str().to_owned(),
            AgentError::ConnectionLost => "connection_lost".to_owned(),
            other => other.to_string(),
        };
        shared.update(|l| *l.ack_errors.entry(kind).or_default() += 1);
        match error {
            AgentError::Refused {
                code: ErrorCode::RedisUnavailable,
                ..
            } => tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await,
            _ => return Acked::Unknown,
        }
    }
    Acked::Unknown
}
