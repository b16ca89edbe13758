//! The load processes the driver spawns (`cortex-bench publish|watch|consume|poll|churn`):
//! each runs many connections on tokio, stops by itself (every loop is bounded by a
//! count and a deadline), and reports on stdout as [`crate::wire::Line`]s.
//!
//! Tasks are numbered `0..count`; task `k` is addressed to agent
//! `<prefix><k % agents>` and carries `{"seq":k,"sent_us":…}` in its payload, so every
//! receiver knows which tasks it must see and can count each once.

pub(crate) mod churn;
pub(crate) mod conn;
pub(crate) mod consume;
pub(crate) mod poll;
pub(crate) mod publish;
pub(crate) mod watch;

use clap::Args;
use std::time::Duration;

/// Which tasks exist and whom they are for.
#[derive(Debug, Clone, Args)]
pub(crate) struct Plan {
    /// Tasks published in all.
    #[arg(long)]
    pub(crate) count: u64,
    /// Agents the tasks are spread over (round robin).
    #[arg(long, default_value_t = 1)]
    pub(crate) agents: u64,
    /// Agent names are this followed by their number.
    #[arg(long, default_value = "a")]
    pub(crate) prefix: String,
}

impl Plan {
    /// The name of agent `i`.
    pub(crate) fn agent(&self, i: u64) -> String {
        format!("{}{}", self.prefix, i % self.agents.max(1))
    }

    /// How many tasks agent `i` gets.
    pub(crate) fn tasks_for(&self, i: u64) -> u64 {
        let agents = self.agents.max(1);
        let i = i % agents;
        self.count / agents + u64::from(i < self.count % agents)
    }
}

/// How long a receiving load runs at most, counted from when its connections are up.
pub(crate) fn deadline(run_secs: f64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs_f64(run_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_spread_round_robin() {
        let plan = Plan {
            count: 10,
            agents: 4,
            prefix: "w".into(),
        };
        assert_eq!(plan.agent(5), "w1");
        let per_agent: Vec<u64> = (0..4).map(|i| plan.tasks_for(i)).collect();
        assert_eq!(per_agent, [3, 3, 2, 2]);
        assert_eq!(per_agent.iter().sum::<u64>(), 10);
    }
}
