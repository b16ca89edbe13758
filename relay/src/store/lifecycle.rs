//! The lifecycle record (README, "Task lifecycle"): what the relay did to each task,
//! written in the same round trip as the command it records.
//!
//! One record goes to three places: an entry of the capped stream
//! [`keys::LIFECYCLE`] (which every relay's watch reader reads, for the `lifecycle`
//! frames), an item of the task's own list [`keys::task_record`] (its newest
//! [`TASK_RECORDS`], expiring `max_age` after the last write: the index by task id), and,
//! for a task with a `correlation_id` when it is published or first delivered, its id in
//! the trace's set [`keys::trace`].
//!
//! Two ways to write one, with the same result in Redis:
//! - [`append`]: the commands for a record whose every field the relay knows, added to a
//!   [`redis::Pipeline`] after the command it records (the consumer's deliveries, acks,
//!   nacks and reclaims);
//! - [`LUA`]: a Lua function for the scripts that make an id the record names (the task's
//!   entry id when publishing, the letter's id when dead-lettering, the new entry's when
//!   retrying), called by them after the command it records, with the settings the
//!   script was given by [`ScriptArgs`].
//!
//! Decoding: [`decode_entry`] reads a stream entry back (any bytes: an entry that is not
//! a record is an error, never a panic); [`decode_item`] reads an item of a task's list.

use super::keys;
use super::reply::Entry;
use super::value::bytes;
use cortex_shared::lifecycle::{LifecycleEvent, LifecycleRecord};
use cortex_shared::JsonObject;
use std::sync::LazyLock;
use std::time::Duration;

/// Records kept in a task's list (`LTRIM -64 -1`).
pub(crate) const TASK_RECORDS: i64 = 64;

/// Whether the record is written, and how long it is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecycleSettings {
    /// Whether records are written at all (off: not one command more is sent).
    pub enabled: bool,
    /// `cortex:lifecycle` is capped at about this many entries (`MAXLEN ~`).
    pub max_len: u64,
    /// Records are kept this long: the task lists and trace sets expire this long after
    /// their last write, and the trimmer cuts older stream entries (`XTRIM MINID ~`).
    pub max_age: Duration,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_len: 100_000,
            max_age: Duration::from_secs(3600),
        }
    }
}

impl LifecycleSettings {
    /// The same settings, turned off.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// `max_age` in whole seconds, at least 1 (what `EXPIRE` takes).
    pub(crate) fn max_age_secs(&self) -> u64 {
        self.max_age.as_secs().max(1)
    }
}

/// A record to write, and the trace to add its task to (a task with a correlation id,
/// when published or first delivered).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Write {
    /// The record.
    pub(crate) record: LifecycleRecord,
    /// `SADD cortex:trace:<this> <task id>`, when set.
    pub(crate) trace: Option<String>,
    /// Whether the write acks the record's entry (`XACK` in the consumer's group), the
    /// record written only if that ack took ([`RECORDS`]).
    pub(crate) acks: bool,
}

impl Write {
    /// A record, now, of `event` on a task.
    pub(crate) fn now(event: LifecycleEvent, task_id: &str, stream: &str, entry_id: &str) -> Self {
        Self {
            record: LifecycleRecord {
                at_ms: crate::metrics::unix_ms(),
                event,
                task_id: task_id.to_owned(),
                stream: stream.to_owned(),
                entry_id: entry_id.to_owned(),
                agent: None,
                consumer: None,
                detail: JsonObject::new(),
            },
            trace: None,
            acks: false,
        }
    }

    /// The same, for `agent` on `consumer`.
    pub(crate) fn on(mut self, agent: &str, consumer: &str) -> Self {
        self.record.agent = Some(agent.to_owned());
        self.record.consumer = Some(consumer.to_owned());
        self
    }

    /// The same, with `detail.<key> = value`.
    pub(crate) fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.record.detail.insert(key.to_owned(), value.into());
        self
    }

    /// The same, acking its entry: the record of an ack, written only if the ack took.
    pub(crate) fn acking(mut self) -> Self {
        self.acks = true;
        self
    }

    /// The same, adding the task to trace `correlation_id` when there is one.
    pub(crate) fn traced(mut self, correlation_id: Option<&str>) -> Self {
        self.trace = correlation_id.map(str::to_owned);
        self
    }
}

/// The fields of a record's stream entry as entries written before the field `records`
/// held them (one record, a field per member), which [`decode_entry`] still reads.
#[cfg(test)]
pub(crate) fn stream_fields(record: &LifecycleRecord) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("event", record.event.as_str().to_owned()),
        ("task_id", record.task_id.clone()),
        ("stream", record.stream.clone()),
        ("entry_id", record.entry_id.clone()),
        ("at_ms", record.at_ms.to_string()),
    ];
    if let Some(agent) = &record.agent {
        fields.push(("agent", agent.clone()));
    }
    if let Some(consumer) = &record.consumer {
        fields.push(("consumer", consumer.clone()));
    }
    if !record.detail.is_empty() {
        fields.push((
            "detail",
            serde_json::Value::Object(record.detail.clone()).to_string(),
        ));
    }
    fields
}

/// [`item_text`] of `record` into `out`, its detail's JSON given (empty when it has
/// none), without going through serde's map of it again: the same bytes (a test checks
/// it), cheaper, for each record the consumer writes.
fn item_into(out: &mut Vec<u8>, record: &LifecycleRecord, detail: &[u8]) {
    fn string(out: &mut Vec<u8>, key: &str, value: &str) {
        out.extend_from_slice(key.as_bytes());
        serde_json::to_writer(&mut *out, value).expect("a string is always JSON");
    }
    out.clear();
    out.extend_from_slice(b"{\"at_ms\":");
    out.extend_from_slice(record.at_ms.to_string().as_bytes());
    string(out, ",\"event\":", record.event.as_str());
    string(out, ",\"task_id\":", &record.task_id);
    string(out, ",\"stream\":", &record.stream);
    string(out, ",\"entry_id\":", &record.entry_id);
    if let Some(agent) = &record.agent {
        string(out, ",\"agent\":", agent);
    }
    if let Some(consumer) = &record.consumer {
        string(out, ",\"consumer\":", consumer);
    }
    if !detail.is_empty() {
        out.extend_from_slice(b",\"detail\":");
        out.extend_from_slice(detail);
    }
    out.push(b'}');
}

/// The text of a record's item in its task's list: the JSON of [`LifecycleRecord`]
/// (what [`LUA`] writes too).
#[cfg(test)]
pub(crate) fn item_text(record: &LifecycleRecord) -> String {
    serde_json::to_string(record).expect("a record is always JSON")
}

/// Appends the command that writes `writes` to `pipe` (its reply ignored): one
/// `EVALSHA` of [`RECORDS`], which writes them as the README says (one entry of
/// `cortex:lifecycle` holding them all, `MAXLEN ~ max_len`; one `RPUSH` per task list of
/// its records' JSON, `LTRIM` to the newest [`TASK_RECORDS`], `EXPIRE`; for a traced
/// task `SADD` to the trace and its `EXPIRE`; `HINCRBY` of the agent's outcome counters
/// of this minute), first acking in `group` the entries of the writes that ack
/// ([`Write::acking`]). One command for a batch, and one reply. Outcomes are counted for
/// `group`'s agent (a consumer's records are all of it; a record of another agent
/// counts none). Nothing when `settings` has the record off or there is nothing to
/// write (the caller acks those entries itself then). Redis may not know the script
/// yet: see [`is_unknown_script`].
pub(crate) fn append(
    pipe: &mut redis::Pipeline,
    settings: &LifecycleSettings,
    group: &str,
    writes: &[Write],
) {
    if !settings.enabled || writes.is_empty() {
        return;
    }
    let agent = keys::agent_of_group(group);
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(RECORDS.get_hash()).arg(0);
    ScriptArgs(settings).add_to(&mut cmd);
    let minute = crate::metrics::unix_ms() / 60_000 * 60_000;
    cmd.arg(group)
        .arg(agent.map(|a| keys::outcomes(a, minute)).unwrap_or_default())
        .arg(writes.len());
    let mut detail = Vec::new();
    let mut item = Vec::new();
    for write in writes {
        let record = &write.record;
        detail.clear();
        if !record.detail.is_empty() {
            serde_json::to_writer(&mut detail, &record.detail).expect("a detail is always JSON");
        }
        item_into(&mut item, record, &detail);
        let outcome = outcome_of(record.event)
            .filter(|_| agent.is_some() && record.agent.as_deref() == agent)
            .unwrap_or_default();
        let (ack_stream, ack_id) = if write.acks {
            (record.stream.as_str(), record.entry_id.as_str())
        } else {
            ("", "")
        };
        cmd.arg(&record.task_id)
            .arg(&item)
            .arg(outcome)
            .arg(ack_stream)
            .arg(ack_id);
    }
    for write in writes {
        if let Some(trace) = &write.trace {
            cmd.arg(trace).arg(&write.record.task_id);
        }
    }
    pipe.add_command(cmd).ignore();
}

/// Whether `error` says Redis does not know a script (`NOSCRIPT`: it restarted, or was
/// flushed, since it was loaded): then [`load`] it and send the pipeline again (each
/// command the consumer sends with records may be sent twice: `XACK`, `XCLAIM … JUSTID`).
pub(crate) fn is_unknown_script(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
        || error.code() == Some("NOSCRIPT")
}

/// `SCRIPT LOAD` of [`RECORDS`].
pub(crate) async fn load<C: redis::aio::ConnectionLike>(conn: &mut C) -> redis::RedisResult<()> {
    redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(RECORDS_LUA.as_str())
        .query_async::<String>(conn)
        .await
        .map(drop)
}

/// The Lua function `lifecycle(L, at_ms, event, task_id, stream, entry_id, agent,
/// consumer, detail, trace)` every script that writes records starts with: it writes one
/// record (every argument a string; `''` for an absent agent, consumer, detail or trace;
/// `detail` the JSON text of an object; the item's JSON in the order of
/// [`LifecycleRecord`]'s fields). `L` is the table `lifecycle_args` makes of the
/// arguments [`ScriptArgs`] added, from ARGV index `at` on; it returns the table and the
/// index after them (`L.at_ms`: now, for a script's own records).
/// `lifecycle_detail(detail, key, value)` adds a string member to a detail's JSON text
/// (for an id the script made).
///
/// Underneath, `lifecycle_gather` gathers a record (its JSON, its task, and the outcome
/// it counts for its agent: README, "Task lifecycle", `acked` is done, `nacked` failed,
/// `dead_lettered` dead, `reclaimed` timed out) and `lifecycle_flush` writes what was
/// gathered: **one** stream entry for all of them (field `records`, a JSON array of
/// them in order), one `RPUSH` and `EXPIRE` per task list, one `HINCRBY` per outcome
/// and counter key (and its `EXPIRE`), however many records the script wrote. Redis's
/// cost per record is then mostly its arguments; per command called from Lua it is about
/// a microsecond more (measured: README, "The lifecycle record on and off").
pub(crate) const LUA: &str = r#"
local function lifecycle_args(at)
  local L = {on = ARGV[at] == '1', stream = ARGV[at + 1], max_len = ARGV[at + 2],
    age = ARGV[at + 3], task_prefix = ARGV[at + 4], trace_prefix = ARGV[at + 5],
    at_ms = ARGV[at + 6], keep = tonumber(ARGV[at + 7]), outcome_prefix = ARGV[at + 8],
    outcome_age = ARGV[at + 9], items = {}, lists = {}, list_order = {}, counts = {},
    count_order = {}}
  return L, at + 10
end
local LIFECYCLE_OUTCOMES = {acked = 'done', nacked = 'failed', dead_lettered = 'dead',
  reclaimed = 'timed_out'}
local function lifecycle_detail(detail, key, value)
  local member = cjson.encode(key) .. ':' .. cjson.encode(value)
  if detail == '' or detail == '{}' then return '{' .. member .. '}' end
  return '{' .. member .. ',' .. string.sub(detail, 2)
end
local function lifecycle_gather(L, task_id, item, count_key, outcome)
  L.items[#L.items + 1] = item
  local list = L.task_prefix .. task_id
  local items = L.lists[list]
  if not items then
    items = {}
    L.lists[list] = items
    L.list_order[#L.list_order + 1] = list
  end
  items[#items + 1] = item
  if outcome ~= '' and count_key ~= '' then
    local counts = L.counts[count_key]
    if not counts then
      counts = {}
      L.counts[count_key] = counts
      L.count_order[#L.count_order + 1] = count_key
    end
    counts[outcome] = (counts[outcome] or 0) + 1
  end
end
local function lifecycle_trace(L, trace, task_id)
  local set = L.trace_prefix .. trace
  redis.call('SADD', set, task_id)
  redis.call('EXPIRE', set, L.age)
end
local function lifecycle_flush(L)
  if #L.items > 0 then
    redis.call('XADD', L.stream, 'MAXLEN', '~', L.max_len, '*', 'records',
      '[' .. table.concat(L.items, ',') .. ']')
  end
  for _, list in ipairs(L.list_order) do
    if redis.call('RPUSH', list, unpack(L.lists[list])) > L.keep then
      redis.call('LTRIM', list, -L.keep, -1)
    end
    redis.call('EXPIRE', list, L.age)
  end
  for _, key in ipairs(L.count_order) do
    for outcome, n in pairs(L.counts[key]) do redis.call('HINCRBY', key, outcome, n) end
    redis.call('EXPIRE', key, L.outcome_age)
  end
  L.items, L.lists, L.list_order, L.counts, L.count_order = {}, {}, {}, {}, {}
end
local function lifecycle(L, at_ms, event, task_id, stream, entry_id, agent, consumer, detail, trace)
  if not L.on or task_id == '' then return end
  local j = '{"at_ms":' .. at_ms .. ',"event":' .. cjson.encode(event) ..
    ',"task_id":' .. cjson.encode(task_id) .. ',"stream":' .. cjson.encode(stream) ..
    ',"entry_id":' .. cjson.encode(entry_id)
  if agent ~= '' then j = j .. ',"agent":' .. cjson.encode(agent) end
  if consumer ~= '' then j = j .. ',"consumer":' .. cjson.encode(consumer) end
  if detail ~= '' and detail ~= '{}' then j = j .. ',"detail":' .. detail end
  j = j .. '}'
  local outcome = LIFECYCLE_OUTCOMES[event] or ''
  local count_key = ''
  if outcome ~= '' and agent ~= '' then
    count_key = L.outcome_prefix .. agent .. ':' ..
      string.format('%.0f', math.floor(tonumber(at_ms) / 60000) * 60000)
  end
  lifecycle_gather(L, task_id, j, count_key, outcome)
  if trace ~= '' then lifecycle_trace(L, trace, task_id) end
  lifecycle_flush(L)
end
"#;

/// ARGV: the settings ([`ScriptArgs`]); the consumer group of the acks; the counter key
/// of the batch's agent and minute ([`keys::outcomes`]); how many records; per record
/// [`PER_RECORD`]: its task id, its JSON (made by the relay: [`item_text`], so that
/// Redis only stores it), the outcome it counts (`done`, `failed`, `dead`, `timed_out`
/// or `''`) and, for a record that acks its entry ([`Write::acking`]), the entry's stream
/// and id (`''` twice otherwise); then pairs of a trace and a task id to add to it. An
/// entry to ack is acked first (`XACK` of it alone), and its record written only when
/// the ack took (the entry was pending): no `acked` record of an entry another
/// consumer's ack or a dead letter took first. (One `XACK` per entry costs Redis about
/// 1.5 µs more per task than one per stream; an `XCLAIM … JUSTID` per stream to learn
/// which are pending, then one `XACK`, was measured dearer still.)
pub(crate) static RECORDS: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&RECORDS_LUA));

/// Arguments per record of [`RECORDS`].
const PER_RECORD: usize = 5;

/// [`RECORDS`]'s source.
static RECORDS_LUA: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"{LUA}
local L, at = lifecycle_args(1)
local group, count_key, n = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
at = at + 3
for _ = 1, n do
  if ARGV[at + 3] == '' or redis.call('XACK', ARGV[at + 3], group, ARGV[at + 4]) == 1 then
    lifecycle_gather(L, ARGV[at], ARGV[at + 1], count_key, ARGV[at + 2])
  end
  at = at + {PER_RECORD}
end
while at + 1 <= #ARGV do
  lifecycle_trace(L, ARGV[at], ARGV[at + 1])
  at = at + 2
end
lifecycle_flush(L)
return 0
"#
    )
});

/// The outcome `event` counts for its agent (README, "Task lifecycle"), if any.
pub(crate) fn outcome_of(event: LifecycleEvent) -> Option<&'static str> {
    match event {
        LifecycleEvent::Acked => Some("done"),
        LifecycleEvent::Nacked => Some("failed"),
        LifecycleEvent::DeadLettered => Some("dead"),
        LifecycleEvent::Reclaimed => Some("timed_out"),
        _ => None,
    }
}

/// The arguments [`LUA`]'s `lifecycle_args` reads: on (`1`/`0`), the stream, `max_len`,
/// the age in seconds, the task list and trace key prefixes, now (unix ms),
/// [`TASK_RECORDS`], the outcome counters' key prefix and how long they are kept
/// ([`super::outcomes`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScriptArgs<'a>(pub(crate) &'a LifecycleSettings);

impl ScriptArgs<'_> {
    /// Adds them to `invocation`.
    pub(crate) fn add(&self, invocation: &mut redis::ScriptInvocation<'_>) {
        for arg in self.args() {
            invocation.arg(arg);
        }
    }

    /// Adds them to `cmd`.
    fn add_to(&self, cmd: &mut redis::Cmd) {
        for arg in self.args() {
            cmd.arg(arg);
        }
    }

    fn args(&self) -> [String; 10] {
        let settings = self.0;
        [
            if settings.enabled { "1" } else { "0" }.to_owned(),
            keys::LIFECYCLE.to_owned(),
            settings.max_len.to_string(),
            settings.max_age_secs().to_string(),
            keys::task_record(""),
            keys::trace(""),
            crate::metrics::unix_ms().to_string(),
            TASK_RECORDS.to_string(),
            keys::OUTCOMES_PREFIX.to_owned(),
            super::outcomes::KEEP.as_secs().to_string(),
        ]
    }
}

/// Why a stream entry is not a lifecycle record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BadRecord {
    /// A field it must have is missing (or is not a string).
    #[error("field `{0}` missing")]
    Missing(&'static str),
    /// A field's value is not UTF-8.
    #[error("field `{0}` is not UTF-8")]
    NotUtf8(&'static str),
    /// A field's value is not what it must be.
    #[error("field `{0}`: {1}")]
    Invalid(&'static str, String),
}

/// Reads an entry of [`keys::LIFECYCLE`] back into its records: its field `records`, a
/// JSON array of them (what the relay writes: one entry per write), or, in entries
/// written before that, one record with a field per member. Fields it does not know are
/// ignored whatever bytes they hold (also their names). `records` that is not a JSON
/// array is no record; an item of it that is not a record's JSON is left out (the
/// others kept). An entry of the older kind with a known field missing, not UTF-8, or
/// not what it must be (an unknown event, an `at_ms` that is not a number, a `detail`
/// that is not a JSON object) is no record.
pub(crate) fn decode_entry(entry: &Entry) -> Result<Vec<LifecycleRecord>, BadRecord> {
    if let Some(value) = entry.field("records") {
        let raw = bytes(value).ok_or(BadRecord::Missing("records"))?;
        if let Ok(records) = serde_json::from_slice::<Vec<LifecycleRecord>>(raw) {
            return Ok(records);
        }
        let items = serde_json::from_slice::<Vec<serde_json::Value>>(raw).map_err(|e| {
            BadRecord::Invalid("records", format!("not a JSON array of records: {e}"))
        })?;
        return Ok(items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect());
    }
    decode_fields(entry).map(|record| vec![record])
}

/// An entry of the older kind: one record, a field per member.
fn decode_fields(entry: &Entry) -> Result<LifecycleRecord, BadRecord> {
    let field = |name: &'static str| -> Result<Option<&str>, BadRecord> {
        match entry.field(name) {
            None => Ok(None),
            Some(value) => {
                let raw = bytes(value).ok_or(BadRecord::Missing(name))?;
                std::str::from_utf8(raw)
                    .map(Some)
                    .map_err(|_| BadRecord::NotUtf8(name))
            }
        }
    };
    let required = |name: &'static str| field(name)?.ok_or(BadRecord::Missing(name));
    let event_name = required("event")?;
    let event = LifecycleEvent::parse(event_name)
        .ok_or_else(|| BadRecord::Invalid("event", format!("unknown event {event_name:?}")))?;
    let at_ms = required("at_ms")?
        .parse::<u64>()
        .map_err(|e| BadRecord::Invalid("at_ms", e.to_string()))?;
    let detail = match field("detail")? {
        None | Some("") => JsonObject::new(),
        Some(text) => serde_json::from_str::<JsonObject>(text)
            .map_err(|e| BadRecord::Invalid("detail", format!("not a JSON object: {e}")))?,
    };
    Ok(LifecycleRecord {
        at_ms,
        event,
        task_id: required("task_id")?.to_owned(),
        stream: required("stream")?.to_owned(),
        entry_id: required("entry_id")?.to_owned(),
        agent: field("agent")?.map(str::to_owned),
        consumer: field("consumer")?.map(str::to_owned),
        detail,
    })
}

/// Reads an item of a task's list ([`keys::task_record`]) back into its record; `None`
/// for one that is not a record's JSON (any bytes). The one decoder of list items: the
/// task API's reads ([`super::tasks`]) and a letter's attempts ([`super::dlq`]) use it.
pub(crate) fn decode_item(item: &[u8]) -> Option<LifecycleRecord> {
    serde_json::from_slice(item).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;
    use serde_json::json;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn entry(fields: &[(&str, Value)]) -> Entry {
        Entry {
            id: "1-0".into(),
            fields: Some(
                fields
                    .iter()
                    .flat_map(|(k, v)| [bulk(k), v.clone()])
                    .collect(),
            ),
        }
    }

    fn acked() -> Write {
        let mut write = Write::now(
            LifecycleEvent::Acked,
            "task-001",
            "cortex:tasks:high",
            "1704556800000-0",
        )
        .on("pink", "pink-1")
        .detail("ms", 300);
        write.record.at_ms = 1_704_556_800_300;
        write
    }

    fn commands_of(pipe: &redis::Pipeline) -> Vec<String> {
        commands(pipe)
    }

    /// The commands of a pipeline, as text.
    fn commands(pipe: &redis::Pipeline) -> Vec<String> {
        pipe.cmd_iter()
            .map(|cmd| {
                cmd.args_iter()
                    .map(|arg| match arg {
                        redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                        _ => "<cursor>".to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn a_batch_of_records_is_one_command() {
        let settings = LifecycleSettings::default();
        let mut pipe = redis::pipe();
        let published = Write::now(LifecycleEvent::Published, "t-2", "cortex:tasks:low", "9-0");
        append(
            &mut pipe,
            &settings,
            "agent:pink",
            &[acked().traced(Some("c-1")).acking(), published.clone()],
        );
        let commands = commands(&pipe);
        assert_eq!(commands.len(), 1);
        let args: Vec<&str> = commands[0].split(' ').collect();
        assert_eq!(args[..3], ["EVALSHA", RECORDS.get_hash(), "0"]);
        // The settings, as lifecycle_args reads them (the seventh is now).
        assert_eq!(
            args[3..9],
            [
                "1",
                "cortex:lifecycle",
                "100000",
                "3600",
                "cortex:task:",
                "cortex:trace:"
            ]
        );
        assert_eq!(args[10..13], ["64", "cortex:outcomes:", "3720"]);
        // The acks' group, its agent's counters of this minute, how many records, then
        // five per record, in the order the script reads them; then the traces.
        assert_eq!(args[13], "agent:pink");
        assert!(
            args[14].starts_with("cortex:outcomes:pink:"),
            "{}",
            args[14]
        );
        let minute: u64 = args[14].rsplit(':').next().unwrap().parse().unwrap();
        assert_eq!(minute % 60_000, 0);
        assert_eq!(args[15], "2");
        let item = item_text(&acked().record);
        assert_eq!(
            args[16..21],
            [
                "task-001",
                item.as_str(),
                "done",
                "cortex:tasks:high",
                "1704556800000-0",
            ]
        );
        let item = item_text(&published.record);
        assert_eq!(args[21..26], ["t-2", item.as_str(), "", "", ""]);
        assert_eq!(args[26..], ["c-1", "task-001"]);
        assert_eq!(PER_RECORD, 5);
        // A record of another agent than the group's counts no outcome.
        let mut pipe = redis::pipe();
        append(&mut pipe, &settings, "agent:blue", &[acked()]);
        let text = commands_of(&pipe).remove(0);
        assert_eq!(text.split(' ').nth(18), Some(""));
        // The item the script writes is the record's JSON (shared/src/lifecycle.rs).
        let item = item_text(&acked().record);
        assert_eq!(decode_item(item.as_bytes()), Some(acked().record));
        // Off, or nothing to write: nothing.
        let mut pipe = redis::pipe();
        append(&mut pipe, &LifecycleSettings::off(), "g", &[acked()]);
        append(&mut pipe, &settings, "g", &[]);
        assert!(commands_of(&pipe).is_empty());
        assert!(is_unknown_script(&redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::NoScript),
            "NOSCRIPT No matching script",
        ))));
    }

    #[test]
    fn items_are_the_records_json_byte_for_byte() {
        let mut odd = acked().record;
        odd.task_id = "t\"1\\ \u{7}é\u{2028}".into();
        odd.consumer = None;
        odd.detail
            .insert("error".into(), "a \"quoted\"\nerror".into());
        let mut bare = Write::now(LifecycleEvent::Published, "t", "s", "1-0").record;
        bare.at_ms = 0;
        for record in [acked().record, odd, bare] {
            let mut detail = Vec::new();
            if !record.detail.is_empty() {
                serde_json::to_writer(&mut detail, &record.detail).unwrap();
            }
            let mut item = Vec::new();
            item_into(&mut item, &record, &detail);
            assert_eq!(String::from_utf8(item).unwrap(), item_text(&record));
        }
    }

    #[test]
    fn an_entry_decodes_back_into_its_record() {
        let record = acked().record;
        let fields: Vec<(&str, Value)> = stream_fields(&record)
            .into_iter()
            .map(|(k, v)| (k, bulk(&v)))
            .collect();
        // As entries were written before the field `records`.
        assert_eq!(
            decode_entry(&entry(&fields)).unwrap(),
            std::slice::from_ref(&record)
        );
        // As they are written now: a write's records, in order.
        let mut other = record.clone();
        other.event = LifecycleEvent::Delivered;
        let both = format!("[{},{}]", item_text(&record), item_text(&other));
        let now = entry(&[("records", bulk(&both))]);
        assert_eq!(decode_entry(&now).unwrap(), [record.clone(), other.clone()]);
        // An item that is no record is left out; the others are kept.
        let mixed = format!(
            "[{},{{\"event\":\"acked\"}},7,{}]",
            item_text(&record),
            item_text(&other)
        );
        let now = entry(&[("records", bulk(&mixed))]);
        assert_eq!(decode_entry(&now).unwrap(), [record, other]);
        // The bare minimum, unknown fields (any bytes) ignored.
        let bare = entry(&[
            ("event", bulk("published")),
            ("task_id", bulk("t")),
            ("stream", bulk("cortex:tasks:low")),
            ("entry_id", bulk("5-0")),
            ("at_ms", bulk("7")),
            ("extra", Value::BulkString(vec![0xff])),
        ]);
        let got = decode_entry(&bare).unwrap().remove(0);
        assert_eq!((got.event, got.at_ms), (LifecycleEvent::Published, 7));
        assert_eq!((got.agent, got.consumer), (None, None));
        assert!(got.detail.is_empty());
        // What the Lua function writes decodes the same.
        let lua_item = r#"{"at_ms":7,"event":"dead_lettered","task_id":"t","stream":"s",
            "entry_id":"5-0","agent":"pink","detail":{"dlq_id":"9-0","error":"boom"}}"#;
        let got = decode_item(lua_item.as_bytes()).unwrap();
        assert_eq!(got.detail["dlq_id"], json!("9-0"));
    }

    #[test]
    fn anything_else_is_no_record_and_no_panic() {
        let good = |skip: &str, with: Option<(&'static str, Value)>| {
            let mut fields: Vec<(&str, Value)> = stream_fields(&acked().record)
                .into_iter()
                .filter(|(k, _)| *k != skip)
                .map(|(k, v)| (k, bulk(&v)))
                .collect();
            fields.extend(with);
            decode_entry(&entry(&fields))
        };
        assert_eq!(good("event", None), Err(BadRecord::Missing("event")));
        assert_eq!(good("task_id", None), Err(BadRecord::Missing("task_id")));
        assert_eq!(good("at_ms", None), Err(BadRecord::Missing("at_ms")));
        let bad = [
            ("event", bulk("exploded")),
            ("at_ms", bulk("soon")),
            ("detail", bulk("{junk")),
            ("detail", bulk("[1,2]")),
            ("task_id", Value::BulkString(vec![0xff, 0xfe])),
            ("agent", Value::BulkString(vec![0xc3])),
            ("stream", Value::Int(3)),
        ];
        for (name, value) in bad {
            assert!(
                good("", Some((name, value.clone()))).is_err(),
                "{name} {value:?}"
            );
        }
        // `records` that is not an array, whatever else the entry holds.
        for junk in [
            bulk("{junk"),
            bulk("{}"),
            Value::BulkString(vec![0xff]),
            Value::Int(1),
        ] {
            let with_fields = good("", Some(("records", junk.clone())));
            assert!(with_fields.is_err(), "{junk:?}");
        }
        assert_eq!(good("", Some(("records", bulk("[]")))), Ok(vec![]));
        // An entry deleted meanwhile, or with no fields at all.
        assert!(decode_entry(&Entry {
            id: "1-0".into(),
            fields: None
        })
        .is_err());
        for junk in [&b""[..], b"\xff", b"[]", b"{\"event\":\"acked\"}", b"null"] {
            assert_eq!(decode_item(junk), None);
        }
    }

    #[test]
    fn the_lua_function_keeps_what_append_keeps() {
        // EXPIRE takes whole seconds, at least one.
        let settings = LifecycleSettings {
            max_age: Duration::from_millis(10),
            ..LifecycleSettings::off()
        };
        assert_eq!(settings.max_age_secs(), 1);
        // The scripts build the keys from these prefixes.
        assert_eq!(keys::task_record(""), "cortex:task:");
        assert_eq!(keys::trace(""), "cortex:trace:");
        assert!(LUA.contains("> L.keep then\n      redis.call('LTRIM', list, -L.keep, -1)"));
        assert!(LUA.contains("'MAXLEN', '~', L.max_len"));
        // The scripts' own records count the outcomes the relay's do.
        for event in LifecycleEvent::ALL {
            let entry = |outcome: &str| format!("{} = '{outcome}'", event.as_str());
            match outcome_of(event) {
                Some(outcome) => assert!(LUA.contains(&entry(outcome)), "{event:?}"),
                None => assert!(
                    !LUA.contains(&format!("{} = '", event.as_str())),
                    "{event:?}"
                ),
            }
        }
    }
}
