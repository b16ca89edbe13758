//! The relay's own numbers: counters, gauges, and latency distributions over a recent
//! window (HDR histograms). Recorded with atomics (and one short lock per latency
//! sample); read by the
//! HTTP API (`/api/v1/messaging/metrics`) and `/metrics` (Prometheus).

use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How old a latency sample may be and still count (to the nearest [`SLOT`]).
const WINDOW_AGE: Duration = Duration::from_secs(300);
/// A window is this many histograms of [`SLOT`] each; the oldest is dropped as time
/// moves on, so a window covers the last 4 to 5 minutes.
const SLOTS: u64 = 5;
const SLOT: Duration = Duration::from_secs(WINDOW_AGE.as_secs() / SLOTS);
/// Latencies are recorded in microseconds, from 1 µs to an hour (longer ones count as
/// an hour), to 3 significant digits.
const MAX_MICROS: u64 = 3_600_000_000;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Adds one; the returned guard subtracts it again when dropped.
    pub fn track(&self) -> GaugeGuard<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(self)
    }

    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Holds one unit of a [`Gauge`].
#[derive(Debug)]
pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Latencies over the last [`WINDOW_AGE`], in a ring of HDR histograms (one per
/// [`SLOT`]): recording is one short lock and a bucket increment, whatever the rate.
#[derive(Debug)]
pub struct LatencyWindow {
    origin: Instant,
    /// (slot number since `origin`, its histogram), oldest first, at most [`SLOTS`].
    slots: Mutex<VecDeque<(u64, Histogram<u64>)>>,
}

impl Default for LatencyWindow {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            slots: Mutex::default(),
        }
    }
}

/// Percentiles of a [`LatencyWindow`], in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Samples in the window.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl LatencyWindow {
    /// Records one latency.
    pub fn record(&self, latency: Duration) {
        self.record_at(Instant::now(), latency);
    }

    /// The percentiles of the samples in the window.
    pub fn percentiles(&self) -> Percentiles {
        self.percentiles_at(Instant::now())
    }

    fn slot(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs() / SLOT.as_secs()
    }

    fn record_at(&self, now: Instant, latency: Duration) {
        let slot = self.slot(now);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.back().is_none_or(|(n, _)| *n != slot) {
            if slots.len() == SLOTS as usize {
                slots.pop_front();
            }
            // Bounds that are valid by construction.
            let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("histogram bounds");
            slots.push_back((slot, histogram));
        }
        if let Some((_, histogram)) = slots.back_mut() {
            histogram.saturating_record(micros.max(1));
        }
    }

    fn percentiles_at(&self, now: Instant) -> Percentiles {
        let oldest = (self.slot(now) + 1).saturating_sub(SLOTS);
        let mut merged: Option<Histogram<u64>> = None;
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        for (_, histogram) in slots.iter().filter(|(n, _)| *n >= oldest) {
            match &mut merged {
                // Same bounds, so adding never fails.
                Some(all) => all.add(histogram).expect("same bounds"),
                None => merged = Some(histogram.clone()),
            }
        }
        drop(slots);
        let Some(all) = merged.filter(|h| !h.is_empty()) else {
            return Percentiles::default();
        };
        let ms = |micros: u64| micros as f64 / 1000.0;
        Percentiles {
            count: all.len() as usize,
            p50: ms(all.value_at_quantile(0.50)),
            p90: ms(all.value_at_quantile(0.90)),
            p99: ms(all.value_at_quantile(0.99)),
            max: ms(all.max()),
        }
    }
}

/// Everything the relay counts about itself.
#[derive(Debug, Default)]
pub struct Metrics {
    /// WebSocket connections open now.
    pub connections: Gauge,
    /// Client frames received.
    pub frames_in: Counter,
    /// Frames queued to clients.
    pub frames_out: Counter,
    /// Clients closed because they could not keep up.
    pub slow_client_disconnects: Counter,
    /// Times a reader or consumer lost Redis and connected again.
    pub redis_reconnects: Counter,
    /// Tasks delivered to consumers (redeliveries included).
    pub deliveries: Counter,
    /// Tasks acked by consumers.
    pub acks: Counter,
    /// Tasks nacked by consumers.
    pub nacks: Counter,
    /// Tasks the relay moved to the DLQ.
    pub dead_letters: Counter,
    /// From XADD (the entry id's time) to delivery to a consumer.
    pub publish_to_delivery: LatencyWindow,
    /// From delivery to the consumer's ack.
    pub delivery_to_ack: LatencyWindow,
    /// Outcomes and delivery-to-ack times per agent.
    pub agents: AgentMetrics,
}

impl Metrics {
    /// Counts one `outcome` of a task of `agent`'s.
    pub fn agent_outcome(&self, agent: &str, outcome: Outcome) {
        self.agents.outcome(agent, outcome, 1);
    }

    /// Counts tasks of `agent`'s acked `after` their deliveries (one sample each).
    pub fn agent_acked(&self, agent: &str, after: impl IntoIterator<Item = Duration>) {
        self.agents.acked(agent, after);
    }
}

/// What became of a delivered task, for `cortex_agent_tasks_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acked.
    Acked,
    /// Nacked, to be delivered again.
    Nacked,
    /// Written to the DLQ (out of deliveries, or malformed).
    DeadLettered,
}

impl Outcome {
    /// The label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Acked => "acked",
            Outcome::Nacked => "nacked",
            Outcome::DeadLettered => "dead_lettered",
        }
    }
}

/// Labels of a per-agent sample.
type AgentLabels = Vec<(&'static str, String)>;

/// Agents counted by name at most; the outcomes of agents past them are counted under
/// [`OTHER_AGENTS`] (a value no agent name can be).
pub const MAX_AGENTS: usize = 1000;

/// The `agent` label of the agents past [`MAX_AGENTS`].
pub const OTHER_AGENTS: &str = "~other";

/// Per-agent numbers for `/metrics`: `cortex_agent_tasks_total{agent,outcome}` and
/// `cortex_agent_delivery_to_ack_seconds{agent}` (a histogram), for at most
/// [`MAX_AGENTS`] agents by name. They live as long as the relay; each scrape registers
/// them (the families are shared handles).
#[derive(Debug)]
pub struct AgentMetrics {
    /// Tasks by agent and outcome.
    pub tasks: prometheus_client::metrics::family::Family<
        AgentLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    /// Delivery to ack, by agent.
    pub delivery_to_ack: prometheus_client::metrics::family::Family<
        AgentLabels,
        prometheus_client::metrics::histogram::Histogram,
        fn() -> prometheus_client::metrics::histogram::Histogram,
    >,
    /// The agents counted by name.
    known: std::sync::RwLock<std::collections::HashSet<String>>,
}

/// The delivery-to-ack buckets, in seconds: 1 ms to 5 min.
const ACK_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 60.0, 300.0,
];

fn ack_histogram() -> prometheus_client::metrics::histogram::Histogram {
    prometheus_client::metrics::histogram::Histogram::new(ACK_BUCKETS)
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self {
            tasks: Default::default(),
            delivery_to_ack: prometheus_client::metrics::family::Family::new_with_constructor(
                ack_histogram,
            ),
            known: Default::default(),
        }
    }
}

impl AgentMetrics {
    /// The `agent` label for `agent`: its name, or [`OTHER_AGENTS`] once
    /// [`MAX_AGENTS`] others are counted.
    fn label(&self, agent: &str) -> String {
        let known = self.known.read().unwrap_or_else(|e| e.into_inner());
        if known.contains(agent) {
            return agent.to_owned();
        }
        let full = known.len() >= MAX_AGENTS;
        drop(known);
        if full {
            return OTHER_AGENTS.to_owned();
        }
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX_AGENTS && !known.contains(agent) {
            return OTHER_AGENTS.to_owned();
        }
        known.insert(agent.to_owned());
        agent.to_owned()
    }

    /// Counts `n` tasks of `agent` with `outcome`.
    pub fn outcome(&self, agent: &str, outcome: Outcome, n: u64) {
        let labels = vec![
            ("agent", self.label(agent)),
            ("outcome", outcome.as_str().to_owned()),
        ];
        self.tasks.get_or_create(&labels).inc_by(n);
    }

    /// Counts tasks of `agent`'s acked `after` their deliveries (a batch: the labels
    /// are looked up once).
    pub fn acked(&self, agent: &str, after: impl IntoIterator<Item = Duration>) {
        let label = self.label(agent);
        let histogram = self
            .delivery_to_ack
            .get_or_create(&vec![("agent", label.clone())]);
        let mut n = 0;
        for after in after {
            histogram.observe(after.as_secs_f64());
            n += 1;
        }
        drop(histogram);
        if n > 0 {
            let labels = vec![
                ("agent", label),
                ("outcome", Outcome::Acked.as_str().to_owned()),
            ];
            self.tasks.get_or_create(&labels).inc_by(n);
        }
    }
}

/// Seconds since the unix epoch, now (the `created`, `time` and `dead_at` fields).
pub fn unix_secs() -> i64 {
    (unix_ms() / 1000) as i64
}

/// Milliseconds since the unix epoch, now.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_window() {
        let window = LatencyWindow::default();
        assert_eq!(window.percentiles(), Percentiles::default());
        for ms in 1..=100 {
            window.record(Duration::from_millis(ms));
        }
        let p = window.percentiles();
        assert_eq!(p.count, 100);
        assert!((p.p50 - 50.0).abs() <= 1.0, "{p:?}");
        assert!((p.p99 - 99.0).abs() <= 1.0, "{p:?}");
        // Three significant digits.
        assert!((p.max - 100.0).abs() <= 0.1, "{p:?}");
    }

    #[test]
    fn samples_leave_the_window_as_it_moves_on() {
        let window = LatencyWindow::default();
        let start = window.origin;
        window.record_at(start, Duration::from_millis(900));
        let minute = |n: u64| start + SLOT * n as u32;
        window.record_at(minute(2), Duration::from_millis(5));
        let p = window.percentiles_at(minute(4));
        assert_eq!((p.count, p.max.round()), (2, 900.0), "{p:?}");
        // Five slots on, the first is out; the 5 ms one is still in.
        let p = window.percentiles_at(minute(5));
        assert_eq!(p.count, 1, "{p:?}");
        assert!((p.max - 5.0).abs() < 0.01, "{p:?}");
        // Recording long after keeps at most five histograms.
        for n in 3..20 {
            window.record_at(minute(n), Duration::from_millis(1));
        }
        assert_eq!(window.slots.lock().unwrap().len(), SLOTS as usize);
        assert_eq!(window.percentiles_at(minute(19)).count, 5);
        assert_eq!(window.percentiles_at(minute(40)), Percentiles::default());
        // Longer than an hour counts as an hour; zero as a microsecond.
        window.record_at(minute(40), Duration::from_secs(7200));
        window.record_at(minute(40), Duration::ZERO);
        let p = window.percentiles_at(minute(40));
        assert!((p.max / 3_600_000.0 - 1.0).abs() < 0.001, "{p:?}");
    }

    #[test]
    fn agents_are_counted_by_name_up_to_the_cap() {
        let agents = AgentMetrics::default();
        agents.acked("pink", [Duration::from_millis(300)]);
        agents.outcome("pink", Outcome::Nacked, 2);
        let tasks = |agent: &str, outcome: &str| {
            agents
                .tasks
                .get_or_create(&vec![
                    ("agent", agent.to_owned()),
                    ("outcome", outcome.to_owned()),
                ])
                .get()
        };
        assert_eq!((tasks("pink", "acked"), tasks("pink", "nacked")), (1, 2));
        for n in 1..MAX_AGENTS {
            agents.outcome(&format!("a{n}"), Outcome::Acked, 1);
        }
        // Full: a new agent is counted with the others past the cap; known ones still
        // by name.
        agents.outcome("late", Outcome::DeadLettered, 1);
        agents.outcome("pink", Outcome::DeadLettered, 1);
        assert_eq!(tasks(OTHER_AGENTS, "dead_lettered"), 1);
        assert_eq!(tasks("pink", "dead_lettered"), 1);
        assert_eq!(agents.known.read().unwrap().len(), MAX_AGENTS);
        assert!(cortex_shared::AgentName::parse(OTHER_AGENTS).is_err());
    }

    #[test]
    fn gauges_count_live_guards() {
        let gauge = Gauge::default();
        let a = gauge.track();
        let b = gauge.track();
        assert_eq!(gauge.get(), 2);
        drop(a);
        assert_eq!(gauge.get(), 1);
        drop(b);
        assert_eq!(gauge.get(), 0);
    }
}
