//! A fake of the Redis a consumer talks to, for the unit tests of its delivery order:
//! one agent's group on the four task streams and the DLQ, kept as Redis keeps them
//! (entries, the group's pending list with owners, delivery counts and idle times,
//! letters). It logs each command that took effect, checks every ack against what the
//! test allowed, and can fail one chosen command, carry it out and lose its reply, or
//! never answer it.

use super::{rank, Key};
use crate::store::consumer::{ByPriority, GroupReader, GroupStore, Pending};
use crate::store::dlq::Once;
use crate::store::lifecycle::Write;
use crate::store::reply::{AutoClaim, Entry};
use cortex_shared::lifecycle::LifecycleRecord;
use cortex_shared::{Attempt, DeadLetter, EntryId, Priority};
use redis::{RedisResult, Value};
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What a chosen command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// Fails without taking effect (the connection was gone).
    Fail,
    /// Takes effect, then fails (the connection went before the reply came).
    LoseReply,
    /// Never answers.
    Hang,
}

/// Which command gets the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trigger {
    /// The `n`th command (from 0), of any kind.
    Call(usize),
    /// The next command of this kind.
    Next(Kind),
}

/// The kinds of command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Connect,
    EnsureGroups,
    Read,
    Ack,
    DeadLetter,
    Release,
    HandBack,
    Pending,
    TakeBack,
    AutoClaim,
    Deliveries,
    Entry,
    Attempts,
    Alive,
    Leave,
    /// Lifecycle records alone (an `ack` with no ids).
    Records,
}

/// One entry of the group's pending list.
#[derive(Debug, Clone)]
struct Owned {
    consumer: String,
    deliveries: u64,
    since: Instant,
}

#[derive(Debug, Default)]
struct Stream {
    entries: BTreeMap<EntryId, Vec<Value>>,
    last_delivered: EntryId,
    pending: BTreeMap<EntryId, Owned>,
}

#[derive(Debug, Default)]
struct State {
    streams: [Stream; 4],
    letters: Vec<(Key, DeadLetter)>,
    attempts: BTreeMap<Key, Vec<Attempt>>,
    /// Lifecycle records written, in order, and the traces they added their tasks to.
    records: Vec<LifecycleRecord>,
    traces: Vec<(String, String)>,
    once: HashSet<Key>,
    log: Vec<(Kind, Vec<Key>)>,
    calls: usize,
    fault: Option<(Trigger, Fault)>,
    fired: bool,
    may_ack: HashSet<Key>,
    violations: Vec<String>,
    next_ms: u64,
    /// The stream a blocked read is woken by (Redis serves the key that woke it).
    woken_by: Option<Priority>,
    /// Blocking reads waiting now.
    blocked: usize,
    /// Consumers removed from the group, in order.
    left: Vec<String>,
}

impl State {
    /// Counts a call of `kind`, and says which fault it gets.
    fn begin(&mut self, kind: Kind) -> Option<Fault> {
        let n = self.calls;
        self.calls += 1;
        let (trigger, fault) = self.fault?;
        let hit = match trigger {
            Trigger::Call(at) => at == n,
            Trigger::Next(k) => k == kind,
        };
        if !hit || self.fired {
            return None;
        }
        self.fired = true;
        Some(fault)
    }

    fn stream(&mut self, priority: Priority) -> &mut Stream {
        &mut self.streams[rank(priority)]
    }

    fn add(&mut self, priority: Priority, fields: Vec<Value>) -> Key {
        self.next_ms += 1;
        let id = EntryId::new(self.next_ms, 0);
        self.stream(priority).entries.insert(id, fields);
        (priority, id)
    }

    fn read_new(
        &mut self,
        consumer: &str,
        streams: &[Priority],
        count: usize,
    ) -> Vec<(Priority, Entry)> {
        let mut out = Vec::new();
        let mut read = Vec::new();
        for &priority in streams {
            let stream = self.stream(priority);
            let new: Vec<(EntryId, Vec<Value>)> = stream
                .entries
                .range((Bound::Excluded(stream.last_delivered), Bound::Unbounded))
                .take(count)
                .map(|(id, fields)| (*id, fields.clone()))
                .collect();
            for (id, fields) in new {
                stream.last_delivered = id;
                stream.pending.insert(id, owned(consumer, 1));
                read.push((priority, id));
                out.push((
                    priority,
                    Entry {
                        id: id.to_string(),
                        fields: Some(fields),
                    },
                ));
            }
        }
        if !read.is_empty() {
            self.log.push((Kind::Read, read));
        }
        out
    }

    fn ack(&mut self, keys: Vec<Key>) {
        for key in &keys {
            if !self.may_ack.contains(key) {
                self.violations
                    .push(format!("{key:?} acked; the client did not ack it"));
            }
            self.stream(key.0).pending.remove(&key.1);
        }
        self.log.push((Kind::Ack, keys));
    }

    /// Whether the entry `entry_id` of `stream` is pending in the group.
    fn is_pending(&mut self, stream: &str, entry_id: &str) -> bool {
        Priority::from_stream(stream)
            .is_some_and(|p| self.stream(p).pending.contains_key(&id_of(entry_id)))
    }

    /// Writes lifecycle records (after the command they go with).
    fn write(&mut self, writes: &[Write]) {
        for write in writes {
            self.records.push(write.record.clone());
            if let Some(trace) = &write.trace {
                self.traces
                    .push((trace.clone(), write.record.task_id.clone()));
            }
        }
    }

    /// Makes `keys` this consumer's, idle for `idle`, counting nothing.
    fn claim_just_id(&mut self, consumer: &str, keys: &[Key], idle: Duration) {
        for (priority, id) in keys {
            if let Some(owned) = self.stream(*priority).pending.get_mut(id) {
                owned.consumer = consumer.to_owned();
                owned.since = Instant::now()
                    .checked_sub(idle)
                    .unwrap_or_else(Instant::now);
            }
        }
    }
}

fn owned(consumer: &str, deliveries: u64) -> Owned {
    Owned {
        consumer: consumer.to_owned(),
        deliveries,
        since: Instant::now(),
    }
}

fn io_error() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset (fake)",
    ))
}

fn id_of(text: &str) -> EntryId {
    text.parse().expect("the consumer sends entry ids")
}

fn bulk(text: &str) -> Value {
    Value::BulkString(text.as_bytes().to_vec())
}

/// The fake Redis, shared by the consumers of a test and the test itself.
#[derive(Debug, Clone, Default)]
pub(super) struct FakeRedis {
    state: Arc<Mutex<State>>,
    /// Told of every change.
    changed: Arc<Notify>,
}

impl FakeRedis {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake poisoned")
    }

    /// Carries out a command of `kind` (`effect`), with its fault if it gets one.
    async fn call<T>(&self, kind: Kind, effect: impl FnOnce(&mut State) -> T) -> RedisResult<T> {
        let fault = self.state().begin(kind);
        let result = match fault {
            None => {
                let value = effect(&mut self.state());
                Ok(value)
            }
            Some(Fault::Fail) => Err(io_error()),
            Some(Fault::LoseReply) => {
                let _lost = effect(&mut self.state());
                Err(io_error())
            }
            Some(Fault::Hang) => {
                self.changed.notify_waiters();
                std::future::pending().await
            }
        };
        self.changed.notify_waiters();
        result
    }

    /// The store of consumer `consumer`.
    pub(super) fn store(&self, consumer: &str) -> FakeStore {
        FakeStore {
            redis: self.clone(),
            consumer: consumer.to_owned(),
        }
    }

    /// Adds a task for `to`.
    pub(super) fn task(&self, priority: Priority, to: &str) -> Key {
        self.burst(&[(priority, to)])[0]
    }

    /// Adds tasks at once (one `MULTI`): a read blocked meanwhile is woken by the
    /// first one's stream.
    pub(super) fn burst(&self, tasks: &[(Priority, &str)]) -> Vec<Key> {
        let keys = {
            let mut state = self.state();
            state.woken_by = tasks.first().map(|(priority, _)| *priority);
            tasks
                .iter()
                .map(|(priority, to)| {
                    let n = state.next_ms + 1;
                    let fields = [
                        ("id", format!("t{n}")),
                        ("from", "harold".to_owned()),
                        ("to", (*to).to_owned()),
                        ("priority", priority.as_str().to_owned()),
                        ("type", "coding".to_owned()),
                        ("payload", format!("{{\"n\":{n}}}")),
                        ("created", "1704556800".to_owned()),
                    ]
                    .iter()
                    .flat_map(|(k, v)| [bulk(k), bulk(v)])
                    .collect();
                    state.add(*priority, fields)
                })
                .collect()
        };
        self.changed.notify_waiters();
        keys
    }

    /// Adds an entry with these fields.
    pub(super) fn entry(&self, priority: Priority, fields: &[(&str, &str)]) -> Key {
        let key = {
            let mut state = self.state();
            state.woken_by = Some(priority);
            let fields = fields
                .iter()
                .flat_map(|(k, v)| [bulk(k), bulk(v)])
                .collect();
            state.add(priority, fields)
        };
        self.changed.notify_waiters();
        key
    }

    /// Deletes an entry from its stream (not from the pending list).
    pub(super) fn delete(&self, key: Key) {
        self.state().stream(key.0).entries.remove(&key.1);
    }

    /// Lets an `XACK` of `key` happen: the client acked it, or it is not the agent's.
    pub(super) fn allow_ack(&self, key: Key) {
        self.state().may_ack.insert(key);
    }

    /// Who has `key` pending, and its delivery count; `None` when it is not pending.
    pub(super) fn owner(&self, key: Key) -> Option<(String, u64)> {
        self.state()
            .stream(key.0)
            .pending
            .get(&key.1)
            .map(|o| (o.consumer.clone(), o.deliveries))
    }

    /// How long `key` has been idle; `None` when it is not pending.
    pub(super) fn idle(&self, key: Key) -> Option<Duration> {
        self.state()
            .stream(key.0)
            .pending
            .get(&key.1)
            .map(|o| o.since.elapsed())
    }

    /// Whether `key` was read by the group (delivered to some consumer at least once).
    pub(super) fn was_read(&self, key: Key) -> bool {
        self.state().stream(key.0).last_delivered >= key.1
    }

    /// The letters written, with the entries they are of.
    /// Attempts at `key` that the lifecycle record holds.
    pub(super) fn set_attempts(&self, key: Key, attempts: Vec<Attempt>) {
        self.state().attempts.insert(key, attempts);
    }

    pub(super) fn letters(&self) -> Vec<(Key, DeadLetter)> {
        self.state().letters.clone()
    }

    /// The lifecycle records written, in order.
    pub(super) fn records(&self) -> Vec<LifecycleRecord> {
        self.state().records.clone()
    }

    /// (trace, task id) of each task added to a trace.
    pub(super) fn traces(&self) -> Vec<(String, String)> {
        self.state().traces.clone()
    }

    /// The commands that took effect, with the entries each was about.
    pub(super) fn log(&self) -> Vec<(Kind, Vec<Key>)> {
        self.state().log.clone()
    }

    /// Acks the test did not allow.
    pub(super) fn violations(&self) -> Vec<String> {
        self.state().violations.clone()
    }

    /// Commands called so far.
    pub(super) fn calls(&self) -> usize {
        self.state().calls
    }

    /// Gives the command `trigger` picks the fault `fault`.
    pub(super) fn set_fault(&self, trigger: Trigger, fault: Fault) {
        let mut state = self.state();
        state.fault = Some((trigger, fault));
        state.fired = false;
    }

    /// Whether the fault was given.
    pub(super) fn fired(&self) -> bool {
        self.state().fired
    }

    /// Waits until `ready` holds of the fake (5 s at most, else panics about `what`).
    pub(super) async fn wait_for(&self, what: &str, ready: impl Fn(&FakeRedis) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if ready(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("timed out waiting for {what}");
            }
        }
    }

    /// The consumers removed from the group, in order.
    pub(super) fn left(&self) -> Vec<String> {
        self.state().left.clone()
    }

    /// Whether a read is blocked, waiting for entries.
    pub(super) fn blocked(&self) -> bool {
        self.state().blocked > 0
    }
}

/// A consumer's commands on the fake.
#[derive(Debug)]
pub(super) struct FakeStore {
    redis: FakeRedis,
    consumer: String,
}

/// A consumer's reads on the fake.
#[derive(Debug)]
pub(super) struct FakeReader {
    redis: FakeRedis,
    consumer: String,
}

impl GroupReader for FakeReader {
    async fn read_new(
        &mut self,
        streams: &[Priority],
        count: usize,
        block: Option<Duration>,
    ) -> RedisResult<Vec<(Priority, Entry)>> {
        let fault = self.redis.state().begin(Kind::Read);
        match fault {
            Some(Fault::Fail) => return Err(io_error()),
            Some(Fault::Hang) => {
                self.redis.changed.notify_waiters();
                return std::future::pending().await;
            }
            _ => {}
        }
        let mut got = self.redis.state().read_new(&self.consumer, streams, count);
        if let (true, Some(block)) = (got.is_empty(), block) {
            let deadline = tokio::time::Instant::now() + block;
            self.redis.state().blocked += 1;
            self.redis.changed.notify_waiters();
            loop {
                let changed = self.redis.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                {
                    let mut state = self.redis.state();
                    if let Some(woken) = state.woken_by.filter(|p| streams.contains(p)) {
                        got = state.read_new(&self.consumer, &[woken], count);
                    }
                }
                if !got.is_empty() || tokio::time::timeout_at(deadline, changed).await.is_err() {
                    break;
                }
            }
            self.redis.state().blocked -= 1;
        }
        self.redis.changed.notify_waiters();
        match fault {
            Some(Fault::LoseReply) => Err(io_error()),
            _ => Ok(got),
        }
    }
}

impl GroupStore for FakeStore {
    type Reader = FakeReader;

    async fn connect(&mut self) -> RedisResult<FakeReader> {
        let reader = FakeReader {
            redis: self.redis.clone(),
            consumer: self.consumer.clone(),
        };
        self.redis.call(Kind::Connect, |_| reader).await
    }

    async fn ensure_groups(&mut self) -> RedisResult<()> {
        self.redis.call(Kind::EnsureGroups, |_| ()).await
    }

    async fn ack(&mut self, ids: &ByPriority, records: &[Write]) -> RedisResult<()> {
        let keys: Vec<Key> = Priority::ALL
            .into_iter()
            .zip(ids)
            .flat_map(|(priority, ids)| ids.iter().map(move |id| (priority, *id)))
            .collect();
        if keys.is_empty() {
            if records.is_empty() {
                return Ok(());
            }
            return self
                .redis
                .call(Kind::Records, |state| state.write(records))
                .await;
        }
        self.redis
            .call(Kind::Ack, |state| {
                // As the script does: a record that acks its entry is written only if
                // the entry was pending.
                let records: Vec<Write> = records
                    .iter()
                    .filter(|w| !w.acks || state.is_pending(&w.record.stream, &w.record.entry_id))
                    .cloned()
                    .collect();
                state.ack(keys);
                state.write(&records);
            })
            .await
    }

    async fn ack_one(&mut self, priority: Priority, entry_id: &str) -> RedisResult<()> {
        let key = (priority, id_of(entry_id));
        self.redis
            .call(Kind::Ack, |state| state.ack(vec![key]))
            .await
    }

    async fn dead_letter(
        &mut self,
        priority: Priority,
        entry_id: &str,
        letter: &DeadLetter,
        once: Once,
        record: Option<&LifecycleRecord>,
    ) -> RedisResult<bool> {
        let key = (priority, id_of(entry_id));
        self.redis
            .call(Kind::DeadLetter, |state| {
                let write = once == Once::PerGroup || state.once.insert(key);
                if write {
                    state.letters.push((key, letter.clone()));
                    if let Some(record) = record {
                        let mut record = record.clone();
                        let dlq_id = format!("{}-0", state.letters.len());
                        record.detail.insert("dlq_id".into(), dlq_id.into());
                        state.records.push(record);
                    }
                }
                state.stream(priority).pending.remove(&key.1);
                state.log.push((Kind::DeadLetter, vec![key]));
                write
            })
            .await
    }

    async fn release(
        &mut self,
        priority: Priority,
        entry_id: &str,
        idle: Duration,
        records: &[Write],
    ) -> RedisResult<()> {
        let key = (priority, id_of(entry_id));
        let consumer = self.consumer.clone();
        self.redis
            .call(Kind::Release, |state| {
                state.claim_just_id(&consumer, &[key], idle);
                state.log.push((Kind::Release, vec![key]));
                state.write(records);
            })
            .await
    }

    async fn hand_back(
        &mut self,
        ids: &ByPriority,
        idle: Duration,
        records: &[Write],
    ) -> RedisResult<()> {
        let keys: Vec<Key> = Priority::ALL
            .into_iter()
            .zip(ids)
            .flat_map(|(priority, ids)| ids.iter().map(move |id| (priority, *id)))
            .collect();
        let consumer = self.consumer.clone();
        self.redis
            .call(Kind::HandBack, |state| {
                state.claim_just_id(&consumer, &keys, idle);
                state.log.push((Kind::HandBack, keys));
                state.write(records);
            })
            .await
    }

    async fn pending(
        &mut self,
        priority: Priority,
        after: Option<&str>,
        count: usize,
    ) -> RedisResult<Vec<Pending>> {
        let after = after.map(id_of);
        let consumer = self.consumer.clone();
        self.redis
            .call(Kind::Pending, |state| {
                state
                    .stream(priority)
                    .pending
                    .iter()
                    .filter(|(id, o)| after.is_none_or(|a| **id > a) && o.consumer == consumer)
                    .take(count)
                    .map(|(id, o)| Pending {
                        id: id.to_string(),
                        idle_ms: o.since.elapsed().as_millis() as u64,
                        deliveries: o.deliveries,
                    })
                    .collect()
            })
            .await
    }

    async fn take_back(&mut self, priority: Priority, ids: &[&str]) -> RedisResult<Vec<Entry>> {
        let keys: Vec<Key> = ids.iter().map(|id| (priority, id_of(id))).collect();
        let consumer = self.consumer.clone();
        self.redis
            .call(Kind::TakeBack, |state| {
                state.claim_just_id(&consumer, &keys, Duration::ZERO);
                state.log.push((Kind::TakeBack, keys.clone()));
                keys.iter()
                    .map(|(_, id)| Entry {
                        id: id.to_string(),
                        fields: state.stream(priority).entries.get(id).cloned(),
                    })
                    .collect()
            })
            .await
    }

    async fn autoclaim(
        &mut self,
        priority: Priority,
        min_idle: Duration,
        cursor: &str,
        count: usize,
        owners: bool,
    ) -> RedisResult<AutoClaim> {
        let cursor = id_of(cursor);
        let consumer = self.consumer.clone();
        self.redis
            .call(Kind::AutoClaim, |state| {
                let stream = state.stream(priority);
                let due: Vec<EntryId> = stream
                    .pending
                    .range(cursor..)
                    .filter(|(_, o)| o.since.elapsed() >= min_idle)
                    .map(|(id, _)| *id)
                    .collect();
                let mut claimed = Vec::new();
                let mut from = std::collections::HashMap::new();
                let mut next = "0-0".to_owned();
                for id in due {
                    if claimed.len() == count {
                        next = id.to_string();
                        break;
                    }
                    let Some(fields) = stream.entries.get(&id).cloned() else {
                        // Deleted while pending: Redis 7 drops it from the list.
                        stream.pending.remove(&id);
                        continue;
                    };
                    let o = stream.pending.get_mut(&id).expect("pending");
                    if owners {
                        from.insert(id.to_string(), o.consumer.clone());
                    }
                    o.consumer = consumer.clone();
                    o.deliveries += 1;
                    o.since = Instant::now();
                    claimed.push(Entry {
                        id: id.to_string(),
                        fields: Some(fields),
                    });
                }
                let keys = claimed.iter().map(|e| (priority, id_of(&e.id))).collect();
                state.log.push((Kind::AutoClaim, keys));
                AutoClaim {
                    next,
                    claimed,
                    from,
                }
            })
            .await
    }

    async fn deliveries(&mut self, priority: Priority, entry_id: &str) -> RedisResult<u64> {
        let id = id_of(entry_id);
        self.redis
            .call(Kind::Deliveries, |state| {
                state
                    .stream(priority)
                    .pending
                    .get(&id)
                    .map_or(1, |o| o.deliveries)
            })
            .await
    }

    async fn entry(&mut self, priority: Priority, entry_id: &str) -> RedisResult<Option<Entry>> {
        let id = id_of(entry_id);
        self.redis
            .call(Kind::Entry, |state| {
                state.stream(priority).entries.get(&id).map(|fields| Entry {
                    id: id.to_string(),
                    fields: Some(fields.clone()),
                })
            })
            .await
    }

    async fn attempts(
        &mut self,
        _task_id: &str,
        priority: Priority,
        entry_id: &str,
    ) -> RedisResult<Vec<Attempt>> {
        let key = (priority, id_of(entry_id));
        self.redis
            .call(Kind::Attempts, |state| {
                state.attempts.get(&key).cloned().unwrap_or_default()
            })
            .await
    }

    async fn say_alive(&mut self, records: &[Write]) -> RedisResult<()> {
        self.redis
            .call(Kind::Alive, |state| state.write(records))
            .await
    }

    async fn finish_reads(&mut self, _reader: FakeReader) -> RedisResult<()> {
        // A read of the fake is over once its future is dropped.
        Ok(())
    }

    async fn leave(&mut self) -> RedisResult<bool> {
        let consumer = self.consumer.clone();
        self.redis
            .call(Kind::Leave, |state| {
                let holds = state
                    .streams
                    .iter()
                    .any(|s| s.pending.values().any(|o| o.consumer == consumer));
                if !holds {
                    state.left.push(consumer);
                }
                state.log.push((Kind::Leave, Vec::new()));
                !holds
            })
            .await
    }
}
