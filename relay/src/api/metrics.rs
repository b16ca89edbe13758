//! Metrics over HTTP: `GET /api/v1/messaging/metrics` (JSON) and `GET /metrics`
//! (OpenMetrics text, which Prometheus scrapes, encoded by `prometheus-client`).
//!
//! Streams are found with `SCAN … MATCH cortex:* TYPE stream`, never `KEYS`; each is
//! described by `XINFO STREAM`, `XINFO GROUPS` and `XINFO CONSUMERS`. Latencies come
//! from the relay's own windows ([`crate::metrics::Metrics`]), which the consumer
//! engine fills: publish (the entry id's time) to delivery, and delivery to ack.

use crate::error::ApiError;
use crate::metrics::{AgentMetrics, Metrics, Percentiles};
use crate::state::AppState;
use crate::store::keys::DLQ;
use crate::store::streams::cortex_streams;
use crate::store::xinfo::stream_metrics;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use cortex_shared::rest::GroupMetrics;
use cortex_shared::rest::{
    DlqSummary, LatencyMetrics, LatencySummary, MessagingMetrics, RelayCounters, StreamMetrics,
};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use redis::RedisResult;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::time::Duration;

/// How far back latency samples count (see [`crate::metrics`]).
const WINDOW_SECONDS: u64 = 300;
/// How long `/metrics` waits for Redis before answering with the relay's own numbers.
const REDIS_WAIT: Duration = Duration::from_secs(2);

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
    let mut conn = state.services.redis.clone();
    let streams = cortex_streams(&mut conn).await?;
    let streams = stream_metrics(&mut conn, &streams).await?;
    let dlq_length = streams
        .iter()
        .find(|s| s.stream == DLQ)
        .map_or(0, |s| s.length);
    let (relay, latency) = relay_numbers(&state.services.metrics);
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

/// `GET /metrics`: OpenMetrics text, for Prometheus. The relay's own numbers are always there; the
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
    let (relay, latency) = relay_numbers(&state.services.metrics);
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        exposition(
            &relay,
            &latency,
            &state.services.metrics.agents,
            streams.as_ref().map(|(s, d)| (s.as_slice(), d)),
        ),
    )
}

/// Labels of one sample: `[("stream", "cortex:tasks:high"), …]`.
type Labels = Vec<(&'static str, String)>;

/// The exposition text (OpenMetrics, by `prometheus-client`): a registry made for this
/// scrape, holding the values read just now.
pub(crate) fn exposition(
    relay: &RelayCounters,
    latency: &LatencyMetrics,
    agents: &AgentMetrics,
    streams: Option<(&[StreamMetrics], &DlqSummary)>,
) -> String {
    let mut registry = Registry::default();
    // Kept by the relay, registered for this scrape (the families are shared handles).
    registry.register(
        "cortex_agent_tasks",
        "Tasks of the agent acked, nacked or dead-lettered by the relay's consumers \
         (agents past the first 1000 are counted as agent=\"~other\")",
        agents.tasks.clone(),
    );
    registry.register(
        "cortex_agent_delivery_to_ack_seconds",
        "From a relay consumer's delivery of the agent's task to its ack",
        agents.delivery_to_ack.clone(),
    );
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let gauge = Gauge::<i64, AtomicI64>::default();
        gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        registry.register(name, help, gauge);
    };
    // Registered without `_total`, which the encoder adds to a counter's samples.
    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let counter = Counter::<u64, AtomicU64>::default();
        counter.inc_by(value);
        registry.register(name, help, counter);
    };
    let labelled =
        |registry: &mut Registry, name: &str, help: &str, samples: Vec<(Labels, f64)>| {
            let family = Family::<Labels, Gauge<f64, AtomicU64>>::default();
            for (labels, value) in samples {
                family.get_or_create(&labels).set(value);
            }
            registry.register(name, help, family);
        };
    let counts = |registry: &mut Registry, name: &str, help: &str, samples: Vec<(Labels, u64)>| {
        let family = Family::<Labels, Gauge<i64, AtomicI64>>::default();
        for (labels, value) in samples {
            family
                .get_or_create(&labels)
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        registry.register(name, help, family);
    };
    gauge(
        &mut registry,
        "cortex_relay_connections",
        "WebSocket connections open now",
        relay.connections,
    );
    for (name, help, value) in [
        (
            "cortex_relay_frames_in",
            "Client frames received",
            relay.frames_in,
        ),
        (
            "cortex_relay_frames_out",
            "Frames queued to clients",
            relay.frames_out,
        ),
        (
            "cortex_relay_slow_client_disconnects",
            "Clients closed because they could not keep up",
            relay.slow_client_disconnects,
        ),
        (
            "cortex_relay_redis_reconnects",
            "Times a reader or consumer lost Redis and connected again",
            relay.redis_reconnects,
        ),
        (
            "cortex_relay_deliveries",
            "Tasks delivered to consumers",
            relay.deliveries,
        ),
        ("cortex_relay_acks", "Tasks acked by consumers", relay.acks),
        (
            "cortex_relay_nacks",
            "Tasks nacked by consumers",
            relay.nacks,
        ),
        (
            "cortex_relay_dead_letters",
            "Tasks the relay moved to the DLQ",
            relay.dead_letters,
        ),
    ] {
        counter(&mut registry, name, help, value);
    }
    for (name, help, s) in [
        (
            "cortex_relay_publish_to_delivery_seconds",
            "From a task's XADD to its delivery to a consumer, over the recent window",
            &latency.publish_to_delivery,
        ),
        (
            "cortex_relay_delivery_to_ack_seconds",
            "From delivery to the consumer's ack, over the recent window",
            &latency.delivery_to_ack,
        ),
    ] {
        let quantiles = [
            ("0.5", s.p50_ms),
            ("0.9", s.p90_ms),
            ("0.99", s.p99_ms),
            ("1", s.max_ms),
        ]
        .into_iter()
        .map(|(q, ms)| (vec![("quantile", q.to_owned())], ms / 1000.0))
        .collect();
        labelled(&mut registry, name, help, quantiles);
        gauge(
            &mut registry,
            &format!("{name}_samples"),
            "Samples in the latency window",
            s.count,
        );
    }
    gauge(
        &mut registry,
        "cortex_redis_up",
        "Whether Redis answered this scrape",
        u64::from(streams.is_some()),
    );
    if let Some((streams, dlq)) = streams {
        gauge(
            &mut registry,
            "cortex_dlq_length",
            "Letters in the dead letter queue",
            dlq.length,
        );
        gauge(
            &mut registry,
            "cortex_dlq_over_warn_length",
            "Whether the DLQ is longer than --dlq-warn-length",
            u64::from(dlq.over_warn_length),
        );
        let of_stream = |s: &StreamMetrics| vec![("stream", s.stream.clone())];
        let of_group = |s: &StreamMetrics, g: &GroupMetrics| {
            vec![("stream", s.stream.clone()), ("group", g.name.clone())]
        };
        let groups = || {
            streams
                .iter()
                .flat_map(|s| s.groups.iter().map(move |g| (s, g)))
        };
        let consumers = || {
            groups().flat_map(|(s, g)| {
                g.consumers.iter().map(move |c| {
                    let mut labels = of_group(s, g);
                    labels.push(("consumer", c.name.clone()));
                    (labels, c)
                })
            })
        };
        counts(
            &mut registry,
            "cortex_stream_length",
            "Entries in the stream",
            streams.iter().map(|s| (of_stream(s), s.length)).collect(),
        );
        counts(
            &mut registry,
            "cortex_group_pending",
            "Entries delivered to the group and not acked",
            groups().map(|(s, g)| (of_group(s, g), g.pending)).collect(),
        );
        counts(
            &mut registry,
            "cortex_group_lag",
            "Entries not yet delivered to the group",
            groups()
                .filter_map(|(s, g)| Some((of_group(s, g), g.lag?)))
                .collect(),
        );
        counts(
            &mut registry,
            "cortex_consumer_pending",
            "Entries the consumer holds, not acked",
            consumers().map(|(l, c)| (l, c.pending)).collect(),
        );
        labelled(
            &mut registry,
            "cortex_consumer_idle_seconds",
            "Since the consumer's last read or claim",
            consumers()
                .map(|(l, c)| (l, c.idle_ms as f64 / 1000.0))
                .collect(),
        );
    }
    let mut out = String::new();
    // Writing to a String does not fail.
    encode(&mut out, &registry).expect("metrics encode");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::rest::{ConsumerMetrics, GroupMetrics};
    use std::collections::BTreeSet;

    #[test]
    fn exposition_is_openmetrics_text() {
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
        let agents = AgentMetrics::default();
        agents.acked("pink", [std::time::Duration::from_millis(300)]);
        agents.outcome("blue", crate::metrics::Outcome::DeadLettered, 2);
        let text = exposition(&relay, &latency, &agents, None);
        assert!(
            text.contains("cortex_agent_tasks_total{agent=\"pink\",outcome=\"acked\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("cortex_agent_tasks_total{agent=\"blue\",outcome=\"dead_lettered\"} 2\n")
        );
        assert!(text.contains("cortex_agent_delivery_to_ack_seconds_count{agent=\"pink\"} 1\n"));
        assert!(
            text.contains(
                "cortex_agent_delivery_to_ack_seconds_bucket{le=\"0.5\",agent=\"pink\"} 1\n"
            ),
            "{text}"
        );
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
        let text = exposition(&relay, &latency, &agents, Some((&streams, &dlq)));
        assert!(text.contains("cortex_redis_up 1\n"));
        assert!(text.ends_with("# EOF\n"), "{text}");
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
                // A counter `x`'s samples are `x_total`, a histogram's `x_bucket`,
                // `x_sum` and `x_count` (OpenMetrics).
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_total", "_bucket", "_sum", "_count"]
                    .iter()
                    .filter_map(|suffix| name.strip_suffix(suffix))
                    .find(|f| declared.contains(*f));
                assert!(declared.contains(family.unwrap_or(name)), "{line}");
            }
        }
    }
}
