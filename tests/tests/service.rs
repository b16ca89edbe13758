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
