//! The relay as a program: the embedded default (a managed redis-server) and stopping
//! on SIGTERM.

use cortex_e2e::redis::xadd;
use cortex_e2e::relay::Relay;
use cortex_e2e::ws::WsClient;
use std::time::Duration;

#[tokio::test]
async fn without_a_redis_url_it_runs_its_own_redis_server_and_stops_it_on_sigterm() {
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap().to_owned();
    // Nothing listens on this port, so the relay must start a redis-server of its own.
    let nowhere = format!("redis://127.0.0.1:{}/", cortex_e2e::free_port());
    let mut relay = Relay::spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--state-dir",
        &state_dir,
        "--local-redis-url",
        &nowhere,
    ]);

    let socket = state.path().join("redis.sock");
    assert!(
        socket.exists(),
        "managed redis socket at {}",
        socket.display()
    );
    let url = format!("redis+unix://{}", socket.display());
    let mut conn = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("the managed redis-server answers on its socket");

    // The relay bridges it like any other Redis.
    let mut pink = WsClient::connect(&relay.ws_url()).await;
    pink.subscribe("pink").await;
    xadd(
        &mut conn,
        "cortex:tasks:low",
        &[
            ("id", "embedded-1"),
            ("from", "harold"),
            ("to", "pink"),
            ("priority", "low"),
            ("type", "deploy"),
            ("payload", "{}"),
            ("created", "1704556800"),
        ],
    )
    .await;
    assert_eq!(pink.expect("task").await["data"]["id"], "embedded-1");
    // Its data lives under the state directory.
    assert!(state.path().join("appendonlydir").is_dir());

    relay.process().terminate();
    let status = relay
        .process()
        .wait_exit(Duration::from_secs(15))
        .expect("the relay exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(
        !socket.exists(),
        "the managed redis-server is stopped with the relay"
    );
    let gone = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await;
    assert!(
        gone.is_err(),
        "nothing answers on the managed socket any more"
    );
}

/// Runs the relay binary to completion with `args` and `env`; exit code, stdout, stderr.
fn run_relay(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut command = std::process::Command::new(cortex_e2e::relay::relay_bin());
    command.args(args);
    for var in [
        "CORTEX_LISTEN",
        "CORTEX_REDIS_URL",
        "CORTEX_PREFETCH",
        "CORTEX_BLOCK_MS",
        "CORTEX_CONFIG",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let output = command.output().expect("run cortex-relay");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn configuration_is_file_then_environment_then_flags() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(
        &mut file,
        b"relay:\n  prefetch: 7\n  block_ms: 1000\n  max_deliveries: 5\n",
    )
    .unwrap();
    let path = file.path().to_str().unwrap();
    let (code, out, err) = run_relay(
        &["--config", path, "--block-ms", "3000", "--print-config"],
        &[("CORTEX_PREFETCH", "8"), ("CORTEX_BLOCK_MS", "2000")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("max_deliveries: 5"), "file: {out}");
    assert!(out.contains("prefetch: 8"), "env over file: {out}");
    assert!(out.contains("block_ms: 3000"), "flag over env: {out}");
}

#[test]
fn public_hosts_come_from_the_environment_comma_separated() {
    let hosts = [("CORTEX_PUBLIC_HOSTS", "relay.example.org,ops.lan")];
    let (code, out, err) = run_relay(&["--print-config"], &hosts);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("public_hosts:\n  - relay.example.org\n  - ops.lan\n"),
        "{out}"
    );
    let (code, _, err) = run_relay(&[], &[("CORTEX_PUBLIC_HOSTS", "https://relay.example.org")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("public_hosts"), "{err}");
}

#[test]
fn a_bad_configuration_stops_start_up_naming_the_key() {
    let cases: [(&str, &[&str], &str); 4] = [
        ("relay:\n  prefech: 3\n", &[], "prefech"),
        ("relay:\n  max_deliveries: 0\n", &[], "max_deliveries"),
        ("messaging:\n  redis_addr: [1]\n", &[], "redis_addr"),
        ("relay: {}\n", &["--listen", "0.0.0.0:0"], "listen"),
    ];
    for (text, extra, key) in cases {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
        let mut args = vec!["--config", file.path().to_str().unwrap()];
        args.extend_from_slice(extra);
        let (code, _, err) = run_relay(&args, &[]);
        assert_eq!(code, 2, "{text:?}: {err}");
        assert!(err.contains(key), "{text:?} should name {key}: {err}");
    }
    let (code, _, err) = run_relay(&["--prefetch", "many"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("--prefetch"), "{err}");
}

#[tokio::test]
async fn sigterm_with_tasks_in_flight_loses_nothing() {
    use cortex_agent::{Publisher, RelayConsumer, TaskRequest};
    use cortex_shared::Priority;
    use std::collections::BTreeSet;

    let redis = cortex_e2e::redis::RedisServer::start();
    let flags = ["--visibility-timeout-ms", "1000"];
    let mut relay = Relay::start_with(&redis.url(), "127.0.0.1:0", &flags);
    let addr = relay.addr().to_owned();
    let publisher = Publisher::connect(&redis.url()).await.unwrap();
    let mut pink = RelayConsumer::connect(&relay.ws_url(), "pink", "pink-1")
        .await
        .unwrap();
    let mut published = BTreeSet::new();
    for _ in 0..40 {
        let sent = publisher
            .publish("harold", TaskRequest::new("pink", Priority::High, "coding"))
            .await
            .unwrap();
        published.insert(sent.task_id);
    }
    // Ack 10; keep 10 more delivered and unacked (in flight) at the SIGTERM.
    let mut acked = BTreeSet::new();
    let mut in_flight = Vec::new();
    while acked.len() < 10 || in_flight.len() < 10 {
        let d = tokio::time::timeout(Duration::from_secs(10), pink.next())
            .await
            .unwrap()
            .unwrap();
        if acked.len() < 10 {
            pink.ack(&d).await.unwrap();
            acked.insert(d.task.id);
        } else {
            in_flight.push(d);
        }
    }

    let asked = std::time::Instant::now();
    relay.process().terminate();
    let status = relay
        .process()
        .wait_exit(Duration::from_secs(15))
        .expect("the relay exits after SIGTERM");
    let shutdown = asked.elapsed();
    assert!(status.success(), "{status:?}");

    // Nothing in flight was acked on the client's behalf.
    let mut conn = redis.connection().await;
    let pending: (u64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
        .arg("cortex:tasks:high")
        .arg("agent:pink")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        pending.0 >= in_flight.len() as u64,
        "in-flight tasks still pending: {}",
        pending.0
    );

    // Back up on the same address: the consumer reconnects by itself and every task
    // not yet acked arrives.
    let _relay = Relay::start_with(&redis.url(), &addr, &flags);
    while acked.len() < published.len() {
        let d = tokio::time::timeout(Duration::from_secs(20), pink.next())
            .await
            .expect("deliveries resume after the restart")
            .unwrap();
        if pink.ack(&d).await.is_ok() {
            acked.insert(d.task.id);
        }
    }
    assert_eq!(acked, published);
    eprintln!("SIGTERM: relay exited 0 in {shutdown:?}; 40 published, 40 acked, 0 lost");
}

#[tokio::test]
async fn memory_with_a_thousand_idle_connections() {
    let redis = cortex_e2e::redis::RedisServer::start();
    let relay = Relay::start(&redis.url());
    let pid = relay.pid();
    let before = cortex_e2e::process::rss_kib(pid);
    let mut clients = Vec::new();
    for _ in 0..1000 {
        let mut client = WsClient::connect(&relay.ws_url()).await;
        client.subscribe("pink").await;
        clients.push(client);
    }
    let after = cortex_e2e::process::rss_kib(pid);
    eprintln!(
        "memory: RSS {before} KiB idle, {after} KiB with 1000 watchers ({:.1} KiB each)",
        (after.saturating_sub(before)) as f64 / 1000.0
    );
    // All of them are still served.
    let mut conn = redis.connection().await;
    xadd(
        &mut conn,
        "cortex:tasks:low",
        &[
            ("id", "to-all-watchers"),
            ("from", "harold"),
            ("to", "pink"),
            ("priority", "low"),
            ("type", "deploy"),
            ("payload", "{}"),
            ("created", "1704556800"),
        ],
    )
    .await;
    for client in &mut clients {
        assert_eq!(client.expect("task").await["data"]["id"], "to-all-watchers");
    }
}
