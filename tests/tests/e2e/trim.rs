//! Stream trimming never removes a task a group still needs (README, Configuration: `--trim-maxlen`).

use cortex_e2e::redis::{xadd, RedisServer};
use cortex_shared::EntryId;
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
    let minid = cortex_relay::engine::trim::trim_task_stream(&mut manager, stream, 5)
        .await
        .unwrap()
        .expect("a trim");
    assert_eq!(
        minid,
        ids[10].parse::<EntryId>().unwrap(),
        "held at the oldest pending"
    );
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
