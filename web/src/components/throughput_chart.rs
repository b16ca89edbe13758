//! Task-stream throughput over the last minutes, drawn as SVG.

use crate::state::ThroughputSample;
use std::collections::VecDeque;
use std::rc::Rc;
use yew::prelude::*;

/// Properties of [`ThroughputChart`].
#[derive(Debug, Properties, PartialEq)]
pub struct ThroughputChartProps {
    /// Samples, oldest first.
    pub samples: Rc<VecDeque<ThroughputSample>>,
}

const W: f64 = 600.0;
const H: f64 = 160.0;

/// The points of the line: x over the samples' time span, y from 0 to `max`.
fn points(samples: &VecDeque<ThroughputSample>, max: f64) -> String {
    let (Some(first), Some(last)) = (samples.front(), samples.back()) else {
        return String::new();
    };
    let span = (last.at_ms.saturating_sub(first.at_ms)).max(1) as f64;
    samples
        .iter()
        .map(|s| {
            let x = (s.at_ms - first.at_ms) as f64 / span * W;
            let y = H - s.per_second / max * (H - 10.0);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The chart.
#[function_component(ThroughputChart)]
pub fn throughput_chart(props: &ThroughputChartProps) -> Html {
    let max = props
        .samples
        .iter()
        .map(|s| s.per_second)
        .fold(1.0_f64, f64::max)
        .ceil();
    let current = props.samples.back().map(|s| s.per_second).unwrap_or(0.0);
    let minutes = match (props.samples.front(), props.samples.back()) {
        (Some(a), Some(b)) => (b.at_ms - a.at_ms) as f64 / 60_000.0,
        _ => 0.0,
    };
    html! {
        <figure class="chart">
            <svg id="throughput-chart" viewBox={format!("0 0 {W} {H}")} role="img" preserveAspectRatio="none"
                data-samples={props.samples.len().to_string()}
                aria-label={format!("Task throughput: {current:.1} entries per second now, up to {max} over the last {minutes:.1} minutes")}>
                <line x1="0" y1={H.to_string()} x2={W.to_string()} y2={H.to_string()} class="axis" />
                <line x1="0" y1="10" x2={W.to_string()} y2="10" class="grid" />
                <polyline class="line" fill="none" points={points(&props.samples, max)} />
            </svg>
            <figcaption>
                { format!("{current:.1} entries/s now · peak scale {max}/s · last {minutes:.1} min") }
            </figcaption>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_the_width_and_scales_to_the_max() {
        let samples: VecDeque<_> = [(1000, 0.0), (3000, 5.0)]
            .into_iter()
            .map(|(at_ms, per_second)| ThroughputSample { at_ms, per_second })
            .collect();
        assert_eq!(points(&samples, 5.0), "0.0,160.0 600.0,10.0");
        assert_eq!(points(&VecDeque::new(), 1.0), "");
    }
}
