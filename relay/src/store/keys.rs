//! Every Redis key and consumer group name the relay uses: the README's "Redis layout"
//! section, as code (a test below checks the two agree). Nothing else in the relay
//! spells a key.
//!
//! The streams' names come from cortex-shared, which the dashboard shares; they are
//! listed here so that this file is the whole layout.

use cortex_shared::{AgentName, EntryId, Priority};

/// A task stream per priority: `cortex:tasks:critical`, `…:high`, `…:normal`,
/// `…:low`.
pub(crate) fn task_stream(priority: Priority) -> &'static str {
    priority.stream()
}

/// The four task streams, most urgent first.
pub(crate) fn task_streams() -> [&'static str; 4] {
    Priority::ALL.map(Priority::stream)
}

/// Agents' heartbeats.
pub(crate) const HEARTBEATS: &str = cortex_shared::HEARTBEAT_STREAM;

/// Dead letters.
pub(crate) const DLQ: &str = cortex_shared::DLQ_STREAM;

/// DLQ retries and deletions, for every relay's watchers (see [`super::dlq::events`]).
pub(crate) const EVENTS: &str = "cortex:events";

/// Lifecycle records of every task, capped by count and age (README, Task lifecycle).
pub(crate) const LIFECYCLE: &str = "cortex:lifecycle";

/// One task's lifecycle records (a list), which are also the index by task id:
/// `cortex:task:<task id>`.
pub(crate) fn task_record(task_id: &str) -> String {
    format!("cortex:task:{task_id}")
}

/// The ids of a trace's tasks (a set): `cortex:trace:<correlation id>`.
pub(crate) fn trace(correlation_id: &str) -> String {
    format!("cortex:trace:{correlation_id}")
}

/// An agent's outcome counters of one minute (a hash: `done`, `failed`, `dead`,
/// `timed_out`), `minute_ms` its start (unix ms):
/// `cortex:outcomes:<agent>:<minute unix ms>` (see [`super::outcomes`]).
pub(crate) fn outcomes(agent: &str, minute_ms: u64) -> String {
    format!("{OUTCOMES_PREFIX}{agent}:{minute_ms}")
}

/// What every [`outcomes`] key starts with (the scripts add `<agent>:<minute>`).
pub(crate) const OUTCOMES_PREFIX: &str = "cortex:outcomes:";

/// What `SCAN … MATCH` looks for to find the cortex streams.
pub(crate) const ALL: &str = "cortex:*";

/// The prefix of an agent's consumer group.
pub(crate) const GROUP_PREFIX: &str = "agent:";

/// The consumer group of `agent` on every task stream: `agent:<name>`. (The original
/// shared `agents` group is never touched: no agent name makes `agent:<name>` equal
/// it.)
pub(crate) fn group(agent: &AgentName) -> String {
    format!("{GROUP_PREFIX}{agent}")
}

/// The agent whose group `group` is, if it is an agent's group.
pub(crate) fn agent_of_group(group: &str) -> Option<&str> {
    group.strip_prefix(GROUP_PREFIX)
}

/// A relay consumer's last sign of life (unix ms as text):
/// `cortex:consumers:alive:<agent>:<consumer>`. `XINFO CONSUMERS` cannot say it before
/// Redis 7.2, where only reads that return entries reset a consumer's idle time.
pub(crate) fn consumer_alive(agent: &str, consumer: &str) -> String {
    format!("cortex:consumers:alive:{agent}:{consumer}")
}

/// The marker that a malformed entry was dead-lettered once, whichever group read it:
/// `cortex:dlq:once:<stream>:<entry id>`.
pub(crate) fn once_marker(stream: &str, entry_id: &str) -> String {
    format!("cortex:dlq:once:{stream}:{entry_id}")
}

/// The tombstone of a retried or deleted letter (`retried` or `deleted`), so that a
/// second action on it is a 409 rather than a 404: `cortex:dlq:gone:<dlq id>`.
pub(crate) fn tombstone(dlq_id: &EntryId) -> String {
    format!("cortex:dlq:gone:{dlq_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's "Redis layout" section.
    fn layout() -> &'static str {
        let readme = include_str!("../../../README.md");
        let start = readme
            .find("\n## Redis layout\n")
            .expect("a Redis layout section");
        let rest = &readme[start + 1..];
        let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
        &rest[..end]
    }

    #[test]
    fn every_key_is_in_the_readmes_redis_layout() {
        let pink = AgentName::parse("pink").unwrap();
        let id = EntryId::new(1_704_556_900_000, 0);
        let documented = [
            // The README names the task streams as `cortex:tasks:critical`, `…:high`, …
            (
                task_stream(Priority::Critical).to_owned(),
                "`cortex:tasks:critical`",
            ),
            (HEARTBEATS.to_owned(), "`cortex:heartbeats`"),
            (DLQ.to_owned(), "`cortex:tasks:dlq`"),
            (EVENTS.to_owned(), "`cortex:events`"),
            (group(&pink), "`agent:<name>`"),
            (
                consumer_alive("pink", "p1"),
                "`cortex:consumers:alive:<agent>:<consumer>`",
            ),
            (
                once_marker(DLQ, "5-0"),
                "`cortex:dlq:once:<stream>:<entry id>`",
            ),
            (tombstone(&id), "`cortex:dlq:gone:<dlq id>`"),
            (LIFECYCLE.to_owned(), "`cortex:lifecycle`"),
            (task_record("task-001"), "`cortex:task:<task id>`"),
            (trace("c-1"), "`cortex:trace:<correlation id>`"),
            (
                outcomes("pink", 60_000),
                "`cortex:outcomes:<agent>:<minute unix ms>`",
            ),
            (ALL.to_owned(), "`cortex:*`"),
        ];
        let layout = layout();
        for (key, pattern) in documented {
            assert!(
                layout.contains(pattern),
                "README's Redis layout lacks {pattern}"
            );
            // The pattern is the key with its variable parts named.
            let fixed = pattern.trim_matches('`').split('<').next().unwrap();
            assert!(key.starts_with(fixed), "{key} is not {pattern}");
        }
        for (p, suffix) in Priority::ALL
            .iter()
            .zip(["critical", "high", "normal", "low"])
        {
            assert_eq!(task_stream(*p), format!("cortex:tasks:{suffix}"));
            assert!(layout.contains(&format!(":{suffix}`")), "{suffix}");
        }
        assert_eq!(task_streams()[0], "cortex:tasks:critical");
        assert_eq!(group(&pink), "agent:pink");
        assert_eq!(agent_of_group("agent:pink"), Some("pink"));
        assert_eq!(agent_of_group("agents"), None);
        // The original shared group is no agent's.
        assert_ne!(group(&AgentName::parse("agents").unwrap()), "agents");
        assert_eq!(
            consumer_alive("pink", "p1"),
            "cortex:consumers:alive:pink:p1"
        );
        assert_eq!(once_marker("s", "5-0"), "cortex:dlq:once:s:5-0");
        assert_eq!(tombstone(&id), "cortex:dlq:gone:1704556900000-0");
        assert_eq!(task_record("t-1"), "cortex:task:t-1");
        assert_eq!(trace("c-1"), "cortex:trace:c-1");
        assert_eq!(outcomes("pink", 60_000), "cortex:outcomes:pink:60000");
    }
}
