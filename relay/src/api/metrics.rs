//! Metrics over HTTP: `GET /api/v1/messaging/metrics` (JSON) and `GET /metrics`
//! (Prometheus text exposition format 0.0.4, written by hand).
//!
//! Streams are found with `SCAN … MATCH cortex:* TYPE stream`, never `KEYS`; each is
//! described by `XINFO STREAM`, `XINFO GROUPS` and `XINFO CONSUMERS`. Latencies come
//! from the relay's own windows ([`crate::metrics::Metrics`]), which the consumer
//! engine fills: publish (the entry id's time) to delivery, and delivery to ack.

use super::xinfo::stream_metrics;
use crate::error::ApiError;
use crate::metrics::{Metrics, Percentiles};
use crate::state::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use cortex_shared::rest::{
    DlqSummary, LatencyMetrics, LatencySummary, MessagingMetrics, RelayCounters, StreamMetrics,
};
use cortex_shared::DLQ_STREAM;
use redis::aio::ConnectionLike;
use redis::RedisResult;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;

/// How far back latency samples count (see [`crate::metrics`]).
const WINDOW_SECONDS: u64 = 300;
/// How long `/metrics` waits for Redis before answering with the relay's own numbers.
const REDIS_WAIT: Duration = Duration::from_secs(2);

/// Every `cortex:*` stream, by `SCAN … TYPE stream`, sorted.
pub(crate) async fn cortex_streams<C: ConnectionLike>(conn: &mut C) -> RedisResult<Vec<String>> {
    let mut found = BTreeSet::new();
    let mut cursor = "0".to_owned();
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(&cursor)
            .arg("MATCH")
            .arg("cortex:*")
            .arg("TYPE")
            .arg("stream")
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        found.extend(keys);
        if next == "0" {
            return Ok(found.into_iter().collect());
        }
        cursor = next;
    }
}

fn summary(p: Percentiles) -> LatencySummary {
    LatencySummary {
        count: p.count as u64,
        p50_ms: p.p50,
        p90_ms: p.p90,
        p99_ms: p.p99,
        max_ms: p.max,
    }
}

/// The relay's own numbers.
pub(crate) fn relay_numbers(metrics: &Metrics) -> (RelayCounters, LatencyMetrics) {
    (
        RelayCounters {
            connections: metrics.connections.get(),
            frames_in: metrics.frames_in.get(),
            frames_out: metrics.frames_out.get(),
            slow_client_disconnects: metrics.slow_client_disconnects.get(),
            redis_reconnects: metrics.redis_reconnects.get(),
            deliveries: metrics.deliveries.get(),
            acks: metrics.acks.get(),
            nacks: metrics.nacks.get(),
            dead_letters: metrics.dead_letters.get(),
        },
        LatencyMetrics {
            window_seconds: WINDOW_SECONDS,
            publish_to_delivery: summary(metrics.publish_to_delivery.percentiles()),
            delivery_to_ack: summary(metrics.delivery_to_ack.percentiles()),
        },
    )
}

async fn measure(state: &AppState) -> RedisResult<MessagingMetrics> {
    let mut conn = state.session.redis.clone();
    let streams = cortex_streams(&mut conn).await?;
    let streams = stream_metrics(&mut conn, &streams).await?;
    let dlq_length = streams
        .iter()
        .find(|s| s.stream == DLQ_STREAM)
        .map_or(0, |s| s.length);
    let (relay, latency) = relay_numbers(&state.session.metrics);
    let warn_length = state.api.dlq_warn_length;
    Ok(MessagingMetrics {
        streams,
        latency,
        relay,
        dlq: DlqSummary {
            length: dlq_length,
            warn_length,
            over_warn_length: dlq_length > warn_length,
        },
        at_ms: super::now_ms(),
    })
}

/// `GET /api/v1/messaging/metrics`.
pub async fn messaging(State(state): State<AppState>) -> Result<Json<MessagingMetrics>, ApiError> {
    Ok(Json(measure(&state).await?))
}

/// `GET /metrics`: Prometheus text. The relay's own numbers are always there; the
/// streams' only when Redis answers (`cortex_redis_up` says which).
pub async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    let measured = tokio::time::timeout(REDIS_WAIT, measure(&state)).await;
    let streams = match measured {
        Ok(Ok(m)) => Some((m.streams, m.dlq)),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "/metrics without stream numbers");
            None
        }
        Err(_) => None,
    };
    let (relay, latency) = relay_numbers(&state.session.metrics);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        exposition(
            &relay,
            &latency,
            streams.as_ref().map(|(s, d)| (s.as_slice(), d)),
        ),
    )
}

/// Escapes a label value: backslash, double quote, newline.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A metric family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition text.
pub(crate) fn exposition(
    relay: &RelayCounters,
    latency: &LatencyMetrics,
    streams: Option<(&[StreamMetrics], &DlqSummary)>,
) -> String {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    };
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    };
    gauge(
        &mut out,
        "cortex_relay_connections",
        "WebSocket connections open now.",
        relay.connections,
    );
    counter(
        &mut out,
        "cortex_relay_frames_in_total",
        "Client frames received.",
        relay.frames_in,
    );
    counter(
        &mut out,
        "cortex_relay_frames_out_total",
        "Frames queued to clients.",
        relay.frames_out,
    );
    counter(
        &mut out,
        "cortex_relay_slow_client_disconnects_total",
        "Clients closed because they could not keep up.",
        relay.slow_client_disconnects,
    );
    counter(
        &mut out,
        "cortex_relay_redis_reconnects_total",
        "Times a reader or consumer lost Redis and connected again.",
        relay.redis_reconnects,
    );
    counter(
        &mut out,
        "cortex_relay_deliveries_total",
        "Tasks delivered to consumers.",
        relay.deliveries,
    );
    counter(
        &mut out,
        "cortex_relay_acks_total",
        "Tasks acked by consumers.",
        relay.acks,
    );
    counter(
        &mut out,
        "cortex_relay_nacks_total",
        "Tasks nacked by consumers.",
        relay.nacks,
    );
    counter(
        &mut out,
        "cortex_relay_dead_letters_total",
        "Tasks the relay moved to the DLQ.",
        relay.dead_letters,
    );
    for (name, help, s) in [
        (
            "cortex_relay_publish_to_delivery_seconds",
            "From a task's XADD to its delivery to a consumer, over the recent window.",
            &latency.publish_to_delivery,
        ),
        (
            "cortex_relay_delivery_to_ack_seconds",
            "From delivery to the consumer's ack, over the recent window.",
            &latency.delivery_to_ack,
        ),
    ] {
        family(&mut out, name, "gauge", help);
        for (q, ms) in [
            ("0.5", s.p50_ms),
            ("0.9", s.p90_ms),
            ("0.99", s.p99_ms),
            ("1", s.max_ms),
        ] {
            let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", ms / 1000.0);
        }
        let samples = format!("{name}_samples");
        family(
            &mut out,
            &samples,
            "gauge",
            "Samples in the latency window.",
        );
        let _ = writeln!(out, "{samples} {}", s.count);
    }
    gauge(
        &mut out,
        "cortex_redis_up",
        "Whether Redis answered this scrape.",
        u64::from(streams.is_some()),
    );
    let Some((streams, dlq)) = streams else {
        return out;
    };
    gauge(
        &mut out,
        "cortex_dlq_length",
        "Letters in the dead letter queue.",
        dlq.length,
    );
    gauge(
        &mut out,
        "cortex_dlq_over_warn_length",
        "Whether the DLQ is longer than --dlq-warn-length.",
        u64::from(dlq.over_warn_length),
    );
    family(
        &mut out,
        "cortex_stream_length",
        "gauge",
        "Entries in the stream.",
    );
    for s in streams {
        let _ = writeln!(
            out,
            "cortex_stream_length{{stream=\"{}\"}} {}",
            label(&s.stream),
            s.length
        );
    }
    type GroupValue = fn(&cortex_shared::rest::GroupMetrics) -> Option<u64>;
    let group_families: [(&str, &str, GroupValue); 2] = [
        (
            "cortex_group_pending",
            "Entries delivered to the group and not acked.",
            |g| Some(g.pending),
        ),
        (
            "cortex_group_lag",
            "Entries not yet delivered to the group.",
            |g| g.lag,
        ),
    ];
    for (name, help, value) in group_families {
        family(&mut out, name, "gauge", help);
        for s in streams {
            for g in &s.groups {
                if let Some(v) = value(g) {
                    let _ = writeln!(
                        out,
                        "{name}{{stream=\"{}\",group=\"{}\"}} {v}",
                        label(&s.stream),
                        label(&g.name)
                    );
                }
            }
        }
    }
    family(
        &mut out,
        "cortex_consumer_pending",
        "gauge",
        "Entries the consumer holds, not acked.",
    );
    family(
        &mut out,
        "cortex_consumer_idle_seconds",
        "gauge",
        "Since the consumer's last read or claim.",
    );
    for s in streams {
        for g in &s.groups {
            for c in &g.consumers {
                let labels = format!(
                    "stream=\"{}\",group=\"{}\",consumer=\"{}\"",
                    label(&s.stream),
                    label(&g.name),
                    label(&c.name)
                );
                let _ = writeln!(out, "cortex_consumer_pending{{{labels}}} {}", c.pending);
                let _ = writeln!(
                    out,
                    "cortex_consumer_idle_seconds{{{labels}}} {}",
                    c.idle_ms as f64 / 1000.0
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::rest::{ConsumerMetrics, GroupMetrics};

    #[test]
    fn exposition_is_prometheus_text() {
        let relay = RelayCounters {
            connections: 2,
            acks: 5,
            ..RelayCounters::default()
        };
        let latency = LatencyMetrics {
            window_seconds: 300,
            publish_to_delivery: LatencySummary {
                count: 3,
                p50_ms: 1.5,
                p90_ms: 2.0,
                p99_ms: 3.0,
                max_ms: 3.0,
            },
            delivery_to_ack: LatencySummary::default(),
        };
        let text = exposition(&relay, &latency, None);
        assert!(
            text.contains("# TYPE cortex_relay_connections gauge\ncortex_relay_connections 2\n")
        );
        assert!(text.contains("cortex_relay_acks_total 5\n"));
        assert!(
            text.contains("cortex_relay_publish_to_delivery_seconds{quantile=\"0.5\"} 0.0015\n")
        );
        assert!(text.contains("cortex_redis_up 0\n"));
        assert!(!text.contains("cortex_stream_length"));

        let streams = [StreamMetrics {
            stream: "cortex:tasks:high".into(),
            length: 4,
            first_id: None,
            last_id: None,
            last_generated_id: "0-0".into(),
            entries_added: None,
            groups: vec![GroupMetrics {
                name: "agent:pi\"nk".into(),
                pending: 1,
                lag: None,
                last_delivered_id: "0-0".into(),
                entries_read: None,
                consumers: vec![ConsumerMetrics {
                    name: "c1".into(),
                    pending: 1,
                    idle_ms: 1500,
                    inactive_ms: None,
                }],
            }],
        }];
        let dlq = DlqSummary {
            length: 0,
            warn_length: 10,
            over_warn_length: false,
        };
        let text = exposition(&relay, &latency, Some((&streams, &dlq)));
        assert!(text.contains("cortex_redis_up 1\n"));
        assert!(text.contains("cortex_stream_length{stream=\"cortex:tasks:high\"} 4\n"));
        assert!(text.contains(
            "cortex_group_pending{stream=\"cortex:tasks:high\",group=\"agent:pi\\\"nk\"} 1\n"
        ));
        assert!(
            !text.contains("cortex_group_lag{"),
            "no lag reported, no sample"
        );
        assert!(text.contains("consumer=\"c1\"} 1.5\n"));
        // Every sample line names a family declared before it.
        let mut declared = BTreeSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.insert(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{line}");
            }
        }
    }
}
