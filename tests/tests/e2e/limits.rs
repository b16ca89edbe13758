//! Limits (README, Configuration: "Tokens and roles" and `--trim-maxlen`): each abusive or broken client gets its error or its close, and
//! every other client goes on undisturbed, losing nothing.

use cortex_e2e::redis::{xadd, RedisServer};
use cortex_e2e::relay::Relay;
use cortex_e2e::ws::WsClient;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

fn task(id: &str, payload: &str) -> Vec<(&'static str, String)> {
    vec![
        ("id", id.to_owned()),
        ("from", "harold".into()),
        ("to", "pink".into()),
        ("priority", "high".into()),
        ("type", "coding".into()),
        ("payload", payload.to_owned()),
        ("created", "1704556800".into()),
    ]
}

async fn publish(conn: &mut redis::aio::MultiplexedConnection, id: &str, payload: &str) {
    let fields = task(id, payload);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    xadd(conn, "cortex:tasks:high", &pairs).await;
}

/// A bystander: subscribed to pink, and must get every task.
async fn bystander(relay: &Relay) -> WsClient {
    let mut client = WsClient::connect(&relay.ws_url()).await;
    client.subscribe("pink").await;
    client
}

#[tokio::test]
async fn oversized_and_invalid_messages_close_only_their_connection() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut other = bystander(&relay).await;

    // Beyond the hard cap (4 × 64 KiB, at least 1 MiB): the connection is closed.
    let mut huge = WsClient::connect(&relay.ws_url()).await;
    let sent = huge
        .try_send_text(&format!(
            r#"{{"type":"ping","pad":"{}"}}"#,
            "x".repeat(2 << 20)
        ))
        .await;
    // The relay drops the connection: while the client is still sending (the send
    // fails with a reset), or after (a close frame may not make it back).
    match sent {
        Ok(()) => {
            let code = huge.closed().await;
            assert!(
                matches!(code, None | Some(1009)),
                "message too big: {code:?}"
            );
        }
        Err(tokio_tungstenite::tungstenite::Error::Io(e)) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "message too big: {e}"
        ),
        Err(e) => panic!("message too big: unexpected {e}"),
    }

    // A text frame that is not UTF-8: closed as invalid data.
    let mut broken = WsClient::connect(&relay.ws_url()).await;
    let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    broken.send_message(Message::Frame(frame)).await;
    let code = broken.closed().await;
    assert!(matches!(code, None | Some(1007)), "invalid UTF-8: {code:?}");

    let mut conn = redis.connection().await;
    publish(&mut conn, "after-abuse", "{}").await;
    assert_eq!(other.expect("task").await["data"]["id"], "after-abuse");
}

#[tokio::test]
async fn a_flood_of_frames_is_rate_limited_and_the_connection_stays() {
    // The flood must be written before the budget refills: no heavy test alongside
    // (`cortex_e2e::machine`).
    let _timing = cortex_e2e::machine::timing().await;
    let redis = RedisServer::start();
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--max-frames-per-second", "50"],
    );
    let mut other = bystander(&relay).await;
    let mut flood = WsClient::connect(&relay.ws_url()).await;
    for _ in 0..500 {
        flood.send(json!({"type":"ping"})).await;
    }
    let mut pongs = 0;
    loop {
        let frame = flood.next().await;
        match frame["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => {
                assert_eq!(frame["code"], "rate_limited");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        pongs <= 60,
        "about one burst answered, not the flood: {pongs}"
    );

    // The bystander is served at once.
    let mut conn = redis.connection().await;
    publish(&mut conn, "during-flood", "{}").await;
    assert_eq!(other.expect("task").await["data"]["id"], "during-flood");

    // The flooder's connection stays: once its budget refills it is answered again.
    // (A refill takes time by nature: retry, each wait bounded.)
    let started = Instant::now();
    let answered = loop {
        flood.send(json!({"type":"subscribe","agent":"pink"})).await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let mut got = false;
        while let Ok(frame) = tokio::time::timeout_at(deadline, flood.next()).await {
            if frame["type"] == "subscribed" {
                got = true;
                break;
            }
        }
        if got || started.elapsed() > Duration::from_secs(10) {
            break got;
        }
    };
    assert!(answered, "the rate-limited connection is served again");
}

#[tokio::test]
async fn a_burst_within_the_allowance_is_answered_in_full_and_the_connection_stays() {
    // The defaults: 2,000 frames a second (bursts of as many), a send queue of 1,024.
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    for n in [1_800, 2_000, 1_800, 2_000] {
        let mut client = WsClient::connect(&relay.ws_url()).await;
        let started = Instant::now();
        client
            .send_burst((0..n).map(|_| json!({"type":"ping"})))
            .await;
        for received in 0..n {
            let frame = client.next().await;
            assert_eq!(
                frame,
                json!({"type":"pong"}),
                "after {received} of {n} pongs"
            );
        }
        eprintln!(
            "{n} pings in one write: {n} pongs in {:?}",
            started.elapsed()
        );
        // Still open: the next frame is answered (by a pong, or by `rate_limited` if
        // the budget has not refilled yet), not by a close.
        client.send(json!({"type":"ping"})).await;
        let frame = client.next().await;
        assert!(
            frame["type"] == "pong" || frame["code"] == "rate_limited",
            "after {n} pongs: {frame}"
        );
    }
}

#[tokio::test]
async fn a_flooder_that_reads_nothing_is_closed_and_others_are_served() {
    use tokio::io::AsyncWriteExt;
    // The bystander answers 200 ms pings in time: no heavy test alongside
    // (`cortex_e2e::machine`).
    let _timing = cortex_e2e::machine::timing().await;
    let redis = RedisServer::start();
    // Replies wait for the writer two ping intervals (400 ms) at most.
    let relay = Relay::start_with(
        &redis.url(),
        "127.0.0.1:0",
        &["--ping-interval-ms", "200", "--max-frames-per-second", "50"],
    );
    // Reading all along (a reader answers the relay's pings), until its task comes.
    let mut other = bystander(&relay).await;
    let served = tokio::spawn(async move {
        let task = other.next_of_type("task").await;
        (other, task)
    });
    // Handshake, then pings (masked with a zero key, as a client must) without ever
    // reading: its errors and pongs fill the sockets, then the relay stops reading it.
    let mut tcp = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        relay.addr()
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let ping = br#"{"type":"ping"}"#;
    let mut frame = vec![0x81, 0x80 | ping.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(ping);
    let chunk = frame.repeat(1_000);
    let mut sent = 0usize;
    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match tcp.write_all(&chunk).await {
                Ok(()) => sent += 1_000,
                Err(e) => break e,
            }
        }
    })
    .await
    .expect("the relay drops a client that reads nothing");
    eprintln!(
        "flooder: {sent} frames written before the relay dropped it after {:?} ({ended})",
        started.elapsed()
    );
    let (_, metrics) = cortex_e2e::http::get(relay.addr(), "/metrics").await;
    assert!(
        metrics.contains("cortex_relay_slow_client_disconnects_total 1"),
        "counted as too slow: {metrics}"
    );

    // Everyone else was served throughout.
    let mut conn = redis.connection().await;
    publish(&mut conn, "after-flood", "{}").await;
    let (mut other, task) = served.await.unwrap();
    assert_eq!(task["data"]["id"], "after-flood");
    other.send(json!({"type":"ping"})).await;
    assert_eq!(other.next_of_type("pong").await, json!({"type":"pong"}));
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused() {
    let redis = RedisServer::start();
    let relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &["--max-connections", "20"]);
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut client = WsClient::connect(&relay.ws_url()).await;
        client.send(json!({"type":"ping"})).await;
        client.expect("pong").await; // the session is running, so it is counted
        held.push(client);
    }
    let refused = WsClient::connect_with(&relay.ws_url(), &[]).await;
    assert_eq!(refused.err(), Some(503));
    // The ones held are still served.
    for client in &mut held {
        client.send(json!({"type":"ping"})).await;
        client.expect("pong").await;
    }
}

#[tokio::test]
async fn a_slow_reader_is_cut_off_while_a_fast_one_keeps_up() {
    // The fast reader must keep up with the writer: no heavy test alongside
    // (`cortex_e2e::machine`).
    let _timing = cortex_e2e::machine::timing().await;
    let redis = RedisServer::start();
    // The queue must hold a whole read batch (512 entries): bursts are normal.
    let relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &["--send-queue", "600"]);
    let mut fast = bystander(&relay).await;
    let mut slow = WsClient::connect(&relay.ws_url()).await;
    slow.subscribe("pink").await;
    // From here on, `slow` reads nothing until the end.

    const N: usize = 2000;
    let payload = json!({ "pad": "x".repeat(8 * 1024) }).to_string();
    let mut conn = redis.connection().await;
    let publisher = tokio::spawn({
        let payload = payload.clone();
        async move {
            let mut sent_at = Vec::with_capacity(N);
            for n in 0..N {
                sent_at.push(Instant::now());
                publish(&mut conn, &format!("t{n}"), &payload).await;
            }
            sent_at
        }
    });
    let mut received_at = Vec::with_capacity(N);
    for n in 0..N {
        let frame = fast.expect("task").await;
        assert_eq!(frame["data"]["id"], format!("t{n}"), "in order, none lost");
        received_at.push(Instant::now());
    }
    let sent_at = publisher.await.unwrap();
    let worst = sent_at
        .iter()
        .zip(&received_at)
        .map(|(s, r)| r.duration_since(*s))
        .max()
        .unwrap();
    eprintln!("fast reader: {N} tasks of 8 KiB, worst publish-to-receipt {worst:?}");

    // The slow one was closed with "too slow" (4001) after a bounded number of frames.
    let mut frames = 0;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next_message()).await {
            Ok(Some(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(_)) => frames += 1,
            Ok(None) | Err(_) => break None,
        }
    };
    assert!(frames < N, "the slow reader was cut off ({frames} frames)");
    assert!(
        code == Some(4001) || code.is_none(),
        "closed as too slow: {code:?}"
    );
    eprintln!(
        "slow reader: cut off after {frames} of {N} frames, close code {code:?}; relay RSS \
         {} KiB after",
        cortex_e2e::process::rss_kib(relay.pid())
    );
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = RedisServer::start();
    let relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &["--ping-interval-ms", "200"]);
    // A client that completes the handshake, then never answers anything (a WebSocket
    // library would answer pings while reading; this one only reads raw bytes).
    let mut tcp = tokio::net::TcpStream::connect(relay.addr()).await.unwrap();
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        relay.addr()
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut received)).await;
    assert!(ended.is_ok(), "the relay closes a silent connection");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    // A close frame (0x88) carrying code 4002 (0x0fa2), after some pings (0x89).
    assert!(received.contains(&0x89), "pinged first");
    assert!(
        received.windows(2).any(|w| w == [0x0f, 0xa2]),
        "closed with 4002: {received:?}"
    );
}
