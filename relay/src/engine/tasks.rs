//! Finding tasks and telling where they are (README, "Tasks and traces"): a task by its
//! id or by its entry, the tasks of an agent in one state, a trace as a tree. Each
//! reads Redis through [`crate::store::tasks`] in a fixed number of round trips
//! (pipelines over every task and agent asked about) and derives the states with the
//! rule in [`super::task_state`].
//!
//! By id: the task's lifecycle records (`cortex:task:<id>`) name its entries; the
//! newest entry still in its stream is the task. A task without records (published
//! and consumed by agents that never touch the relay, or older than the records'
//! retention) is looked for among the newest [`TaskSettings::scan_entries`] entries of
//! each task stream: not O(1), and not found when older.

use super::task_state::{entries_named, for_every_agent, letters_named, timeline, Facts};
use super::task_state::{GroupOnStream, Pending};
use crate::store::codec::decode_task_fields;
use crate::store::keys;
use crate::store::reply::{text, Entry};
use crate::store::tasks::{read, Ask, Got, Group, PendingRangeAsk, RangeAsk};
use cortex_shared::lifecycle::{
    LifecycleRecord, TaskAgentState, TaskListItem, TaskListReply, TaskReply, TaskState, TaskView,
    TraceNode, TraceReply,
};
use cortex_shared::{AgentName, DeadLetter, EntryId, Priority, TaskMessage};
use redis::aio::ConnectionLike;
use redis::RedisResult;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

/// Heartbeats read, newest first, to find the agents a task for every agent is
/// listed for (as many as `GET /api/v1/agents` reads).
pub(crate) const HEARTBEAT_SCAN: u64 = 10_000;

/// Entries read per stream and round trip when scanning (a task without records, a
/// waiting list).
const CHUNK: u64 = 1_000;

/// Entries a list request looks at, at most, before it answers with what it found
/// (and a cursor to go on from).
pub(crate) const LIST_SCAN_CAP: usize = 100_000;

/// Tasks of one trace shown at most.
pub(crate) const MAX_TRACE_TASKS: usize = 1_000;

/// What the task reads take from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskSettings {
    /// A task pending this long is due again (`retrying`).
    pub(crate) visibility_ms: u64,
    /// Entries of each task stream, newest first, searched for a task id without
    /// lifecycle records.
    pub(crate) scan_entries: u64,
}

/// A task found: its entry, decoded, and its records.
#[derive(Debug, Clone)]
struct Found {
    stream: &'static str,
    entry_id: EntryId,
    task: TaskMessage,
    records: Vec<LifecycleRecord>,
}

/// The task stream named `stream`, if it is one.
pub(crate) fn task_stream(stream: &str) -> Option<&'static str> {
    keys::task_streams().into_iter().find(|s| *s == stream)
}

fn rank_of(stream: &str) -> usize {
    keys::task_streams()
        .iter()
        .position(|s| *s == stream)
        .unwrap_or(0)
}

/// `entry` of `stream` as a task, if it decodes.
fn decode(stream: &str, entry: &Entry) -> Option<TaskMessage> {
    match decode_task_fields(entry.fields.as_deref().unwrap_or_default()) {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::debug!(stream, entry_id = %entry.id, error = %e, "not a task");
            None
        }
    }
}

/// `GET /api/v1/tasks/{task_id}`: the task with this id; `None` when there is none.
pub(crate) async fn by_id<C: ConnectionLike>(
    conn: &mut C,
    settings: TaskSettings,
    task_id: &str,
) -> RedisResult<Option<TaskReply>> {
    let (mut found, groups) = locate(conn, &[task_id.to_owned()]).await?;
    let found = match found.pop().flatten() {
        Some(found) => found,
        None => match scan_for(conn, settings, task_id).await? {
            Some(found) => found,
            None => return Ok(None),
        },
    };
    let groups = match groups {
        Some(groups) => groups,
        None => {
            let ask = Ask {
                groups: true,
                ..Ask::default()
            };
            read(conn, &ask).await?.groups
        }
    };
    let mut replies = describe(conn, settings, vec![found], &groups).await?;
    Ok(replies.pop())
}

/// `GET /api/v1/tasks/by-entry/{stream}/{entry_id}`: the task at this entry of a task
/// stream; `None` when it is not there or is not a task.
pub(crate) async fn by_entry<C: ConnectionLike>(
    conn: &mut C,
    settings: TaskSettings,
    stream: &'static str,
    entry_id: EntryId,
) -> RedisResult<Option<TaskReply>> {
    let ask = Ask {
        entries: vec![(stream.to_owned(), entry_id)],
        groups: true,
        ..Ask::default()
    };
    let got = read(conn, &ask).await?;
    let Some(task) = got
        .entries
        .first()
        .and_then(Option::as_ref)
        .and_then(|e| decode(stream, e))
    else {
        return Ok(None);
    };
    let ask = Ask {
        records: vec![task.id.clone()],
        ..Ask::default()
    };
    let records = read(conn, &ask).await?.records.pop().unwrap_or_default();
    let found = Found {
        stream,
        entry_id,
        task,
        records,
    };
    let mut replies = describe(conn, settings, vec![found], &got.groups).await?;
    Ok(replies.pop())
}

/// Finds each of `task_ids` by its records (two round trips for all of them): the
/// newest entry the records name that is still in its stream and holds a task with
/// that id. Also the task streams' groups, when anything was found.
async fn locate<C: ConnectionLike>(
    conn: &mut C,
    task_ids: &[String],
) -> RedisResult<(Vec<Option<Found>>, Option<Vec<(&'static str, Vec<Group>)>>)> {
    let ask = Ask {
        records: task_ids.to_vec(),
        ..Ask::default()
    };
    let records = read(conn, &ask).await?.records;
    // Every entry each task's records name, newest first.
    let candidates: Vec<Vec<(&'static str, EntryId)>> = records
        .iter()
        .map(|records| {
            let mut named: Vec<(&'static str, EntryId)> = entries_named(records)
                .into_iter()
                .filter_map(|(stream, id)| Some((task_stream(&stream)?, id)))
                .collect();
            named.sort_by(|a, b| b.1.cmp(&a.1).then(rank_of(a.0).cmp(&rank_of(b.0))));
            named
        })
        .collect();
    if candidates.iter().all(Vec::is_empty) {
        return Ok((task_ids.iter().map(|_| None).collect(), None));
    }
    let ask = Ask {
        entries: candidates
            .iter()
            .flatten()
            .map(|(s, id)| ((*s).to_owned(), *id))
            .collect(),
        groups: true,
        ..Ask::default()
    };
    let got = read(conn, &ask).await?;
    let mut entries = got.entries.into_iter();
    let mut found = Vec::with_capacity(task_ids.len());
    for ((task_id, candidates), records) in task_ids.iter().zip(&candidates).zip(records) {
        let mut newest = None;
        for (stream, id) in candidates {
            let entry = entries.next().flatten();
            if newest.is_some() {
                continue;
            }
            let task = entry.as_ref().and_then(|e| decode(stream, e));
            if let Some(task) = task.filter(|t| t.id == *task_id) {
                newest = Some((*stream, *id, task));
            }
        }
        found.push(newest.map(|(stream, entry_id, task)| Found {
            stream,
            entry_id,
            task,
            records: records.clone(),
        }));
    }
    Ok((found, Some(got.groups)))
}

/// Looks for `task_id` among the newest [`TaskSettings::scan_entries`] entries of each
/// task stream, [`CHUNK`] per stream and round trip; the newest entry holding it.
async fn scan_for<C: ConnectionLike>(
    conn: &mut C,
    settings: TaskSettings,
    task_id: &str,
) -> RedisResult<Option<Found>> {
    struct Scan {
        stream: &'static str,
        start: String,
        left: u64,
        done: bool,
    }
    let mut scans: Vec<Scan> = keys::task_streams()
        .into_iter()
        .map(|stream| Scan {
            stream,
            start: "+".into(),
            left: settings.scan_entries,
            done: settings.scan_entries == 0,
        })
        .collect();
    let mut best: Option<(&'static str, EntryId, TaskMessage)> = None;
    while scans.iter().any(|s| !s.done) {
        let asked: Vec<usize> = (0..scans.len()).filter(|i| !scans[*i].done).collect();
        let ask = Ask {
            ranges: asked
                .iter()
                .map(|i| RangeAsk {
                    stream: scans[*i].stream.to_owned(),
                    start: scans[*i].start.clone(),
                    count: CHUNK.min(scans[*i].left),
                    newest_first: true,
                })
                .collect(),
            ..Ask::default()
        };
        let got = read(conn, &ask).await?;
        for (i, entries) in asked.into_iter().zip(got.ranges) {
            let scan = &mut scans[i];
            let asked_for = CHUNK.min(scan.left);
            scan.left -= entries.len() as u64;
            if (entries.len() as u64) < asked_for || scan.left == 0 {
                scan.done = true;
            }
            for (id, entry) in &entries {
                if best.as_ref().is_some_and(|(_, b, _)| id < b) {
                    // Older than a match already found: nothing newer here.
                    scan.done = true;
                    break;
                }
                let same = entry
                    .field("id")
                    .and_then(text)
                    .is_some_and(|id| id == task_id);
                if let Some(task) = same.then(|| decode(scan.stream, entry)).flatten() {
                    best = Some((scan.stream, *id, task));
                    scan.done = true;
                    break;
                }
            }
            if let Some((id, _)) = entries.last() {
                scan.start = format!("({id}");
            }
        }
    }
    Ok(best.map(|(stream, entry_id, task)| Found {
        stream,
        entry_id,
        task,
        records: Vec::new(),
    }))
}

/// The replies for `found` (one round trip for all): their pending state in every
/// group of their streams, the letters their records name, the agents heartbeats
/// name when one is for every agent.
async fn describe<C: ConnectionLike>(
    conn: &mut C,
    settings: TaskSettings,
    found: Vec<Found>,
    groups: &[(&'static str, Vec<Group>)],
) -> RedisResult<Vec<TaskReply>> {
    let groups_of = |stream: &str| -> &[Group] {
        groups
            .iter()
            .find(|(s, _)| *s == stream)
            .map_or(&[], |(_, g)| g.as_slice())
    };
    let mut ask = Ask::default();
    for f in &found {
        for g in groups_of(f.stream) {
            ask.pending
                .push((f.stream.to_owned(), g.name.clone(), f.entry_id));
        }
        ask.letters.extend(letters_named(&f.records));
    }
    ask.letters.sort();
    ask.letters.dedup();
    if found.iter().any(|f| for_every_agent(&f.task.to)) {
        ask.heartbeats = Some(HEARTBEAT_SCAN);
    }
    let got = read(conn, &ask).await?;
    let known = known_agents(groups, &got);
    let letters: HashMap<String, DeadLetter> = ask
        .letters
        .iter()
        .zip(got.letters)
        .filter_map(|(id, letter)| Some((id.to_string(), letter?)))
        .collect();
    let mut pending = got.pending.into_iter();
    let now_ms = crate::metrics::unix_ms();
    let mut replies = Vec::with_capacity(found.len());
    for f in found {
        let on_stream: Vec<GroupOnStream> = groups_of(f.stream)
            .iter()
            .map(|g| GroupOnStream {
                name: g.name.clone(),
                last_delivered: g.last_delivered,
                pending: pending.next().flatten(),
            })
            .collect();
        let facts = Facts {
            stream: f.stream,
            entry_id: f.entry_id,
            to: &f.task.to,
            groups: &on_stream,
            known_agents: &known,
            records: &f.records,
            letters: &letters,
            now_ms,
            visibility_ms: settings.visibility_ms,
        };
        let agents = facts.agent_states();
        let mut entries = vec![(f.stream.to_owned(), f.entry_id)];
        for named in entries_named(&f.records) {
            if !entries.contains(&named) {
                entries.push(named);
            }
        }
        replies.push(TaskReply {
            timeline: timeline(&f.records, &entries),
            agents,
            task: TaskView {
                task: f.task,
                stream: f.stream.to_owned(),
                entry_id: f.entry_id.to_string(),
            },
        });
    }
    Ok(replies)
}

/// Every agent known: owners of groups `agent:<name>` on any task stream, and the
/// agents of the heartbeats read.
fn known_agents(groups: &[(&'static str, Vec<Group>)], got: &Got) -> BTreeSet<String> {
    groups
        .iter()
        .flat_map(|(_, groups)| groups.iter())
        .filter_map(|g| keys::agent_of_group(&g.name))
        .filter(|a| AgentName::parse(a).is_ok())
        .map(str::to_owned)
        .chain(got.heartbeat_agents.iter().cloned())
        .collect()
}

/// `GET /api/v1/traces/{correlation_id}`: the trace's tasks as a tree; `None` when
/// the trace is not known.
pub(crate) async fn trace<C: ConnectionLike>(
    conn: &mut C,
    settings: TaskSettings,
    correlation_id: &str,
) -> RedisResult<Option<TraceReply>> {
    let ask = Ask {
        traces: vec![correlation_id.to_owned()],
        ..Ask::default()
    };
    let mut ids = read(conn, &ask).await?.traces.pop().unwrap_or_default();
    if ids.is_empty() {
        return Ok(None);
    }
    ids.sort();
    ids.truncate(MAX_TRACE_TASKS);
    let (found, groups) = locate(conn, &ids).await?;
    let found: Vec<Found> = found.into_iter().flatten().collect();
    let groups = groups.unwrap_or_default();
    let replies = describe(conn, settings, found, &groups).await?;
    Ok(Some(TraceReply {
        correlation_id: correlation_id.to_owned(),
        roots: tree(replies),
    })
    .filter(|t| !t.roots.is_empty()))
}

/// Tasks as trees by `parent_id`: a task whose parent is not among them is a root;
/// so is the oldest of tasks whose parents form a circle. Oldest first at each level.
fn tree(mut tasks: Vec<TaskReply>) -> Vec<TraceNode> {
    let key = |t: &TaskReply| {
        (
            t.task.entry_id.parse::<EntryId>().unwrap_or_default(),
            rank_of(&t.task.stream),
        )
    };
    tasks.sort_by_key(key);
    let index: HashMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.task.task.id.as_str(), i))
        .rev() // the oldest of two with one id wins
        .collect();
    let parent: Vec<Option<usize>> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = *index.get(t.task.task.parent_id.as_deref()?)?;
            (p != i).then_some(p)
        })
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
    for (i, p) in parent.iter().enumerate() {
        if let Some(p) = p {
            children[*p].push(i);
        }
    }
    let mut visited = vec![false; tasks.len()];
    let mut roots: Vec<usize> = (0..tasks.len()).filter(|i| parent[*i].is_none()).collect();
    let mut order: Vec<usize> = Vec::new();
    // Mark what the roots reach; whatever is left hangs in circles.
    fn reach(i: usize, children: &[Vec<usize>], visited: &mut [bool]) {
        let mut stack = vec![i];
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut visited[i], true) {
                stack.extend(&children[i]);
            }
        }
    }
    for r in &roots {
        reach(*r, &children, &mut visited);
    }
    for i in 0..tasks.len() {
        if !visited[i] {
            roots.push(i);
            reach(i, &children, &mut visited);
        }
    }
    roots.sort();
    order.extend(&roots);
    let mut slots: Vec<Option<TaskReply>> = tasks.into_iter().map(Some).collect();
    let mut built = vec![false; slots.len()];
    fn build(
        i: usize,
        slots: &mut [Option<TaskReply>],
        children: &[Vec<usize>],
        built: &mut [bool],
    ) -> Option<TraceNode> {
        if std::mem::replace(&mut built[i], true) {
            return None;
        }
        let reply = slots[i].take()?;
        let kids = children[i]
            .iter()
            .filter_map(|c| build(*c, slots, children, built))
            .collect();
        Some(TraceNode {
            task: reply.task,
            agents: reply.agents,
            children: kids,
        })
    }
    order
        .into_iter()
        .filter_map(|r| build(r, &mut slots, &children, &mut built))
        .collect()
}

/// The states a task list can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listable {
    /// Not yet delivered to the agent's group.
    Waiting,
    /// Pending on a consumer.
    InProgress,
    /// Pending, due again.
    Retrying,
}

impl Listable {
    /// The listable state named `name`.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match TaskState::parse(name)? {
            TaskState::Waiting => Some(Self::Waiting),
            TaskState::InProgress => Some(Self::InProgress),
            TaskState::Retrying => Some(Self::Retrying),
            _ => None,
        }
    }

    fn state(self) -> TaskState {
        match self {
            Self::Waiting => TaskState::Waiting,
            Self::InProgress => TaskState::InProgress,
            Self::Retrying => TaskState::Retrying,
        }
    }
}

/// A position in a task list: after the entry `id` of the stream of rank `rank`
/// (most urgent 0), entries ordered by id, then by rank. As text `<id>@<priority>`
/// (`1704556800000-0@high`); a bare `<id>` is after that id on every stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cursor {
    id: EntryId,
    rank: usize,
}

impl Cursor {
    /// Parses a cursor; `None` when it is not one.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (id, rank) = match text.split_once('@') {
            Some((id, priority)) => {
                let priority = Priority::parse(priority)?;
                (id, rank_of(priority.stream()))
            }
            None => (text, Priority::ALL.len() - 1),
        };
        Some(Self {
            id: id.parse().ok()?,
            rank,
        })
    }

    /// The exclusive start of `stream`'s entries after this cursor (`-`: all).
    fn start_on(&self, rank: usize) -> Option<EntryId> {
        if rank > self.rank {
            // Entries with this very id come after the cursor on this stream.
            before(self.id)
        } else {
            Some(self.id)
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, Priority::ALL[self.rank].as_str())
    }
}

/// The id right before `id`, if any.
fn before(id: EntryId) -> Option<EntryId> {
    match (id.ms, id.seq) {
        (0, 0) => None,
        (ms, 0) => Some(EntryId::new(ms - 1, u64::MAX)),
        (ms, seq) => Some(EntryId::new(ms, seq - 1)),
    }
}

fn exclusive(start: Option<EntryId>) -> String {
    start.map_or_else(|| "-".to_owned(), |id| format!("({id}"))
}

/// `GET /api/v1/tasks?agent=…&state=…`: up to `count` tasks of `agent` in `state`
/// after `after`, oldest first (by entry id, across the four streams), and the cursor
/// of the next page. Waiting: entries after its group's last delivered id (every entry
/// when it has no group yet) for it or for every agent; in progress and retrying: its
/// group's pending entries, by the state rule. A page stops at `count` tasks or after
/// [`LIST_SCAN_CAP`] entries looked at (its `next` then goes on from there).
pub(crate) async fn list<C: ConnectionLike>(
    conn: &mut C,
    settings: TaskSettings,
    agent: &AgentName,
    state: Listable,
    after: Option<Cursor>,
    count: usize,
) -> RedisResult<TaskListReply> {
    let group = keys::group(agent);
    let ask = Ask {
        groups: true,
        ..Ask::default()
    };
    let groups = read(conn, &ask).await?.groups;
    // The agent's group on each stream, most urgent first.
    let mine: Vec<Option<Group>> = keys::task_streams()
        .into_iter()
        .map(|stream| {
            groups
                .iter()
                .find(|(s, _)| *s == stream)
                .and_then(|(_, gs)| gs.iter().find(|g| g.name == group))
                .cloned()
        })
        .collect();
    let streams = keys::task_streams();
    // A stream is exhausted once a read returns fewer than asked (or, for pending
    // lists, when the agent has no group there).
    let mut exhausted: Vec<bool> = mine
        .iter()
        .map(|g| state != Listable::Waiting && g.is_none())
        .collect();
    let mut cursor = after;
    let mut items = Vec::new();
    let mut looked = 0usize;
    let chunk = match state {
        Listable::Waiting => CHUNK,
        _ => (count as u64).clamp(100, CHUNK),
    };
    loop {
        let open: Vec<usize> = (0..streams.len()).filter(|r| !exhausted[*r]).collect();
        if open.is_empty() {
            return Ok(TaskListReply { items, next: None });
        }
        let start = |rank: usize| -> String {
            let after_cursor = cursor.and_then(|c| c.start_on(rank));
            let after_group = match state {
                Listable::Waiting => mine[rank].as_ref().map(|g| g.last_delivered),
                _ => None,
            };
            exclusive(after_cursor.max(after_group))
        };
        let mut ask = Ask::default();
        for r in &open {
            match state {
                Listable::Waiting => ask.ranges.push(RangeAsk {
                    stream: streams[*r].to_owned(),
                    start: start(*r),
                    count: chunk,
                    newest_first: false,
                }),
                _ => ask.pending_ranges.push(PendingRangeAsk {
                    stream: streams[*r].to_owned(),
                    group: group.clone(),
                    start: start(*r),
                    count: chunk,
                }),
            }
        }
        let got = read(conn, &ask).await?;
        // Per open stream: its (id, entry or pending) rows.
        let mut rows: Vec<(usize, Vec<Row>)> = Vec::new();
        match state {
            Listable::Waiting => {
                for (r, entries) in open.iter().zip(got.ranges) {
                    rows.push((
                        *r,
                        entries
                            .into_iter()
                            .map(|(id, e)| Row::Entry(id, e))
                            .collect(),
                    ));
                }
            }
            _ => {
                for (r, pending) in open.iter().zip(got.pending_ranges) {
                    rows.push((
                        *r,
                        pending
                            .into_iter()
                            .map(|(id, p)| Row::Pending(id, p))
                            .collect(),
                    ));
                }
            }
        }
        // Oldest first across the streams, up to the first position some open stream
        // has not been read past.
        let mut bound: Option<Cursor> = None;
        for (r, rows) in &rows {
            if rows.len() as u64 == chunk {
                let last = Cursor {
                    id: rows.last().map_or(EntryId::ZERO, Row::id),
                    rank: *r,
                };
                bound = Some(bound.map_or(last, |b| b.min(last)));
            }
        }
        // A stream read to its end is done once every row of it is within the bound
        // (rows past it are read again from the bound next time).
        for (r, rows) in &rows {
            let last = rows.last().map(|row| Cursor {
                id: row.id(),
                rank: *r,
            });
            if (rows.len() as u64) < chunk && (bound.is_none() || last <= bound) {
                exhausted[*r] = true;
            }
        }
        let mut merged: Vec<(Cursor, Row)> = rows
            .into_iter()
            .flat_map(|(r, rows)| {
                rows.into_iter().map(move |row| {
                    (
                        Cursor {
                            id: row.id(),
                            rank: r,
                        },
                        row,
                    )
                })
            })
            .filter(|(c, _)| bound.is_none_or(|b| *c <= b))
            .collect();
        merged.sort_by_key(|(c, _)| *c);
        looked += merged.len();
        let page = match state {
            Listable::Waiting => waiting_items(agent, &mine, merged),
            _ => pending_items(conn, settings, agent, &mine, state, merged).await?,
        };
        for (c, item) in page {
            items.push(item);
            if items.len() == count {
                return Ok(TaskListReply {
                    items,
                    next: Some(c.to_string()),
                });
            }
        }
        match bound {
            None => {
                if exhausted.iter().all(|e| *e) {
                    return Ok(TaskListReply { items, next: None });
                }
            }
            Some(b) => cursor = Some(b),
        }
        if looked >= LIST_SCAN_CAP {
            return Ok(TaskListReply {
                items,
                next: cursor.map(|c| c.to_string()),
            });
        }
    }
}

/// A row of a list being read: an entry, or a pending list's row.
#[derive(Debug)]
enum Row {
    Entry(EntryId, Entry),
    Pending(EntryId, Pending),
}

impl Row {
    fn id(&self) -> EntryId {
        match self {
            Row::Entry(id, _) | Row::Pending(id, _) => *id,
        }
    }
}

fn group_on(
    mine: &[Option<Group>],
    rank: usize,
    pending: Option<Pending>,
) -> Option<GroupOnStream> {
    mine[rank].as_ref().map(|g| GroupOnStream {
        name: g.name.clone(),
        last_delivered: g.last_delivered,
        pending,
    })
}

/// The waiting ones of `rows` (entries after the group's position): those for
/// `agent` or for every agent that decode.
fn waiting_items(
    agent: &AgentName,
    mine: &[Option<Group>],
    rows: Vec<(Cursor, Row)>,
) -> Vec<(Cursor, TaskListItem)> {
    let now_ms = crate::metrics::unix_ms();
    let known = BTreeSet::new();
    let letters = HashMap::new();
    rows.into_iter()
        .filter_map(|(c, row)| {
            let Row::Entry(id, entry) = row else {
                return None;
            };
            let to = entry.field("to").and_then(text)?;
            if !(for_every_agent(&to) || to == agent.as_str()) {
                return None;
            }
            let stream = keys::task_streams()[c.rank];
            let task = decode(stream, &entry)?;
            let group = group_on(mine, c.rank, None);
            let facts = Facts {
                stream,
                entry_id: id,
                to: &task.to,
                groups: &[],
                known_agents: &known,
                records: &[],
                letters: &letters,
                now_ms,
                visibility_ms: u64::MAX,
            };
            let state = facts.state_of(agent.as_str(), group.as_ref(), false);
            Some((c, item(task, stream, id, state)))
        })
        .collect()
}

fn item(task: TaskMessage, stream: &str, id: EntryId, state: TaskAgentState) -> TaskListItem {
    TaskListItem {
        task: TaskView {
            task,
            stream: stream.to_owned(),
            entry_id: id.to_string(),
        },
        state,
    }
}

/// The ones of `rows` (pending entries) in `state` for `agent`, by the state rule
/// (two round trips: their entries, then their records).
async fn pending_items<C: ConnectionLike>(
    conn: &mut C,
    settings: TaskSettings,
    agent: &AgentName,
    mine: &[Option<Group>],
    state: Listable,
    rows: Vec<(Cursor, Row)>,
) -> RedisResult<Vec<(Cursor, TaskListItem)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let streams = keys::task_streams();
    let ask = Ask {
        entries: rows
            .iter()
            .map(|(c, _)| (streams[c.rank].to_owned(), c.id))
            .collect(),
        ..Ask::default()
    };
    let entries = read(conn, &ask).await?.entries;
    let tasks: Vec<Option<TaskMessage>> = rows
        .iter()
        .zip(entries)
        .map(|((c, _), e)| e.and_then(|e| decode(streams[c.rank], &e)))
        .collect();
    let ids: Vec<String> = tasks
        .iter()
        .flatten()
        .map(|t| t.id.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let ask = Ask {
        records: ids.clone(),
        ..Ask::default()
    };
    let records: HashMap<String, Vec<LifecycleRecord>> = ids
        .into_iter()
        .zip(read(conn, &ask).await?.records)
        .collect();
    let now_ms = crate::metrics::unix_ms();
    let known = BTreeSet::new();
    let letters = HashMap::new();
    let none = Vec::new();
    Ok(rows
        .into_iter()
        .zip(tasks)
        .filter_map(|((c, row), task)| {
            let (Row::Pending(id, pending), Some(task)) = (row, task) else {
                return None;
            };
            let stream = streams[c.rank];
            let group = group_on(mine, c.rank, Some(pending));
            let facts = Facts {
                stream,
                entry_id: id,
                to: &task.to,
                groups: &[],
                known_agents: &known,
                records: records.get(&task.id).unwrap_or(&none),
                letters: &letters,
                now_ms,
                visibility_ms: settings.visibility_ms,
            };
            let s = facts.state_of(agent.as_str(), group.as_ref(), false);
            (s.state == state.state()).then(|| (c, item(task, stream, id, s)))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cortex_shared::JsonObject;

    #[test]
    fn cursors_read_and_write_with_their_stream() {
        let c = Cursor::parse("1704556800000-0@high").unwrap();
        assert_eq!(c.to_string(), "1704556800000-0@high");
        assert_eq!((c.id, c.rank), (EntryId::new(1_704_556_800_000, 0), 1));
        // A bare id: after it on every stream.
        let bare = Cursor::parse("7-1").unwrap();
        assert_eq!(bare.to_string(), "7-1@low");
        assert_eq!(bare.start_on(0), Some(EntryId::new(7, 1)));
        // On a less urgent stream than the cursor's, its own id is still to come.
        assert_eq!(
            c.start_on(2),
            Some(EntryId::new(1_704_556_799_999, u64::MAX))
        );
        assert_eq!(c.start_on(1), Some(c.id));
        assert_eq!(
            Cursor::parse("0-0@low").unwrap().start_on(3),
            Some(EntryId::ZERO)
        );
        for bad in ["", "x", "1-0@urgent", "@high", "1-0@", "1-x@low"] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
        assert!(Cursor::parse("5-0@critical").unwrap() < Cursor::parse("5-0@high").unwrap());
        assert!(Cursor::parse("5-0@low").unwrap() < Cursor::parse("5-1@critical").unwrap());
    }

    #[test]
    fn only_waiting_in_progress_and_retrying_are_listed() {
        assert_eq!(Listable::parse("waiting"), Some(Listable::Waiting));
        assert_eq!(Listable::parse("in_progress"), Some(Listable::InProgress));
        assert_eq!(Listable::parse("retrying"), Some(Listable::Retrying));
        for other in ["done", "dead", "retried", "running", ""] {
            assert_eq!(Listable::parse(other), None);
        }
    }

    fn reply(id: &str, entry: &str, parent: Option<&str>) -> TaskReply {
        let mut task = TaskMessage::new(
            id.into(),
            "harold".into(),
            "pink".into(),
            Priority::High,
            "coding".into(),
            JsonObject::new(),
            1,
        );
        task.parent_id = parent.map(str::to_owned);
        TaskReply {
            task: TaskView {
                task,
                stream: "cortex:tasks:high".into(),
                entry_id: entry.into(),
            },
            agents: Vec::new(),
            timeline: Vec::new(),
        }
    }

    fn shape(nodes: &[TraceNode]) -> String {
        nodes
            .iter()
            .map(|n| {
                if n.children.is_empty() {
                    n.task.task.id.clone()
                } else {
                    format!("{}({})", n.task.task.id, shape(&n.children))
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn a_trace_is_a_tree_by_parent_id_oldest_first() {
        let tasks = vec![
            reply("c", "3-0", Some("a")),
            reply("a", "1-0", None),
            reply("b", "2-0", Some("a")),
            reply("d", "4-0", Some("b")),
            // Its parent is not in the trace: a root.
            reply("e", "5-0", Some("elsewhere")),
        ];
        assert_eq!(shape(&tree(tasks)), "a(b(d) c) e");
        // A circle: its oldest is a root, nothing is lost or shown twice.
        let circle = vec![
            reply("x", "1-0", Some("y")),
            reply("y", "2-0", Some("x")),
            reply("self", "3-0", Some("self")),
        ];
        assert_eq!(shape(&tree(circle)), "x(y) self");
        assert!(tree(Vec::new()).is_empty());
    }
}
