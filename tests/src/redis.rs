//! A throwaway `redis-server` on a free loopback port, with its data in a temp dir.

use crate::process::Spawned;
use std::process::Command;
use std::time::Duration;

/// A running `redis-server`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    process: Spawned,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        let bin = crate::tool(
            "REDIS_SERVER",
            &["redis-server", "/usr/bin/redis-server"],
            "apt-get install -y redis-server (cargo xtask test does it)",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        // The port is free when picked but may be taken before redis binds it: retry.
        for _ in 0..5 {
            let port = crate::free_port();
            let mut process = Spawned::spawn(
                &format!("redis:{port}"),
                Command::new(&bin)
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                    .arg("--dir")
                    .arg(dir.path()),
            )
            .expect("spawn redis-server");
            if process
                .wait_for_line("eady to accept connections", Duration::from_secs(10))
                .is_ok()
            {
                return Self {
                    process,
                    port,
                    _dir: dir,
                };
            }
        }
        panic!("redis-server did not start on a free port after 5 tries");
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A new async connection to it.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis")
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// `XADD stream * field value …`; returns the entry id.
pub async fn xadd(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    fields: &[(&str, &str)],
) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (field, value) in fields {
        cmd.arg(*field).arg(*value);
    }
    cmd.query_async(conn).await.expect("XADD")
}
