//! Reading where tasks are (README, "Tasks and traces"): a task's lifecycle records
//! (`cortex:task:<id>`), its entries, the groups on the task streams and their pending
//! entries, the dead letters records name, the agents heartbeats name, a trace's task
//! ids, and ranges of entries and of pending lists. Whatever one call asks for
//! ([`Ask`]) goes in one pipeline: one round trip, however many tasks and agents.
//!
//! A key that does not exist, a group that does not exist (`NOGROUP`) or a key of
//! another type reads as nothing, never as a failure of the whole call; only a Redis
//! that cannot be reached fails it.

use super::keys;
use super::reply::{range, Entry};
use super::value::{int, items, text};
use super::xinfo::Pairs;
use cortex_shared::lifecycle::LifecycleRecord;
use cortex_shared::{DeadLetter, EntryId};
use redis::aio::ConnectionLike;
use redis::{RedisResult, Value};

/// A task's entry in one group's pending list (`XPENDING`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// The consumer holding it.
    pub(crate) consumer: String,
    /// Milliseconds since it was last delivered.
    pub(crate) idle_ms: u64,
    /// Deliveries Redis counted.
    pub(crate) deliveries: u64,
}

/// One consumer group of a stream (`XINFO GROUPS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    /// Its name.
    pub(crate) name: String,
    /// Its last delivered id.
    pub(crate) last_delivered: EntryId,
}

/// Entries of `stream` from `start` (as Redis takes it: `-`, an id, or `(id`) to `+`,
/// at most `count`, oldest first (`XRANGE`); or, `newest_first`, from `start` (`+`,
/// an id, `(id`) down to `-` (`XREVRANGE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RangeAsk {
    /// The stream.
    pub(crate) stream: String,
    /// Where to start.
    pub(crate) start: String,
    /// How many at most.
    pub(crate) count: u64,
    /// Newest first.
    pub(crate) newest_first: bool,
}

/// Entries of a group's pending list from `start` (`-`, an id, `(id`) to `+`, at most
/// `count`, oldest first (`XPENDING <stream> <group> <start> + <count>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingRangeAsk {
    /// The stream.
    pub(crate) stream: String,
    /// The group.
    pub(crate) group: String,
    /// Where to start.
    pub(crate) start: String,
    /// How many at most.
    pub(crate) count: u64,
}

/// What one [`read`] asks Redis, in one pipeline.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ask {
    /// Tasks whose lifecycle records to read (`LRANGE cortex:task:<id> 0 -1`).
    pub(crate) records: Vec<String>,
    /// Entries to read (`XRANGE <stream> <id> <id>`).
    pub(crate) entries: Vec<(String, EntryId)>,
    /// Read the groups of every task stream (`XINFO GROUPS`).
    pub(crate) groups: bool,
    /// Entries whose pending state to read in a group: stream, group, entry id
    /// (`XPENDING <stream> <group> <id> <id> 1`).
    pub(crate) pending: Vec<(String, String, EntryId)>,
    /// Dead letters to read (`XRANGE cortex:tasks:dlq <id> <id>`).
    pub(crate) letters: Vec<EntryId>,
    /// The agents of the newest this many heartbeats.
    pub(crate) heartbeats: Option<u64>,
    /// Traces whose task ids to read (`SMEMBERS cortex:trace:<id>`).
    pub(crate) traces: Vec<String>,
    /// Ranges of entries.
    pub(crate) ranges: Vec<RangeAsk>,
    /// Ranges of pending lists.
    pub(crate) pending_ranges: Vec<PendingRangeAsk>,
}

/// What Redis answered to an [`Ask`], each list in the order it was asked.
#[derive(Debug, Default)]
pub(crate) struct Got {
    /// Each task's records, oldest first (items that do not decode left out).
    pub(crate) records: Vec<Vec<LifecycleRecord>>,
    /// Each entry, if it is there.
    pub(crate) entries: Vec<Option<Entry>>,
    /// The groups of each task stream (most urgent first; none for a stream that does
    /// not exist). Empty unless [`Ask::groups`].
    pub(crate) groups: Vec<(&'static str, Vec<Group>)>,
    /// Each entry's pending state, if it is pending there.
    pub(crate) pending: Vec<Option<Pending>>,
    /// Each letter, if it is in the DLQ.
    pub(crate) letters: Vec<Option<DeadLetter>>,
    /// The agents of the heartbeats read, newest first, each once.
    pub(crate) heartbeat_agents: Vec<String>,
    /// Each trace's task ids.
    pub(crate) traces: Vec<Vec<String>>,
    /// Each range's entries (those whose id does not parse left out).
    pub(crate) ranges: Vec<Vec<(EntryId, Entry)>>,
    /// Each pending range's entries.
    pub(crate) pending_ranges: Vec<Vec<(EntryId, Pending)>>,
}

/// Reads what `ask` asks, in one round trip.
pub(crate) async fn read<C: ConnectionLike>(conn: &mut C, ask: &Ask) -> RedisResult<Got> {
    let streams = keys::task_streams();
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    let mut asked = 0usize;
    for task_id in &ask.records {
        pipe.cmd("LRANGE")
            .arg(keys::task_record(task_id))
            .arg(0)
            .arg(-1);
        asked += 1;
    }
    for (stream, id) in &ask.entries {
        let id = id.to_string();
        pipe.cmd("XRANGE").arg(stream).arg(&id).arg(&id);
        asked += 1;
    }
    if ask.groups {
        for stream in streams {
            pipe.cmd("XINFO").arg("GROUPS").arg(stream);
            asked += 1;
        }
    }
    for (stream, group, id) in &ask.pending {
        let id = id.to_string();
        pipe.cmd("XPENDING")
            .arg(stream)
            .arg(group)
            .arg(&id)
            .arg(&id)
            .arg(1);
        asked += 1;
    }
    for id in &ask.letters {
        let id = id.to_string();
        pipe.cmd("XRANGE").arg(keys::DLQ).arg(&id).arg(&id);
        asked += 1;
    }
    if let Some(count) = ask.heartbeats {
        pipe.cmd("XREVRANGE")
            .arg(keys::HEARTBEATS)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count);
        asked += 1;
    }
    for trace in &ask.traces {
        pipe.cmd("SMEMBERS").arg(keys::trace(trace));
        asked += 1;
    }
    for r in &ask.ranges {
        let (command, end) = if r.newest_first {
            ("XREVRANGE", "-")
        } else {
            ("XRANGE", "+")
        };
        pipe.cmd(command)
            .arg(&r.stream)
            .arg(&r.start)
            .arg(end)
            .arg("COUNT")
            .arg(r.count);
        asked += 1;
    }
    for r in &ask.pending_ranges {
        pipe.cmd("XPENDING")
            .arg(&r.stream)
            .arg(&r.group)
            .arg(&r.start)
            .arg("+")
            .arg(r.count);
        asked += 1;
    }
    let replies: Vec<RedisResult<Value>> = if asked == 0 {
        Vec::new()
    } else {
        pipe.query_async(conn).await?
    };
    let mut replies = replies.into_iter().map(|reply| match reply {
        Ok(value) => Some(value),
        // Only what concerns the one key: a missing group, a key of another type.
        Err(e) => {
            tracing::debug!(error = %e, "task read: a command failed");
            None
        }
    });
    let mut next = || replies.next().flatten();
    let mut got = Got::default();
    for _ in &ask.records {
        got.records.push(next().map(records_of).unwrap_or_default());
    }
    for _ in &ask.entries {
        got.entries.push(next().and_then(first_entry));
    }
    if ask.groups {
        for stream in streams {
            let groups = next().map(groups_of).unwrap_or_default();
            got.groups.push((stream, groups));
        }
    }
    for _ in &ask.pending {
        let pending = next().map(pending_of).unwrap_or_default();
        got.pending.push(pending.into_iter().next().map(|(_, p)| p));
    }
    for id in &ask.letters {
        let entry = next().and_then(first_entry);
        got.letters
            .push(entry.map(|entry| super::dlq::letter_of(id, &entry)));
    }
    if ask.heartbeats.is_some() {
        got.heartbeat_agents = next().map(heartbeat_agents).unwrap_or_default();
    }
    for _ in &ask.traces {
        let ids = next().map(items).unwrap_or_default();
        got.traces.push(
            ids.iter()
                .filter_map(|id| text(id).map(|t| t.into_owned()))
                .collect(),
        );
    }
    for _ in &ask.ranges {
        let entries = next().and_then(|v| range(v).ok()).unwrap_or_default();
        got.ranges.push(
            entries
                .into_iter()
                .filter_map(|e| Some((e.id.parse().ok()?, e)))
                .collect(),
        );
    }
    for _ in &ask.pending_ranges {
        got.pending_ranges
            .push(next().map(pending_of).unwrap_or_default());
    }
    Ok(got)
}

/// A `LRANGE` of lifecycle records: each item the JSON of a [`LifecycleRecord`].
fn records_of(reply: Value) -> Vec<LifecycleRecord> {
    items(reply)
        .iter()
        .filter_map(|item| {
            let record = super::lifecycle::decode_item(super::value::bytes(item)?);
            if record.is_none() {
                tracing::debug!("a lifecycle record that does not decode");
            }
            record
        })
        .collect()
}

/// The first entry of a range reply.
fn first_entry(reply: Value) -> Option<Entry> {
    range(reply).ok()?.into_iter().next()
}

/// An `XINFO GROUPS` reply.
fn groups_of(reply: Value) -> Vec<Group> {
    items(reply)
        .into_iter()
        .filter_map(|group| {
            let g = Pairs::of(group);
            Some(Group {
                name: g.text("name")?,
                last_delivered: g
                    .text("last-delivered-id")
                    .and_then(|id| id.parse().ok())
                    .unwrap_or(EntryId::ZERO),
            })
        })
        .collect()
}

/// An extended `XPENDING` reply: `[[id, consumer, idle, deliveries], …]`.
fn pending_of(reply: Value) -> Vec<(EntryId, Pending)> {
    items(reply)
        .into_iter()
        .filter_map(|row| {
            let row = items(row);
            let [id, consumer, idle, deliveries] = row.as_slice() else {
                return None;
            };
            let id = text(id)?.parse().ok()?;
            Some((
                id,
                Pending {
                    consumer: text(consumer)?.into_owned(),
                    idle_ms: int(idle).and_then(|i| u64::try_from(i).ok()).unwrap_or(0),
                    deliveries: int(deliveries)
                        .and_then(|i| u64::try_from(i).ok())
                        .unwrap_or(0),
                },
            ))
        })
        .collect()
}

/// The agents of a range of heartbeats, each once, in the range's order.
fn heartbeat_agents(reply: Value) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    range(reply)
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| text(entry.field("agent")?).map(|a| a.into_owned()))
        .filter(|agent| cortex_shared::AgentName::parse(agent).is_ok())
        .filter(|agent| seen.insert(agent.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn pending_rows_read_and_bad_ones_are_left_out() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("5-0"),
                bulk("pink-1"),
                Value::Int(300),
                Value::Int(2),
            ]),
            Value::Array(vec![
                bulk("x"),
                bulk("pink-1"),
                Value::Int(1),
                Value::Int(1),
            ]),
            Value::Array(vec![bulk("6-0")]),
        ]);
        assert_eq!(
            pending_of(reply),
            [(
                EntryId::new(5, 0),
                Pending {
                    consumer: "pink-1".into(),
                    idle_ms: 300,
                    deliveries: 2
                }
            )]
        );
        assert!(pending_of(Value::Nil).is_empty());
    }

    #[test]
    fn records_that_do_not_decode_are_left_out() {
        let good = r#"{"at_ms":1,"event":"published","task_id":"t","stream":"s","entry_id":"1-0"}"#;
        let reply = Value::Array(vec![
            bulk(good),
            bulk("{not json"),
            bulk(r#"{"event":"x"}"#),
        ]);
        let records = records_of(reply);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].task_id, "t");
    }

    #[test]
    fn groups_read_their_names_and_positions() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("name"),
                bulk("agent:pink"),
                bulk("last-delivered-id"),
                bulk("7-1"),
            ]),
            Value::Map(vec![(bulk("name"), bulk("workers"))]),
        ]);
        assert_eq!(
            groups_of(reply),
            [
                Group {
                    name: "agent:pink".into(),
                    last_delivered: EntryId::new(7, 1)
                },
                Group {
                    name: "workers".into(),
                    last_delivered: EntryId::ZERO
                }
            ]
        );
    }
}
