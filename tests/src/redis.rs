//! A throwaway `redis-server` on a free loopback port, with its data in a temp dir.

use crate::process::Spawned;
use std::process::Command;
use std::time::Duration;

/// A running `redis-server`, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    process: Spawned,
    port: u16,
    persistence: &'static [&'static str],
    dir: tempfile::TempDir,
}

/// No persistence: the default for tests.
const EPHEMERAL: &[&str] = &["--save", "", "--appendonly", "no"];
/// Every write fsynced to the append-only file before it is acknowledged.
const DURABLE: &[&str] = &[
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
];

impl RedisServer {
    /// Starts a server on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(EPHEMERAL)
    }

    /// Starts a server with an append-only file fsynced on every write, so that a
    /// [`RedisServer::restart`] (even after SIGKILL) keeps every acknowledged write.
    pub fn start_durable() -> Self {
        Self::start_with(DURABLE)
    }

    /// [`RedisServer::start_durable`] with its data in a new directory under `parent`
    /// (e.g. `/dev/shm`, where an fsync costs nothing, for a test that kills processes
    /// and measures them, not the disk: what Redis wrote survives a process's death
    /// there as on a disk).
    pub fn start_durable_in(parent: &std::path::Path) -> Self {
        Self::start_in(DURABLE, tempfile::tempdir_in(parent).expect("temp dir"))
    }

    fn start_with(persistence: &'static [&'static str]) -> Self {
        Self::start_in(persistence, tempfile::tempdir().expect("temp dir"))
    }

    fn start_in(persistence: &'static [&'static str], dir: tempfile::TempDir) -> Self {
        // The port is free when picked but may be taken before redis binds it: retry.
        for _ in 0..5 {
            let port = crate::free_port();
            if let Some(process) = spawn(port, persistence, dir.path()) {
                return Self {
                    process,
                    port,
                    persistence,
                    dir,
                };
            }
        }
        panic!("redis-server did not start on a free port after 5 tries");
    }

    /// Kills the server (SIGKILL) and waits until it has exited.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Stops the server as an operator would (SIGTERM: it writes its append-only file
    /// and exits), and waits until it has exited.
    pub fn shutdown(&mut self) {
        self.process.terminate();
        self.process
            .wait_exit(Duration::from_secs(10))
            .expect("redis-server exits within 10 s of SIGTERM");
    }

    /// `CLIENT KILL TYPE normal`: drops every ordinary client connection (not replicas
    /// or pub/sub, nor the connection that sends it), as a network blip or an operator
    /// would; returns how many were dropped.
    pub async fn kill_clients(&self) -> u64 {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .query_async(&mut self.connection().await)
            .await
            .expect("CLIENT KILL TYPE normal")
    }

    /// Starts the server again on the same port with the same data directory (killing
    /// it first if it still runs).
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = spawn(self.port, self.persistence, self.dir.path())
            .unwrap_or_else(|| panic!("redis-server did not restart on port {}", self.port));
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A new async connection to it (see [`connect`]).
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        connect(&self.url()).await
    }

    /// The server's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

fn spawn(port: u16, persistence: &[&str], dir: &std::path::Path) -> Option<Spawned> {
    let bin = crate::tool(
        "REDIS_SERVER",
        &["redis-server", "/usr/bin/redis-server"],
        "apt-get install -y redis-server (cargo xtask test does it)",
    );
    let mut process = Spawned::spawn(
        &format!("redis:{port}"),
        Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(persistence)
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(dir),
    )
    .expect("spawn redis-server");
    // "Ready to accept connections" (TCP) in Redis 7.0.
    process
        .wait_for_line("eady to accept connections", Duration::from_secs(10))
        .ok()
        .map(|_| process)
}

/// A new async connection to the Redis at `url`. Its replies may take up to 10 s
/// (redis-rs's default is 0.5 s): a test's own reads and writes wait out a server kept
/// busy by the load under test instead of failing.
pub async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(10)));
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect to the test redis")
}

/// `XADD stream * field value …`; returns the entry id.
pub async fn xadd(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    fields: &[(&str, &str)],
) -> String {
    xadd_at(conn, stream, "*", fields).await
}

/// `XADD stream <at> field value …` (`at`: an entry id, or `*` for now); returns the
/// entry id.
pub async fn xadd_at(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    at: &str,
    fields: &[(&str, &str)],
) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg(at);
    for (field, value) in fields {
        cmd.arg(*field).arg(*value);
    }
    cmd.query_async(conn).await.expect("XADD")
}

/// `XADD stream * field value …` with fields as raw bytes (names and values need not
/// be UTF-8); returns the entry id.
pub async fn xadd_bytes(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    fields: &[(Vec<u8>, Vec<u8>)],
) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (field, value) in fields {
        cmd.arg(field.as_slice()).arg(value.as_slice());
    }
    cmd.query_async(conn).await.expect("XADD")
}
