//! The consumer reaper (README, Delivery: "Consumers in Redis"): consumers a
//! connection's end did not remove (one that went holding a task, later taken from it;
//! one whose relay was killed; any other client's) are removed once they have been
//! idle `--consumer-reap-after-ms` with nothing pending, in agents' groups
//! (`agent:<name>`) only unless `--consumer-reap-foreign`.
//!
//! Each round reads the task streams' groups and consumers (`XINFO`, two pipelines),
//! picks the consumers idle long enough with nothing pending on any stream (a pure
//! function, [`due`]), asks a relay consumer's alive key when it last ran (before
//! Redis 7.2 an idle consumer's `idle` grows while it waits in a blocking read), and
//! removes each in one script that checks again that it holds nothing
//! ([`crate::store::groups::remove_consumer`]).

use crate::store::groups::{last_alive, remove_consumer};
use crate::store::keys;
use crate::store::xinfo::stream_metrics;
use cortex_shared::rest::StreamMetrics;
use cortex_shared::Backoff;
use redis::aio::ConnectionManager;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the reaper removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaperSettings {
    /// Consumers idle this long with nothing pending are removed; `None`: none are.
    pub idle_after: Option<Duration>,
    /// Also in groups that are not an agent's (`agent:<name>`), such as the plan's
    /// shared `agents` group.
    pub foreign: bool,
}

impl ReaperSettings {
    /// How often a round runs: a quarter of the idle time, between 250 ms and a
    /// minute.
    pub fn every(&self) -> Option<Duration> {
        self.idle_after
            .map(|after| (after / 4).clamp(Duration::from_millis(250), Duration::from_secs(60)))
    }
}

/// A consumer to remove: its group, its name, and whether the group is an agent's
/// (then the relay's alive key for it is asked, and deleted with it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    pub(crate) group: String,
    pub(crate) consumer: String,
    pub(crate) agent: Option<String>,
}

/// The consumers of `streams`' groups idle at least `after_ms` (the least idle time
/// over the streams: a relay's consumer reads all four) with nothing pending on any,
/// in agents' groups, and in others with `foreign`.
pub(crate) fn due(streams: &[StreamMetrics], after_ms: u64, foreign: bool) -> Vec<Due> {
    // (group, consumer) → (pending over the streams, least idle)
    let mut seen: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for stream in streams {
        for group in &stream.groups {
            if keys::agent_of_group(&group.name).is_none() && !foreign {
                continue;
            }
            for c in &group.consumers {
                let entry = seen
                    .entry((group.name.clone(), c.name.clone()))
                    .or_insert((0, u64::MAX));
                entry.0 += c.pending;
                entry.1 = entry.1.min(c.idle_ms);
            }
        }
    }
    seen.into_iter()
        .filter(|(_, (pending, idle))| *pending == 0 && *idle >= after_ms)
        .map(|((group, consumer), _)| Due {
            agent: keys::agent_of_group(&group).map(str::to_owned),
            group,
            consumer,
        })
        .collect()
}

/// Reaps until cancelled (nothing at all when `settings.idle_after` is `None`).
pub async fn run(
    mut redis: ConnectionManager,
    settings: ReaperSettings,
    cancel: CancellationToken,
) {
    let Some(every) = settings.every() else {
        return;
    };
    let mut backoff = Backoff::new(every, Duration::from_secs(60));
    loop {
        let delay = match reap_once(&mut redis, &settings, crate::metrics::unix_ms()).await {
            Ok(removed) => {
                if !removed.is_empty() {
                    tracing::info!(consumers = removed.len(), "idle consumers removed");
                }
                backoff.reset();
                every
            }
            Err(e) => {
                tracing::warn!(error = %e, "reaping consumers failed; will retry");
                backoff.next_delay()
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// One round at `now_ms`; the consumers removed.
pub async fn reap_once(
    redis: &mut ConnectionManager,
    settings: &ReaperSettings,
    now_ms: u64,
) -> redis::RedisResult<Vec<(String, String)>> {
    let Some(after) = settings.idle_after else {
        return Ok(Vec::new());
    };
    let after_ms = after.as_millis() as u64;
    let streams: Vec<String> = keys::task_streams().map(str::to_owned).to_vec();
    let metrics = stream_metrics(redis, &streams).await?;
    let mut due = due(&metrics, after_ms, settings.foreign);
    // A relay's consumer that said it was alive within `after` is not idle.
    let relay_consumers: Vec<(String, String)> = due
        .iter()
        .filter_map(|d| Some((d.agent.clone()?, d.consumer.clone())))
        .collect();
    let alive = last_alive(redis, &relay_consumers).await?;
    let recent: Vec<&(String, String)> = relay_consumers
        .iter()
        .zip(alive)
        .filter(|(_, last)| last.is_some_and(|ms| now_ms.saturating_sub(ms) < after_ms))
        .map(|(name, _)| name)
        .collect();
    due.retain(|d| {
        !recent
            .iter()
            .any(|(agent, consumer)| d.agent.as_ref() == Some(agent) && d.consumer == *consumer)
    });
    let task_streams = keys::task_streams();
    let mut removed = Vec::new();
    for d in due {
        let alive_key = d
            .agent
            .as_deref()
            .map(|agent| keys::consumer_alive(agent, &d.consumer));
        if remove_consumer(
            redis,
            &task_streams,
            &d.group,
            &d.consumer,
            alive_key.as_deref(),
        )
        .await?
        {
            tracing::debug!(group = %d.group, consumer = %d.consumer, "idle consumer removed");
            removed.push((d.group, d.consumer));
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::rest::{ConsumerMetrics, GroupMetrics};

    fn consumer(name: &str, pending: u64, idle_ms: u64) -> ConsumerMetrics {
        ConsumerMetrics {
            name: name.into(),
            pending,
            idle_ms,
            inactive_ms: None,
        }
    }

    fn stream(name: &str, groups: Vec<(&str, Vec<ConsumerMetrics>)>) -> StreamMetrics {
        StreamMetrics {
            stream: name.into(),
            length: 0,
            first_id: None,
            last_id: None,
            last_generated_id: "0-0".into(),
            entries_added: None,
            groups: groups
                .into_iter()
                .map(|(group, consumers)| GroupMetrics {
                    name: group.into(),
                    pending: consumers.iter().map(|c| c.pending).sum(),
                    lag: None,
                    last_delivered_id: "0-0".into(),
                    entries_read: None,
                    consumers,
                })
                .collect(),
        }
    }

    fn names(due: &[Due]) -> Vec<(&str, &str)> {
        due.iter()
            .map(|d| (d.group.as_str(), d.consumer.as_str()))
            .collect()
    }

    #[test]
    fn idle_consumers_holding_nothing_on_any_stream_are_due() {
        let streams = [
            stream(
                "cortex:tasks:high",
                vec![
                    (
                        "agent:pink",
                        vec![
                            consumer("ghost", 0, 5_000),
                            consumer("busy", 0, 10),
                            consumer("holding", 1, 9_000),
                            consumer("split", 0, 9_000),
                        ],
                    ),
                    ("agents", vec![consumer("old", 0, 9_000)]),
                ],
            ),
            stream(
                "cortex:tasks:low",
                vec![(
                    "agent:pink",
                    vec![
                        // Pending on another stream: not due.
                        consumer("split", 2, 9_000),
                        // Active on another stream: the least idle counts.
                        consumer("ghost", 0, 4_000),
                    ],
                )],
            ),
        ];
        assert_eq!(
            names(&due(&streams, 3_000, false)),
            [("agent:pink", "ghost")]
        );
        assert_eq!(
            names(&due(&streams, 4_001, false)),
            Vec::<(&str, &str)>::new()
        );
        let all = due(&streams, 3_000, true);
        assert_eq!(names(&all), [("agent:pink", "ghost"), ("agents", "old")]);
        assert_eq!(all[0].agent.as_deref(), Some("pink"));
        assert_eq!(
            all[1].agent, None,
            "no alive key for another client's group"
        );
    }

    #[test]
    fn rounds_come_a_quarter_of_the_idle_time_apart_within_bounds() {
        let every = |ms| {
            ReaperSettings {
                idle_after: Some(Duration::from_millis(ms)),
                foreign: false,
            }
            .every()
        };
        assert_eq!(every(3_000), Some(Duration::from_millis(750)));
        assert_eq!(every(100), Some(Duration::from_millis(250)));
        assert_eq!(every(3_600_000), Some(Duration::from_secs(60)));
        let off = ReaperSettings {
            idle_after: None,
            foreign: true,
        };
        assert_eq!(off.every(), None);
    }
}
