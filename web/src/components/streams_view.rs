//! Streams: length, groups, pending and lag, with the throughput chart.

use super::ThroughputChart;
use crate::format::{duration_ms, duration_ms_f64};
use crate::state::ThroughputSample;
use cortex_shared::rest::MessagingMetrics;
use std::collections::VecDeque;
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`StreamsView`].
#[derive(Debug, Properties, PartialEq)]
pub struct StreamsViewProps {
    /// The latest metrics, once loaded.
    pub metrics: Option<Rc<MessagingMetrics>>,
    /// Throughput samples.
    pub throughput: Rc<VecDeque<ThroughputSample>>,
}

/// The streams view.
#[function_component(StreamsView)]
pub fn streams_view(props: &StreamsViewProps) -> Html {
    let table = match &props.metrics {
        None => html! { <p class="empty">{ "Loading…" }</p> },
        Some(m) => html! {
            <>
            <table id="streams-table" class="streams">
                <thead><tr>
                    <th scope="col">{ "stream" }</th><th scope="col">{ "length" }</th>
                    <th scope="col">{ "groups" }</th><th scope="col">{ "pending" }</th><th scope="col">{ "lag" }</th>
                </tr></thead>
                <tbody>
                { for m.streams.iter().map(|s| {
                    let pending: u64 = s.groups.iter().map(|g| g.pending).sum();
                    let lag: u64 = s.groups.iter().filter_map(|g| g.lag).sum();
                    html! {
                        <>
                        <tr class="stream" data-stream={s.stream.clone()} data-length={s.length.to_string()}>
                            <th scope="row"><code>{ &s.stream }</code></th>
                            <td class="stream-length">{ s.length }</td>
                            <td class="stream-groups">{ s.groups.len() }</td>
                            <td class="stream-pending">{ pending }</td>
                            <td class="stream-lag">{ lag }</td>
                        </tr>
                        { for s.groups.iter().map(|g| html! {
                            <tr class="group" data-stream={s.stream.clone()} data-group={g.name.clone()}>
                                <td class="indent"><code>{ &g.name }</code></td>
                                <td>{ format!("{} consumers", g.consumers.len()) }</td>
                                <td></td>
                                <td>{ g.pending }</td>
                                <td>{ g.lag.map(|l| l.to_string()).unwrap_or_else(|| "?".into()) }</td>
                            </tr>
                        }) }
                        </>
                    }
                }) }
                </tbody>
            </table>
            <p id="latency" class="muted">
                { format!("publish → delivery p50 {}, p99 {}; delivery → ack p50 {} (last {}). DLQ: {} letter{}{}.",
                    duration_ms_f64(m.latency.publish_to_delivery.p50_ms),
                    duration_ms_f64(m.latency.publish_to_delivery.p99_ms),
                    duration_ms_f64(m.latency.delivery_to_ack.p50_ms),
                    duration_ms(m.latency.window_seconds.saturating_mul(1000)), m.dlq.length,
                    if m.dlq.length == 1 { "" } else { "s" },
                    if m.dlq.over_warn_length { " (over the warning length)" } else { "" }) }
            </p>
            </>
        },
    };
    html! {
        <div id="view-streams" class="view">
            <section class="panel">
                <h2>{ "Throughput" }</h2>
                <ThroughputChart samples={props.throughput.clone()} />
            </section>
            <section class="panel">
                <h2>{ "Streams and groups" }</h2>
                { table }
            </section>
        </div>
    }
}
