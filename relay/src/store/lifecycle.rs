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

    /// The same, adding the task to trace `correlation_id` when there is one.
    pub(crate) fn traced(mut self, correlation_id: Option<&str>) -> Self {
        self.trace = correlation_id.map(str::to_owned);
        self
    }
}

/// The fields of a record's stream entry, in the order the README lists them (what
/// [`LUA`] writes).
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
/// `EVALSHA` of [`RECORDS`], which writes each record as the README says (`XADD
/// cortex:lifecycle MAXLEN ~ max_len * …`, `RPUSH` of its JSON to the task's list,
/// `LTRIM` to the newest [`TASK_RECORDS`], `EXPIRE`, and for a traced task `SADD` to the
/// trace and its `EXPIRE`). One command for a batch, and one reply: the relay's cost
/// per record is its arguments. Nothing when `settings` has the record off or there is
/// nothing to write. Redis may not know the script yet: see [`is_unknown_script`].
pub(crate) fn append(pipe: &mut redis::Pipeline, settings: &LifecycleSettings, writes: &[Write]) {
    if !settings.enabled || writes.is_empty() {
        return;
    }
    let mut cmd = redis::cmd("EVALSHA");
    cmd.arg(RECORDS.get_hash()).arg(0);
    ScriptArgs(settings).add_to(&mut cmd);
    let mut detail = Vec::new();
    let mut item = Vec::new();
    for write in writes {
        let record = &write.record;
        detail.clear();
        if !record.detail.is_empty() {
            serde_json::to_writer(&mut detail, &record.detail).expect("a detail is always JSON");
        }
        item_into(&mut item, record, &detail);
        cmd.arg(record.at_ms)
            .arg(record.event.as_str())
            .arg(&record.task_id)
            .arg(&record.stream)
            .arg(&record.entry_id)
            .arg(record.agent.as_deref().unwrap_or_default())
            .arg(record.consumer.as_deref().unwrap_or_default())
            .arg(&detail)
            .arg(write.trace.as_deref().unwrap_or_default())
            .arg(&item);
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
pub(crate) const LUA: &str = r#"
local function lifecycle_args(at)
  local L = {on = ARGV[at] == '1', stream = ARGV[at + 1], max_len = ARGV[at + 2],
    age = ARGV[at + 3], task_prefix = ARGV[at + 4], trace_prefix = ARGV[at + 5],
    at_ms = ARGV[at + 6], keep = tonumber(ARGV[at + 7]), expiring = {}}
  return L, at + 8
end
local function lifecycle_detail(detail, key, value)
  local member = cjson.encode(key) .. ':' .. cjson.encode(value)
  if detail == '' or detail == '{}' then return '{' .. member .. '}' end
  return '{' .. member .. ',' .. string.sub(detail, 2)
end
local function lifecycle_fields(at_ms, event, task_id, stream, entry_id, agent, consumer, detail)
  local f = {'event', event, 'task_id', task_id, 'stream', stream, 'entry_id', entry_id,
    'at_ms', at_ms}
  if agent ~= '' then f[#f + 1] = 'agent'; f[#f + 1] = agent end
  if consumer ~= '' then f[#f + 1] = 'consumer'; f[#f + 1] = consumer end
  if detail ~= '' and detail ~= '{}' then f[#f + 1] = 'detail'; f[#f + 1] = detail end
  return f
end
local function lifecycle_put(L, f, task_id, item, trace)
  redis.call('XADD', L.stream, 'MAXLEN', '~', L.max_len, '*', unpack(f))
  local list = L.task_prefix .. task_id
  if redis.call('RPUSH', list, item) > L.keep then redis.call('LTRIM', list, -L.keep, -1) end
  -- One EXPIRE per list per script: the same moment for Redis.
  if not L.expiring[list] then
    redis.call('EXPIRE', list, L.age)
    L.expiring[list] = true
  end
  if trace ~= '' then
    local set = L.trace_prefix .. trace
    redis.call('SADD', set, task_id)
    redis.call('EXPIRE', set, L.age)
  end
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
  local f = lifecycle_fields(at_ms, event, task_id, stream, entry_id, agent, consumer, detail)
  lifecycle_put(L, f, task_id, j, trace)
end
"#;

/// ARGV: the settings ([`ScriptArgs`]), then per record: at_ms, event, task id, stream,
/// entry id, agent, consumer, detail, trace (see [`LUA`]), and the item's JSON (made by
/// the relay: [`item_text`], so that Redis only stores it). Writes them in order.
pub(crate) static RECORDS: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&RECORDS_LUA));

/// [`RECORDS`]'s source.
static RECORDS_LUA: LazyLock<String> = LazyLock::new(|| {
    format!(
        r#"{LUA}
local L, at = lifecycle_args(1)
while at + 9 <= #ARGV do
  local f = lifecycle_fields(ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3],
    ARGV[at + 4], ARGV[at + 5], ARGV[at + 6], ARGV[at + 7])
  lifecycle_put(L, f, ARGV[at + 2], ARGV[at + 9], ARGV[at + 8])
  at = at + 10
end
return 0
"#
    )
});

/// The arguments [`LUA`]'s `lifecycle_args` reads: on (`1`/`0`), the stream, `max_len`,
/// the age in seconds, the task list and trace key prefixes, now (unix ms), and
/// [`TASK_RECORDS`].
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

    fn args(&self) -> [String; 8] {
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

/// Reads an entry of [`keys::LIFECYCLE`] back into its record. Fields it does not know
/// are ignored whatever bytes they hold (also their names); a known field that is
/// missing, not UTF-8, or not what it must be (an unknown event, an `at_ms` that is not
/// a number, a `detail` that is not a JSON object) makes the entry no record.
pub(crate) fn decode_entry(entry: &Entry) -> Result<LifecycleRecord, BadRecord> {
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
            &[acked().traced(Some("c-1")), published.clone()],
        );
        let commands = commands(&pipe);
        assert_eq!(commands.len(), 1);
        let args: Vec<&str> = commands[0].split(' ').collect();
        assert_eq!(args[..3], ["EVALSHA", RECORDS.get_hash(), "0"]);
        // The settings, as lifecycle_args reads them (the last is now).
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
        // Ten per record, in the order the script reads them.
        assert_eq!(
            args[11..20],
            [
                "1704556800300",
                "acked",
                "task-001",
                "cortex:tasks:high",
                "1704556800000-0",
                "pink",
                "pink-1",
                "{\"ms\":300}",
                "c-1"
            ]
        );
        let item = item_text(&acked().record);
        assert_eq!(args[20], item);
        let at = published.record.at_ms.to_string();
        assert_eq!(args[30], item_text(&published.record));
        assert_eq!(args.len(), 31);
        assert_eq!(
            args[21..30],
            [
                at.as_str(),
                "published",
                "t-2",
                "cortex:tasks:low",
                "9-0",
                "",
                "",
                "",
                ""
            ]
        );
        // The item the script writes is the record's JSON (shared/src/lifecycle.rs).
        let item = item_text(&acked().record);
        assert_eq!(decode_item(item.as_bytes()), Some(acked().record));
        // Off, or nothing to write: nothing.
        let mut pipe = redis::pipe();
        append(&mut pipe, &LifecycleSettings::off(), &[acked()]);
        append(&mut pipe, &settings, &[]);
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
        assert_eq!(decode_entry(&entry(&fields)).unwrap(), record);
        // The bare minimum, unknown fields (any bytes) ignored.
        let bare = entry(&[
            ("event", bulk("published")),
            ("task_id", bulk("t")),
            ("stream", bulk("cortex:tasks:low")),
            ("entry_id", bulk("5-0")),
            ("at_ms", bulk("7")),
            ("extra", Value::BulkString(vec![0xff])),
        ]);
        let got = decode_entry(&bare).unwrap();
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
        assert!(LUA.contains("> L.keep then redis.call('LTRIM', list, -L.keep, -1)"));
        assert!(LUA.contains("'MAXLEN', '~', L.max_len"));
    }
}
