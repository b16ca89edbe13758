//! Helpers shared by the `api_*` end-to-end tests: dead letters written straight to
//! Redis in the README's Redis layout, reading streams back, and the relay's JSON API.

#![allow(dead_code, unreachable_pub)]

use cortex_e2e::ws::WsClient;
use cortex_shared::DeadLetter;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamRangeReply;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a test waits for an event.
pub const WAIT: Duration = Duration::from_secs(10);

/// A letter for a well-formed task.
pub fn letter(
    id: &str,
    to: &str,
    from: &str,
    priority: &str,
    error: &str,
    payload: &str,
) -> DeadLetter {
    DeadLetter {
        original_id: id.into(),
        original_from: from.into(),
        original_to: to.into(),
        original_priority: priority.into(),
        original_type: "coding".into(),
        original_payload: payload.into(),
        original_created: "1704556800".into(),
        error: error.into(),
        retry_count: 3,
        dead_at: 1_704_556_900,
        original_stream: None,
        original_entry_id: None,
        ..Default::default()
    }
}

/// `XADD cortex:tasks:dlq <id> …letter`; returns the DLQ id.
pub async fn add_letter_at(
    conn: &mut MultiplexedConnection,
    at: &str,
    letter: &DeadLetter,
) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg("cortex:tasks:dlq").arg(at);
    for (field, value) in letter.to_fields() {
        cmd.arg(field).arg(value);
    }
    cmd.query_async(conn).await.expect("XADD letter")
}

/// `XADD cortex:tasks:dlq * …letter`; returns the DLQ id.
pub async fn add_letter(conn: &mut MultiplexedConnection, letter: &DeadLetter) -> String {
    add_letter_at(conn, "*", letter).await
}

/// Adds many letters in pipelines of 1,000; returns their ids in order.
pub async fn add_letters(conn: &mut MultiplexedConnection, letters: &[DeadLetter]) -> Vec<String> {
    let mut ids = Vec::with_capacity(letters.len());
    for chunk in letters.chunks(1000) {
        let mut pipe = redis::pipe();
        for letter in chunk {
            let cmd = pipe.cmd("XADD").arg("cortex:tasks:dlq").arg("*");
            for (field, value) in letter.to_fields() {
                cmd.arg(field).arg(value);
            }
        }
        let added: Vec<String> = pipe.query_async(conn).await.expect("XADD letters");
        ids.extend(added);
    }
    ids
}

/// Every entry of `stream`: id and fields as text.
pub async fn entries(
    conn: &mut MultiplexedConnection,
    stream: &str,
) -> Vec<(String, BTreeMap<String, String>)> {
    let reply: StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query_async(conn)
        .await
        .expect("XRANGE");
    reply
        .ids
        .into_iter()
        .map(|e| {
            let fields = e
                .map
                .iter()
                .map(|(k, v)| (k.clone(), redis::from_redis_value_ref::<String>(v).unwrap()))
                .collect();
            (e.id, fields)
        })
        .collect()
}

/// Every task entry in the four task streams: (stream, id, fields).
pub async fn all_tasks(
    conn: &mut MultiplexedConnection,
) -> Vec<(String, String, BTreeMap<String, String>)> {
    let mut out = Vec::new();
    for stream in [
        "cortex:tasks:critical",
        "cortex:tasks:high",
        "cortex:tasks:normal",
        "cortex:tasks:low",
    ] {
        for (id, fields) in entries(conn, stream).await {
            out.push((stream.to_owned(), id, fields));
        }
    }
    out
}

/// `XLEN`.
pub async fn xlen(conn: &mut MultiplexedConnection, stream: &str) -> u64 {
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(conn)
        .await
        .expect("XLEN")
}

/// A JSON API call on `addr`.
pub async fn api(addr: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    cortex_e2e::http::json(addr, method, path, body.as_ref()).await
}

/// `GET` and expect 200; the JSON body.
pub async fn get_ok(addr: &str, path: &str) -> Value {
    let (status, body) = api(addr, "GET", path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// The next frame for which `pred` holds, skipping others, within [`WAIT`].
pub async fn frame_where(ws: &mut WsClient, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let wait = async {
        loop {
            let frame = ws.next().await;
            if pred(&frame) {
                return frame;
            }
        }
    };
    tokio::time::timeout(WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} frame within {WAIT:?}"))
}

/// The ids of every letter the listing returns with `query`, page by page (`limit`).
pub async fn list_all(addr: &str, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/messaging/dlq?limit={limit}");
        if !query.is_empty() {
            path.push('&');
            path.push_str(query);
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = get_ok(addr, &path).await;
        for item in page["items"].as_array().unwrap() {
            ids.push(item["dlq_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}
