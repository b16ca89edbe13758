//! Agents: `GET /api/v1/agents` lists every agent seen in the newest
//! [`HEARTBEAT_SCAN`] heartbeats or owning a consumer group (`agent:<name>`) on a task
//! stream, with its presence, its last heartbeat, its pending tasks and consumers, and
//! whether it is online while some of its tasks sit with a dead consumer (`stuck`).
//!
//! `GET /api/v1/agents/{name}/outcomes`: the agent's done, failed, dead and timed-out
//! tasks per minute over the last hour, and their sums over 5 minutes and the hour,
//! from the counters the lifecycle record keeps ([`crate::store::outcomes`]).
//!
//! Presence is computed here from Redis at each request, with the same thresholds the
//! [`crate::engine::presence`] tracker uses to send `presence` frames.

use super::ApiPath;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::groups::last_alive;
use crate::store::keys;
use crate::store::streams::newest_heartbeats;
use crate::store::xinfo::stream_metrics;
use axum::extract::State;
use axum::Json;
use cortex_shared::lifecycle::AgentOutcomes;
use cortex_shared::rest::{AgentConsumer, AgentInfo, AgentsReply, Presence};
use cortex_shared::AgentName;
use cortex_shared::JsonObject;
use std::collections::BTreeMap;

/// Heartbeats read, newest first, to find agents and their last heartbeat.
pub const HEARTBEAT_SCAN: u64 = 10_000;

#[derive(Debug, Default)]
struct Seen {
    heartbeat: Option<(u64, i64, JsonObject)>,
    pending: u64,
    consumers: BTreeMap<String, (u64, u64)>,
}

/// `GET /api/v1/agents/{name}/outcomes` (400 `invalid_agent` for a name no agent can
/// have; an agent nothing was counted for has zeros).
pub async fn outcomes(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<AgentOutcomes>, ApiError> {
    let agent = AgentName::parse(&name)
        .map_err(|e| ApiError::bad_request("invalid_agent", format!("agent: {e}")))?;
    let mut conn = state.services.redis.clone();
    let reply = crate::store::outcomes::read(&mut conn, agent.as_str(), super::now_ms()).await?;
    Ok(Json(reply))
}

/// `GET /api/v1/agents`.
pub async fn list(State(state): State<AppState>) -> Result<Json<AgentsReply>, ApiError> {
    let mut conn = state.services.redis.clone();
    let settings = state.api;
    let mut agents: BTreeMap<String, Seen> = BTreeMap::new();
    for (id, hb) in newest_heartbeats(&mut conn, "+", HEARTBEAT_SCAN).await? {
        let seen = agents.entry(hb.agent).or_default();
        if seen.heartbeat.is_none() {
            seen.heartbeat = Some((id.ms, hb.time, hb.status));
        }
    }
    let streams: Vec<String> = keys::task_streams().map(str::to_owned).to_vec();
    for stream in stream_metrics(&mut conn, &streams).await? {
        for group in stream.groups {
            let Some(agent) = keys::agent_of_group(&group.name) else {
                continue;
            };
            let seen = agents.entry(agent.to_owned()).or_default();
            seen.pending += group.pending;
            for c in group.consumers {
                let entry = seen.consumers.entry(c.name).or_insert((0, u64::MAX));
                entry.0 += c.pending;
                // Alive on any stream is alive: it reads all four.
                entry.1 = entry.1.min(c.idle_ms);
            }
        }
    }
    let now = super::now_ms();
    // A relay's consumer also says when it was last alive (Redis before 7.2 only
    // resets idle on reads that return entries): the later sign counts.
    let names: Vec<(String, String)> = agents
        .iter()
        .flat_map(|(agent, seen)| seen.consumers.keys().map(|c| (agent.clone(), c.clone())))
        .collect();
    let alive = last_alive(&mut conn, &names).await?;
    for ((agent, consumer), last) in names.iter().zip(alive) {
        let (Some(last), Some(seen)) = (last, agents.get_mut(agent)) else {
            continue;
        };
        if let Some(entry) = seen.consumers.get_mut(consumer) {
            entry.1 = entry.1.min(now.saturating_sub(last));
        }
    }
    let stale = settings.stale_after.as_millis() as u64;
    let offline = settings.offline_after.as_millis() as u64;
    let dead_after = settings.consumer_dead_after.as_millis() as u64;
    let agents = agents
        .into_iter()
        .map(|(name, seen)| {
            let presence = match &seen.heartbeat {
                Some((ms, _, _)) => Presence::of_age(now.saturating_sub(*ms), stale, offline),
                None => Presence::Offline,
            };
            let consumers: Vec<AgentConsumer> = seen
                .consumers
                .into_iter()
                .map(|(name, (pending, idle_ms))| AgentConsumer {
                    name,
                    pending,
                    idle_ms,
                    alive: idle_ms < dead_after,
                })
                .collect();
            let pending_on_dead_consumers = consumers
                .iter()
                .filter(|c| !c.alive)
                .map(|c| c.pending)
                .sum();
            let (last_ms, last_time, status) = match seen.heartbeat {
                Some((ms, time, status)) => (Some(ms), Some(time), Some(status)),
                None => (None, None, None),
            };
            AgentInfo {
                name,
                presence,
                last_heartbeat_ms: last_ms,
                last_heartbeat_time: last_time,
                status,
                pending: seen.pending,
                consumer_alive: consumers.iter().any(|c| c.alive),
                consumers,
                pending_on_dead_consumers,
                stuck: presence == Presence::Online && pending_on_dead_consumers > 0,
            }
        })
        .collect();
    Ok(Json(AgentsReply {
        agents,
        stale_after_ms: stale,
        offline_after_ms: offline,
        consumer_dead_after_ms: dead_after,
    }))
}
