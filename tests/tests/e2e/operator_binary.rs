//! The `cortex` binary: the operator commands without the server, run as a subprocess
//! against a real `redis-server`.

use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::relay_bin;
use std::process::Command;

/// `cortex` next to the relay binary (both built by `cargo build -p cortex-relay`).
fn cortex() -> Command {
    let bin = relay_bin().with_file_name("cortex");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build -p cortex-relay`",
        bin.display()
    );
    let mut command = Command::new(bin);
    command.env_clear();
    command
}

#[tokio::test]
async fn cortex_publishes_and_replays_on_redis_and_has_no_server_flags() {
    let redis = RedisServer::start();
    let url = redis.url();
    let published = cortex()
        .args([
            "publish",
            "--redis-url",
            &url,
            "--to",
            "pink",
            "--type",
            "coding",
        ])
        .args(["--priority", "high", "--json"])
        .output()
        .unwrap();
    assert!(published.status.success(), "{published:?}");
    let answer: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    let task_id = answer["task_id"].as_str().unwrap().to_owned();

    let replayed = cortex()
        .args(["replay", "high", "--redis-url", &url, "--json"])
        .output()
        .unwrap();
    assert!(replayed.status.success(), "{replayed:?}");
    let text = String::from_utf8(replayed.stdout).unwrap();
    assert!(text.contains(&task_id), "{text}");

    // The server's flags are not its own.
    let refused = cortex().args(["--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let help = cortex().arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("dlq") && !help.contains("--listen"), "{help}");
}
