//! The consumer's commands on redis-rs ([`GroupStore`], [`GroupReader`]): the reads on
//! a multiplexed connection of their own, everything else on the shared
//! [`ConnectionManager`]. Replies are walked as Redis sent them
//! ([`crate::store::reply`]); the DLQ write is the store's script.

use super::{ByPriority, GroupReader, GroupStore, Pending};
use crate::store::dlq::{dead_letter, Once};
use crate::store::keys;
use crate::store::lifecycle::{self, LifecycleSettings, Write};
use crate::store::reply::{AutoClaim, Entry};
use cortex_shared::lifecycle::LifecycleRecord;
use cortex_shared::{AgentName, Attempt, DeadLetter, Priority};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::StreamPendingCountReply;
use redis::{AsyncConnectionConfig, RedisResult, Value};
use std::collections::HashSet;
use std::time::Duration;

/// How long a consumer's alive key outlives its last refresh.
pub(crate) const ALIVE_TTL: Duration = Duration::from_secs(600);

/// One consumer's commands on Redis.
#[derive(Debug)]
pub(crate) struct RedisGroupStore {
    client: redis::Client,
    redis: ConnectionManager,
    group: String,
    consumer: String,
    alive_key: String,
    /// How long the reads' connection waits for a reply: longer than any blocking read.
    response_timeout: Duration,
    /// Whether records are written, and their retention.
    lifecycle: LifecycleSettings,
}

impl RedisGroupStore {
    /// The commands of `consumer` in `agent`'s group, writing lifecycle records as
    /// `lifecycle` says.
    pub(crate) fn new(
        client: redis::Client,
        redis: ConnectionManager,
        agent: &AgentName,
        consumer: &str,
        block: Duration,
        lifecycle: LifecycleSettings,
    ) -> Self {
        Self {
            client,
            redis,
            group: keys::group(agent),
            consumer: consumer.to_owned(),
            alive_key: keys::consumer_alive(agent.as_str(), consumer),
            response_timeout: block + Duration::from_secs(5),
            lifecycle,
        }
    }

    /// Sends `commands` then `records` in one round trip (no pipeline for one command
    /// alone).
    async fn with_records(
        &mut self,
        mut commands: Vec<redis::Cmd>,
        records: &[Write],
    ) -> RedisResult<()> {
        let records = if self.lifecycle.enabled { records } else { &[] };
        match (commands.len(), records.is_empty()) {
            (0, true) => Ok(()),
            // The usual case without records: one command, no pipeline to set up.
            (1, true) => commands
                .remove(0)
                .query_async::<Value>(&mut self.redis)
                .await
                .map(drop),
            _ => {
                let mut pipe = redis::pipe();
                for cmd in commands {
                    pipe.add_command(cmd).ignore();
                }
                lifecycle::append(&mut pipe, &self.lifecycle, &self.group, records);
                match pipe.query_async::<()>(&mut self.redis).await {
                    Err(e) if lifecycle::is_unknown_script(&e) => {
                        // The records were not written; the commands before them may
                        // run twice, which changes nothing (XACK, XCLAIM … JUSTID).
                        lifecycle::load(&mut self.redis).await?;
                        pipe.query_async(&mut self.redis).await
                    }
                    other => other,
                }
            }
        }
    }

    /// `XCLAIM stream group consumer 0 <ids…>`, the start of every claim here.
    fn claim(&self, priority: Priority) -> redis::Cmd {
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(priority.stream())
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(0);
        cmd
    }
}

/// The reads' connection.
#[derive(Debug)]
pub(crate) struct RedisReader {
    conn: MultiplexedConnection,
    /// Its `CLIENT ID`, to unblock it from the shared connection.
    client_id: i64,
    group: String,
    consumer: String,
}

impl GroupReader for RedisReader {
    async fn read_new(
        &mut self,
        streams: &[Priority],
        count: usize,
        block: Option<Duration>,
    ) -> RedisResult<Vec<(Priority, Entry)>> {
        let reply = read_group(&self.group, &self.consumer, streams, count, block)
            .query_async(&mut self.conn)
            .await?;
        entries(reply)
    }
}

impl GroupStore for RedisGroupStore {
    type Reader = RedisReader;

    async fn connect(&mut self) -> RedisResult<RedisReader> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(self.response_timeout));
        let mut conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let client_id = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut conn)
            .await?;
        Ok(RedisReader {
            conn,
            client_id,
            group: self.group.clone(),
            consumer: self.consumer.clone(),
        })
    }

    async fn ensure_groups(&mut self) -> RedisResult<()> {
        for priority in Priority::ALL {
            let created: RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(priority.stream())
                .arg(&self.group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut self.redis)
                .await;
            match created {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn ack(&mut self, ids: &ByPriority, records: &[Write]) -> RedisResult<()> {
        // With the record on, the records that ack their entry do it in the script (the
        // record written only if the ack took): those entries get no XACK here.
        let in_script: HashSet<(&str, &str)> = if self.lifecycle.enabled {
            records
                .iter()
                .filter(|w| w.acks)
                .map(|w| (w.record.stream.as_str(), w.record.entry_id.as_str()))
                .collect()
        } else {
            HashSet::new()
        };
        let mut commands = Vec::new();
        for (priority, ids) in Priority::ALL.iter().zip(ids) {
            let mut cmd = redis::cmd("XACK");
            cmd.arg(priority.stream()).arg(&self.group);
            let mut any = false;
            for id in ids {
                let id = id.to_string();
                if !in_script.contains(&(priority.stream(), id.as_str())) {
                    cmd.arg(id);
                    any = true;
                }
            }
            if any {
                commands.push(cmd);
            }
        }
        self.with_records(commands, records).await
    }

    async fn ack_one(&mut self, priority: Priority, entry_id: &str) -> RedisResult<()> {
        redis::cmd("XACK")
            .arg(priority.stream())
            .arg(&self.group)
            .arg(entry_id)
            .query_async::<i64>(&mut self.redis)
            .await
            .map(drop)
    }

    async fn dead_letter(
        &mut self,
        priority: Priority,
        entry_id: &str,
        letter: &DeadLetter,
        once: Once,
        record: Option<&LifecycleRecord>,
    ) -> RedisResult<bool> {
        dead_letter(
            &mut self.redis,
            priority.stream(),
            &self.group,
            entry_id,
            letter,
            once,
            &self.lifecycle,
            record,
        )
        .await
    }

    async fn release(
        &mut self,
        priority: Priority,
        entry_id: &str,
        idle: Duration,
        records: &[Write],
    ) -> RedisResult<()> {
        let mut cmd = self.claim(priority);
        cmd.arg(entry_id)
            .arg("IDLE")
            .arg(idle.as_millis() as u64)
            .arg("JUSTID");
        self.with_records(vec![cmd], records).await
    }

    async fn hand_back(
        &mut self,
        ids: &ByPriority,
        idle: Duration,
        records: &[Write],
    ) -> RedisResult<()> {
        let idle = idle.as_millis() as u64;
        let mut commands = Vec::new();
        for (priority, ids) in Priority::ALL.into_iter().zip(ids) {
            if ids.is_empty() {
                continue;
            }
            let mut cmd = self.claim(priority);
            for id in ids {
                cmd.arg(id.to_string());
            }
            cmd.arg("IDLE").arg(idle).arg("JUSTID");
            commands.push(cmd);
        }
        self.with_records(commands, records).await
    }

    async fn pending(
        &mut self,
        priority: Priority,
        after: Option<&str>,
        count: usize,
    ) -> RedisResult<Vec<Pending>> {
        let start = after.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
        let page: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(priority.stream())
            .arg(&self.group)
            .arg(start)
            .arg("+")
            .arg(count)
            .arg(&self.consumer)
            .query_async(&mut self.redis)
            .await?;
        Ok(page
            .ids
            .into_iter()
            .map(|p| Pending {
                id: p.id,
                idle_ms: p.last_delivered_ms as u64,
                deliveries: p.times_delivered as u64,
            })
            .collect())
    }

    async fn take_back(&mut self, priority: Priority, ids: &[&str]) -> RedisResult<Vec<Entry>> {
        let stream = priority.stream();
        let mut claim = self.claim(priority);
        for id in ids {
            claim.arg(id);
        }
        claim.arg("JUSTID");
        let mut pipe = redis::pipe();
        pipe.add_command(claim).ignore();
        for id in ids {
            pipe.cmd("XRANGE").arg(stream).arg(id).arg(id);
        }
        let replies: Vec<Value> = pipe.query_async(&mut self.redis).await?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, reply) in ids.iter().zip(replies) {
            let entry = crate::store::reply::range(reply)?.into_iter().next();
            out.push(entry.unwrap_or_else(|| Entry {
                id: (*id).to_owned(),
                fields: None,
            }));
        }
        Ok(out)
    }

    async fn autoclaim(
        &mut self,
        priority: Priority,
        min_idle: Duration,
        cursor: &str,
        count: usize,
        owners: bool,
    ) -> RedisResult<AutoClaim> {
        let min_idle = min_idle.as_millis() as u64;
        let mut claim = redis::cmd("XAUTOCLAIM");
        claim
            .arg(priority.stream())
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(min_idle)
            .arg(cursor)
            .arg("COUNT")
            .arg(count);
        // Walked as Redis sent it: one entry with a field name that is not UTF-8 must
        // not fail the claim of every other (Redis counted them).
        if !owners {
            return crate::store::reply::autoclaim(claim.query_async(&mut self.redis).await?);
        }
        let mut pipe = redis::pipe();
        pipe.cmd("XPENDING")
            .arg(priority.stream())
            .arg(&self.group)
            .arg("IDLE")
            .arg(min_idle)
            .arg(cursor)
            .arg("+")
            .arg(count)
            .add_command(claim);
        let mut replies: Vec<Value> = pipe.query_async(&mut self.redis).await?;
        let claimed = replies.pop().unwrap_or(Value::Nil);
        let mut reply = crate::store::reply::autoclaim(claimed)?;
        reply.from = replies
            .first()
            .map(crate::store::reply::pending_owners)
            .unwrap_or_default();
        Ok(reply)
    }

    async fn deliveries(&mut self, priority: Priority, entry_id: &str) -> RedisResult<u64> {
        let reply: StreamPendingCountReply = redis::cmd("XPENDING")
            .arg(priority.stream())
            .arg(&self.group)
            .arg(entry_id)
            .arg(entry_id)
            .arg(1)
            .query_async(&mut self.redis)
            .await?;
        Ok(reply.ids.first().map_or(1, |p| p.times_delivered as u64))
    }

    async fn entry(&mut self, priority: Priority, entry_id: &str) -> RedisResult<Option<Entry>> {
        let reply = redis::cmd("XRANGE")
            .arg(priority.stream())
            .arg(entry_id)
            .arg(entry_id)
            .query_async(&mut self.redis)
            .await?;
        Ok(crate::store::reply::range(reply)?.into_iter().next())
    }

    async fn attempts(
        &mut self,
        task_id: &str,
        priority: Priority,
        entry_id: &str,
    ) -> RedisResult<Vec<Attempt>> {
        let items: Vec<Value> = redis::cmd("LRANGE")
            .arg(keys::task_record(task_id))
            .arg(0)
            .arg(-1)
            .query_async(&mut self.redis)
            .await?;
        let agent = keys::agent_of_group(&self.group).unwrap_or_default();
        Ok(crate::store::dlq::attempts_of(
            &items,
            priority.stream(),
            entry_id,
            agent,
        ))
    }

    async fn say_alive(&mut self, records: &[Write]) -> RedisResult<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(&self.alive_key)
            .arg(crate::metrics::unix_ms())
            .arg("PX")
            .arg(ALIVE_TTL.as_millis() as u64);
        self.with_records(vec![cmd], records).await
    }

    async fn finish_reads(&mut self, mut reader: RedisReader) -> RedisResult<()> {
        // Replies come in order: the PING's comes once every read sent before it is
        // done. Until then, a read blocked in Redis is unblocked, again and again (one
        // still on its way when the first unblock came may block after it).
        let ping_cmd = redis::cmd("PING");
        let ping = ping_cmd.query_async::<()>(&mut reader.conn);
        tokio::pin!(ping);
        loop {
            redis::cmd("CLIENT")
                .arg("UNBLOCK")
                .arg(reader.client_id)
                .query_async::<i64>(&mut self.redis)
                .await?;
            tokio::select! {
                done = &mut ping => return done,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    async fn leave(&mut self) -> RedisResult<bool> {
        crate::store::groups::remove_consumer(
            &mut self.redis,
            &keys::task_streams(),
            &self.group,
            &self.consumer,
            Some(&self.alive_key),
        )
        .await
    }
}

/// `XREADGROUP` of new entries (`>`) on `streams`.
fn read_group(
    group: &str,
    consumer: &str,
    streams: &[Priority],
    count: usize,
    block: Option<Duration>,
) -> redis::Cmd {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if let Some(block) = block {
        cmd.arg("BLOCK").arg(block.as_millis() as u64);
    }
    cmd.arg("STREAMS");
    for priority in streams {
        cmd.arg(priority.stream());
    }
    for _ in streams {
        cmd.arg(">");
    }
    cmd
}

/// The entries of an `XREADGROUP` reply on the task streams (see
/// [`crate::store::reply`]).
fn entries(reply: Value) -> RedisResult<Vec<(Priority, Entry)>> {
    crate::store::reply::entries(reply, Priority::from_stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec::{decode_task, decode_task_fields};
    use crate::store::reply::text;
    use std::collections::HashMap;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn task_fields(extra: &[(&str, Value)]) -> Vec<Value> {
        let mut fields: Vec<Value> = [
            ("id", "t1"),
            ("from", "harold"),
            ("to", "pink"),
            ("priority", "high"),
            ("type", "coding"),
            ("payload", r#"{"a":1}"#),
            ("created", "1704556800"),
        ]
        .iter()
        .flat_map(|(k, v)| [bulk(k), bulk(v)])
        .collect();
        for (k, v) in extra {
            fields.push(bulk(k));
            fields.push(v.clone());
        }
        fields
    }

    #[test]
    fn reads_name_each_stream_then_each_from_new() {
        let cmd = read_group(
            "agent:pink",
            "c1",
            &[Priority::Critical, Priority::Low],
            8,
            Some(Duration::from_millis(1500)),
        );
        let args: Vec<String> = cmd
            .args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => "<other>".to_owned(),
            })
            .collect();
        assert_eq!(
            args.join(" "),
            "XREADGROUP GROUP agent:pink c1 COUNT 8 BLOCK 1500 STREAMS \
             cortex:tasks:critical cortex:tasks:low > >"
        );
    }

    #[test]
    fn read_replies_are_taken_apart_without_redis_rs_maps() {
        assert!(entries(Value::Nil).unwrap().is_empty());
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("cortex:tasks:high"),
                Value::Array(vec![
                    Value::Array(vec![bulk("5-0"), Value::Array(task_fields(&[]))]),
                    // Deleted while pending.
                    Value::Array(vec![bulk("6-0"), Value::Nil]),
                ]),
            ]),
            Value::Array(vec![bulk("not:a:task:stream"), Value::Array(vec![])]),
        ]);
        let got = entries(reply).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, Priority::High);
        assert_eq!(got[0].1.id, "5-0");
        let task = decode_task_fields(got[0].1.fields.as_deref().unwrap()).unwrap();
        assert_eq!(task.id, "t1");
        assert_eq!(task.payload["a"], 1);
        assert_eq!(got[1].1.id, "6-0");
        assert!(got[1].1.fields.is_none());
        // RESP3 shape: a map of streams.
        let reply = Value::Map(vec![(
            bulk("cortex:tasks:low"),
            Value::Array(vec![Value::Array(vec![
                bulk("7-1"),
                Value::Array(task_fields(&[])),
            ])]),
        )]);
        assert_eq!(entries(reply).unwrap()[0].1.id, "7-1");
        assert!(entries(Value::Int(3)).is_err());
        assert!(entries(Value::Array(vec![Value::Array(vec![bulk("x")])])).is_err());
    }

    #[test]
    fn entries_decode_as_the_codec_decodes_them() {
        let cases = [
            task_fields(&[]),
            // Unknown fields are ignored, also when not UTF-8.
            task_fields(&[("extra", Value::BulkString(vec![0xff]))]),
            // The last of a repeated field wins.
            task_fields(&[("type", bulk("review"))]),
            // A known field that is not UTF-8, a bad payload, a missing field.
            task_fields(&[("to", Value::BulkString(vec![0xff]))]),
            task_fields(&[("payload", bulk("[1]"))]),
            task_fields(&[])[2..].to_vec(),
        ];
        for fields in cases {
            let map: HashMap<String, Value> = fields
                .chunks_exact(2)
                .map(|pair| (text(&pair[0]).unwrap().into_owned(), pair[1].clone()))
                .collect();
            assert_eq!(decode_task_fields(&fields), decode_task(&map), "{fields:?}");
        }
    }
}
