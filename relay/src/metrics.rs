//! The relay's own numbers: counters, gauges, and latency distributions over a recent
//! window. Recorded with atomics (and one short lock per latency sample); read by the
//! HTTP API (`/api/v1/messaging/metrics`) and `/metrics` (Prometheus).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many latency samples each window keeps at most.
const WINDOW_SAMPLES: usize = 10_000;
/// How old a latency sample may be and still count.
const WINDOW_AGE: Duration = Duration::from_secs(300);

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

/// Latencies (milliseconds) over the last [`WINDOW_AGE`], at most [`WINDOW_SAMPLES`].
#[derive(Debug, Default)]
pub struct LatencyWindow {
    samples: Mutex<VecDeque<(Instant, f64)>>,
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
        let now = Instant::now();
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() == WINDOW_SAMPLES {
            samples.pop_front();
        }
        samples.push_back((now, latency.as_secs_f64() * 1000.0));
    }

    /// The percentiles of the samples younger than the window's age.
    pub fn percentiles(&self) -> Percentiles {
        let now = Instant::now();
        let mut values: Vec<f64> = {
            let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
            while samples
                .front()
                .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW_AGE)
            {
                samples.pop_front();
            }
            samples.iter().map(|(_, v)| *v).collect()
        };
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Percentiles {
            count: values.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: values[values.len() - 1],
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
        assert_eq!(p.max, 100.0);
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
