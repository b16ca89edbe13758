//! Stream trimming never removes a task a group still needs (README, Configuration: `--trim-maxlen`).

use cortex_e2e::redis::{xadd, RedisServer};
use cortex_relay::engine::trim::trim_task_stream;
use cortex_shared::EntryId;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::StreamReadReply;

fn task(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("id", format!("t{n}")),
        ("from", "harold".into()),
        ("to", "pink".into()),
        ("priority", "normal".into()),
        ("type", "coding".into()),
        ("payload", "{}".into()),
        ("created", "1704556800".into()),
    ]
}

async fn exists(conn: &mut redis::aio::MultiplexedConnection, stream: &str, id: &str) -> bool {
    let found: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg(stream)
        .arg(id)
        .arg(id)
        .query_async(conn)
        .await
        .unwrap();
    !found.is_empty()
}

#[tokio::test]
async fn trimming_keeps_pending_and_undelivered_tasks() {
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;
    let stream = "cortex:tasks:normal";
    // Small nodes, so that approximate trimming has something to trim in a test.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("stream-node-max-entries")
        .arg(4)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..100 {
        let fields = task(n);
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ids.push(xadd(&mut conn, stream, &pairs).await);
    }
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg("agent:pink")
        .arg("0")
        .query_async(&mut conn)
        .await
        .unwrap();
    // pink's consumer takes 30 and acks the first 10: 11..30 pending, 31.. undelivered.
    let _: StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("agent:pink")
        .arg("c1")
        .arg("COUNT")
        .arg(30)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    for id in &ids[..10] {
        let _: u64 = redis::cmd("XACK")
            .arg(stream)
            .arg("agent:pink")
            .arg(id)
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    let mut manager = redis::Client::open(redis.url())
        .unwrap()
        .get_connection_manager()
        .await
        .unwrap();
    let trimmed = cortex_relay::engine::trim::trim_task_stream(&mut manager, stream, 5)
        .await
        .unwrap();
    assert_eq!(
        trimmed.floor,
        Some(ids[10].parse::<EntryId>().unwrap()),
        "held at the oldest pending"
    );
    assert!(trimmed.removed > 0, "{trimmed:?}");
    for id in &ids[10..] {
        assert!(exists(&mut conn, stream, id).await, "{id} is still needed");
    }
    let len: u64 = redis::cmd("XLEN")
        .arg(stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(len < 100, "something was trimmed (len {len})");

    // Once everything is acked, the stream comes down to about the limit.
    let _: StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("agent:pink")
        .arg("c1")
        .arg("COUNT")
        .arg(100)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .unwrap();
    for id in &ids[10..] {
        let _: u64 = redis::cmd("XACK")
            .arg(stream)
            .arg("agent:pink")
            .arg(id)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    cortex_relay::engine::trim::trim_task_stream(&mut manager, stream, 5)
        .await
        .unwrap();
    let len: u64 = redis::cmd("XLEN")
        .arg(stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((5..=5 + 4).contains(&len), "about 5 left (len {len})");
    for id in &ids[95..] {
        assert!(exists(&mut conn, stream, id).await, "the newest 5 stay");
    }
}

/// Adds `n` tasks to `stream` in pipelines of 1,000; their ids, oldest first.
async fn add_tasks(conn: &mut MultiplexedConnection, stream: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(1000) {
        let mut pipe = redis::pipe();
        for k in start..(start + 1000).min(n) {
            pipe.cmd("XADD").arg(stream).arg("*");
            for (field, value) in task(k) {
                pipe.arg(field).arg(value);
            }
        }
        let added: Vec<String> = pipe.query_async(conn).await.unwrap();
        ids.extend(added);
    }
    ids
}

async fn xlen(conn: &mut MultiplexedConnection, stream: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(conn)
        .await
        .unwrap()
}

async fn manager(redis: &RedisServer) -> ConnectionManager {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection_manager()
        .await
        .unwrap()
}

/// Creates `group` on `stream` with its last delivered entry at `at`.
async fn create_group(conn: &mut MultiplexedConnection, stream: &str, group: &str, at: &str) {
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg(at)
        .query_async(conn)
        .await
        .unwrap();
}

/// Bytes Redis has sent to all its clients so far (`INFO stats`).
async fn net_output_bytes(conn: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("total_net_output_bytes in INFO stats")
}

#[tokio::test]
async fn trimming_holds_at_the_group_furthest_behind() {
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;
    let stream = "cortex:tasks:high";
    let ids = add_tasks(&mut conn, stream, 3_000).await;
    // pink has read everything; blue has read up to task 1,999 (nothing pending).
    create_group(&mut conn, stream, "agent:pink", "$").await;
    create_group(&mut conn, stream, "agent:blue", &ids[1_999]).await;

    let mut manager = manager(&redis).await;
    let trimmed = trim_task_stream(&mut manager, stream, 100).await.unwrap();
    let after_blue = {
        let last: EntryId = ids[1_999].parse().unwrap();
        EntryId::new(last.ms, last.seq + 1)
    };
    assert_eq!(
        trimmed.floor,
        Some(after_blue),
        "the first blue has not read"
    );
    let len = xlen(&mut conn, stream).await;
    // Whole nodes of 100 entries go: what blue has not read stays, and at most one
    // node's worth before it.
    assert!((1_000..1_100).contains(&len), "len {len}");
    assert_eq!(trimmed.removed, 3_000 - len);
    for id in [&ids[2_000], &ids[2_500], &ids[2_999]] {
        assert!(
            exists(&mut conn, stream, id).await,
            "{id} is unread by blue"
        );
    }

    // Once blue has read everything, the stream comes down to about the cap.
    let _: () = redis::cmd("XGROUP")
        .arg("SETID")
        .arg(stream)
        .arg("agent:blue")
        .arg("$")
        .query_async(&mut conn)
        .await
        .unwrap();
    trim_task_stream(&mut manager, stream, 100).await.unwrap();
    let len = xlen(&mut conn, stream).await;
    assert!((100..200).contains(&len), "len {len}");
    assert!(
        exists(&mut conn, stream, &ids[2_900]).await,
        "the newest 100 stay"
    );
}

#[tokio::test]
async fn one_round_brings_a_stream_far_over_its_cap_down_to_it() {
    // 30,000 entries over a cap of 1,000, no groups: one round cuts 29,000 (whole
    // nodes), not the 10,000 an `XTRIM … ~` without `LIMIT` stops at, which a stream
    // growing by more than that per round (1,000 tasks/s) would outrun.
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;
    let stream = "cortex:tasks:low";
    let ids = add_tasks(&mut conn, stream, 30_000).await;
    let mut manager = manager(&redis).await;
    let trimmed = trim_task_stream(&mut manager, stream, 1_000).await.unwrap();
    assert_eq!(trimmed.floor, None, "no groups");
    let len = xlen(&mut conn, stream).await;
    assert!((1_000..1_100).contains(&len), "len {len}");
    assert!(
        exists(&mut conn, stream, &ids[29_000]).await,
        "the newest 1,000 stay"
    );
    // The heartbeats and the DLQ are cut the same way.
    let hb = add_tasks(&mut conn, "cortex:heartbeats", 12_000).await;
    cortex_relay::engine::trim::trim_all(&mut manager, 1_000)
        .await
        .unwrap();
    let len = xlen(&mut conn, "cortex:heartbeats").await;
    assert!((1_000..1_100).contains(&len), "heartbeats len {len}");
    assert!(exists(&mut conn, "cortex:heartbeats", &hb[11_000]).await);
}

#[tokio::test]
async fn what_a_trim_reads_does_not_grow_with_the_cap() {
    // The same streams trimmed at caps of 100 and of 10,000: Redis sends the trimmer
    // about as much either way (a few replies of a group or two), where reading the
    // newest `maxlen` entries to learn one id sent ~100 bytes per entry.
    let redis = RedisServer::start();
    let mut conn = redis.connection().await;
    let mut manager = manager(&redis).await;
    let mut sent = Vec::new();
    for (stream, maxlen) in [("cortex:tasks:high", 100), ("cortex:tasks:normal", 10_000)] {
        let ids = add_tasks(&mut conn, stream, 20_000).await;
        create_group(&mut conn, stream, "agent:pink", "$").await;
        // blue has tasks 15,001.. 15,005 pending: the floor.
        create_group(&mut conn, stream, "agent:blue", &ids[15_000]).await;
        let _: StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("agent:blue")
            .arg("b1")
            .arg("COUNT")
            .arg(5)
            .arg("STREAMS")
            .arg(stream)
            .arg(">")
            .query_async(&mut conn)
            .await
            .unwrap();
        // Once, so that loading the script is not counted.
        add_tasks(&mut conn, "cortex:tasks:critical", 10).await;
        trim_task_stream(&mut manager, "cortex:tasks:critical", 5)
            .await
            .unwrap();

        let before = net_output_bytes(&mut conn).await;
        let trimmed = trim_task_stream(&mut manager, stream, maxlen)
            .await
            .unwrap();
        let after = net_output_bytes(&mut conn).await;
        sent.push(after - before);

        // And the cut is right: at most the cap's worth and what blue holds stay.
        assert_eq!(trimmed.floor, Some(ids[15_001].parse().unwrap()));
        let len = xlen(&mut conn, stream).await;
        let kept = maxlen.max(20_000 - 15_001);
        assert!((kept..kept + 100).contains(&len), "{stream}: len {len}");
        assert_eq!(trimmed.removed, 20_000 - len);
        assert!(
            exists(&mut conn, stream, &ids[15_001]).await,
            "pending stays"
        );
    }
    // One INFO reply (~2 KiB) is counted in each; the trim adds a few hundred bytes.
    for bytes in &sent {
        assert!(*bytes < 8 * 1024, "a trim made Redis send {sent:?} bytes");
    }
    assert!(
        sent[1] < sent[0] + 1024,
        "a cap 100 times larger costs {sent:?} bytes"
    );
}
