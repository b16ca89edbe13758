//! What the driver and its load processes share: the clock, the latency histogram,
//! the few frame fields a load reads, and the lines a load prints on stdout.
//!
//! A load process prints exactly two JSON lines on stdout: [`Line::Ready`] once its
//! connections are up (or it has none to open), then [`Line::Done`] with its
//! [`LoadReport`]. Anything else it says goes to stderr.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the unix epoch: the one clock every process of a run reads (the
/// publisher stamps it into the payload, receivers compare against it).
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Latencies in microseconds, 1 µs to 10 minutes, three significant digits.
#[derive(Debug, Clone)]
pub(crate) struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Self(Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latency {
    /// Records one latency; out-of-range values are clamped.
    pub(crate) fn record(&mut self, micros: u64) {
        self.0.saturating_record(micros.max(1));
    }

    /// Adds every value of `other`.
    pub(crate) fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides: cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// The values as (value, count) pairs, to cross a process boundary as JSON.
    pub(crate) fn to_pairs(&self) -> Vec<(u64, u64)> {
        self.0
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    /// The histogram of [`Latency::to_pairs`].
    pub(crate) fn from_pairs(pairs: &[(u64, u64)]) -> Self {
        let mut latency = Self::default();
        for &(value, count) in pairs {
            let _ = latency.0.record_n(value.max(1), count);
        }
        latency
    }

    /// Percentiles in milliseconds.
    pub(crate) fn summary(&self) -> Summary {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.0;
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// Latency percentiles of one scenario, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    /// Values recorded.
    pub(crate) count: u64,
    /// Median.
    pub(crate) p50_ms: f64,
    /// 90th percentile.
    pub(crate) p90_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
    /// 99.9th percentile.
    pub(crate) p999_ms: f64,
    /// Largest.
    pub(crate) max_ms: f64,
    /// Mean.
    pub(crate) mean_ms: f64,
}

/// Errors a load met: how many, and the first few, word for word.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Errors {
    /// How many.
    pub(crate) count: u64,
    /// The first [`Errors::SAMPLES`] of them.
    pub(crate) samples: Vec<String>,
}

impl Errors {
    const SAMPLES: usize = 5;

    /// Counts one error.
    pub(crate) fn add(&mut self, what: impl Into<String>) {
        self.count += 1;
        if self.samples.len() < Self::SAMPLES {
            self.samples.push(what.into());
        }
    }

    /// Adds `other`'s errors.
    pub(crate) fn merge(&mut self, other: Errors) {
        self.count += other.count;
        for sample in other.samples {
            if self.samples.len() < Self::SAMPLES {
                self.samples.push(sample);
            }
        }
    }
}

/// What one receiving client (a connection or a poller) counted.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Distinct tasks received.
    pub(crate) received: u64,
    /// Receipts of a task received already.
    pub(crate) duplicates: u64,
    /// Everything that went wrong.
    pub(crate) errors: Errors,
    /// First receipt, unix µs.
    pub(crate) first_us: u64,
    /// Last receipt, unix µs.
    pub(crate) last_us: u64,
}

impl Tally {
    /// Counts a receipt at `now`: a new task when `fresh`, else a duplicate.
    pub(crate) fn receipt(&mut self, now: u64, fresh: bool) {
        if !fresh {
            self.duplicates += 1;
            return;
        }
        if self.received == 0 {
            self.first_us = now;
        }
        self.received += 1;
        self.last_us = now;
    }
}

/// What one load process did. Every role fills what applies to it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LoadReport {
    /// Connections (or pollers) that were up and subscribed.
    pub(crate) connections: u64,
    /// Tasks published (publisher).
    pub(crate) published: u64,
    /// Task receipts expected, summed over connections.
    pub(crate) expected: u64,
    /// Distinct task receipts, summed over connections.
    pub(crate) received: u64,
    /// Distinct tasks whose ack the relay confirmed (consume).
    pub(crate) acked: u64,
    /// Receipts of a task a connection had already received.
    pub(crate) duplicates: u64,
    /// Everything that went wrong.
    pub(crate) errors: Errors,
    /// Publish to receipt, as (µs, count) pairs.
    pub(crate) latency: Vec<(u64, u64)>,
    /// Publish to the relay's `acked` reply (consume), as (µs, count) pairs.
    pub(crate) ack_latency: Vec<(u64, u64)>,
    /// First event's time (publisher: first send; receivers: first receipt), unix µs.
    pub(crate) first_us: u64,
    /// Last event's time, unix µs.
    pub(crate) last_us: u64,
    /// HTTP requests made (poller).
    pub(crate) requests: u64,
    /// Most the publisher fell behind its schedule, µs.
    pub(crate) max_behind_us: u64,
    /// CPU seconds the load process used.
    pub(crate) cpu_secs: f64,
}

impl LoadReport {
    /// Adds one client's tally: counts summed, the first and last receipt spanning all
    /// (0 while nothing was received).
    pub(crate) fn add(&mut self, tally: Tally) {
        self.received += tally.received;
        self.duplicates += tally.duplicates;
        self.errors.merge(tally.errors);
        if tally.received > 0 {
            self.first_us = match self.first_us {
                0 => tally.first_us,
                first => first.min(tally.first_us),
            };
            self.last_us = self.last_us.max(tally.last_us);
        }
    }
}

/// A line a load prints on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Line {
    /// Connections are up; the driver may start publishing.
    Ready {
        /// Connections up and subscribed.
        connections: u64,
        /// Connections that failed.
        failed: u64,
    },
    /// The load has finished.
    Done(LoadReport),
}

impl Line {
    /// Prints `report` as the load's last line, with the CPU time the process used.
    pub(crate) fn done(mut report: LoadReport) {
        report.cpu_secs = own_cpu_secs();
        Line::Done(report).print();
    }

    /// Prints the line on stdout, flushed.
    pub(crate) fn print(&self) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", serde_json::to_string(self).expect("a line"));
        let _ = out.flush();
    }
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat`
/// (assuming the usual 100 ticks a second).
fn own_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The text after `"key":` in a frame, up to the next `,`, `}` or `"`, without the
/// opening quote of a string. The relay's frames carry no escapes in the fields the
/// bench reads (stream names, entry ids, numbers), so a search is enough, and far
/// cheaper than parsing every frame of a fan-out.
pub(crate) fn field<'a>(frame: &'a str, key: &str) -> Option<&'a str> {
    let mut at = 0;
    while let Some(found) = frame[at..].find(key) {
        let start = at + found;
        let end = start + key.len();
        let quoted_before = start > 0 && frame.as_bytes()[start - 1] == b'"';
        let rest = &frame[end..];
        if quoted_before && rest.starts_with("\":") {
            let value = rest[2..].trim_start_matches('"');
            let stop = value.find([',', '}', '"']).unwrap_or(value.len());
            return Some(&value[..stop]);
        }
        at = end;
    }
    None
}

/// A numeric field of a frame (see [`field`]).
pub(crate) fn number(frame: &str, key: &str) -> Option<u64> {
    field(frame, key)?.parse().ok()
}

/// The frame's `type`: the first field the relay writes.
pub(crate) fn frame_type(frame: &str) -> Option<&str> {
    let rest = frame.strip_prefix("{\"type\":\"")?;
    rest.split('"').next()
}

/// A set of task numbers, to count each task once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Seen {
    bits: Vec<u64>,
    limit: u64,
    count: u64,
}

impl Seen {
    /// Room for numbers below `n`.
    pub(crate) fn new(n: u64) -> Self {
        Self {
            bits: vec![0; n.div_ceil(64) as usize],
            limit: n,
            count: 0,
        }
    }

    /// Marks `i`; false if it was marked already or is out of range.
    pub(crate) fn insert(&mut self, i: u64) -> bool {
        if i >= self.limit {
            return false;
        }
        let word = &mut self.bits[(i / 64) as usize];
        let bit = 1 << (i % 64);
        if *word & bit != 0 {
            return false;
        }
        *word |= bit;
        self.count += 1;
        true
    }

    /// How many distinct numbers were marked.
    pub(crate) fn len(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_in_relay_frames() {
        let frame = r#"{"type":"task","data":{"id":"b-7","from":"bench","to":"w3","priority":"normal","type":"bench","payload":{"sent_us":1700000000000123,"seq":7},"created":1700000000},"stream":"cortex:tasks:normal","entry_id":"1700000000000-4","delivery_count":1}"#;
        assert_eq!(frame_type(frame), Some("task"));
        assert_eq!(number(frame, "seq"), Some(7));
        assert_eq!(number(frame, "sent_us"), Some(1_700_000_000_000_123));
        assert_eq!(field(frame, "stream"), Some("cortex:tasks:normal"));
        assert_eq!(field(frame, "entry_id"), Some("1700000000000-4"));
        assert_eq!(field(frame, "missing"), None);
        assert_eq!(
            frame_type(r#"{"type":"acked","stream":"s"}"#),
            Some("acked")
        );
    }

    #[test]
    fn a_key_inside_a_value_is_not_a_field() {
        let frame = r#"{"type":"error","message":"seq","seq":3}"#;
        assert_eq!(number(frame, "seq"), Some(3));
    }

    #[test]
    fn histograms_cross_processes_unchanged() {
        let mut a = Latency::default();
        for us in [90, 100, 110, 2_000, 50_000] {
            a.record(us);
        }
        let b = Latency::from_pairs(&a.to_pairs());
        assert_eq!(b.summary().count, 5);
        assert_eq!(a.summary().p50_ms, b.summary().p50_ms);
        assert_eq!(a.summary().max_ms, b.summary().max_ms);
        let mut c = Latency::default();
        c.merge(&b);
        c.merge(&b);
        assert_eq!(c.summary().count, 10);
    }

    #[test]
    fn seen_counts_each_number_once() {
        let mut seen = Seen::new(100);
        assert!(seen.insert(3));
        assert!(!seen.insert(3));
        assert!(seen.insert(99));
        assert!(!seen.insert(100));
        assert_eq!(seen.len(), 2);
    }
}
