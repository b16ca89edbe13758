//! The embedded default: which Redis to use, and the private `redis-server` the relay
//! starts and supervises when none is configured or listening locally.

use crate::config::Config;
use crate::error::RelayError;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The Redis the relay will use, and the managed server behind it, if any.
#[derive(Debug)]
pub struct ResolvedRedis {
    /// Its URL.
    pub url: String,
    /// The private server, when the relay started one; stop it on the way out.
    pub managed: Option<ManagedRedis>,
}

/// Picks the Redis: the configured URL; else the local one (127.0.0.1:6379 by default)
/// if it answers; else a private `redis-server` started under the state directory.
pub async fn resolve(config: &Config) -> Result<ResolvedRedis, RelayError> {
    if let Some(url) = &config.redis_url {
        return Ok(ResolvedRedis {
            url: url.clone(),
            managed: None,
        });
    }
    if answers(&config.local_redis_url).await {
        tracing::info!(url = %config.local_redis_url, "using the Redis listening locally");
        return Ok(ResolvedRedis {
            url: config.local_redis_url.clone(),
            managed: None,
        });
    }
    let managed = ManagedRedis::start(&config.redis_server_bin, &config.state_dir()).await?;
    Ok(ResolvedRedis {
        url: managed.url.clone(),
        managed: Some(managed),
    })
}

/// Whether a Redis at `url` answers PING within half a second.
async fn answers(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        crate::store::ping(&mut conn).await
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), ping).await,
        Ok(Ok(_))
    )
}

/// A `redis-server` owned by this relay: it listens only on a Unix socket in the state
/// directory, keeps its append-only file there, and is shut down with the relay.
#[derive(Debug)]
pub struct ManagedRedis {
    child: Child,
    url: String,
    socket: PathBuf,
}

impl ManagedRedis {
    /// Starts `bin` with its data in `state_dir`, and waits until it accepts
    /// connections.
    pub async fn start(bin: &Path, state_dir: &Path) -> Result<Self, RelayError> {
        let fail = |what: String| RelayError::ManagedRedis(what);
        std::fs::create_dir_all(state_dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", state_dir.display())))?;
        let socket = state_dir.join("redis.sock");
        let url = format!("redis+unix://{}", socket.display());
        if socket.exists() {
            // A server left behind by a relay that was killed: stop it, then start ours.
            if answers(&url).await {
                tracing::warn!(socket = %socket.display(), "stopping a managed redis-server left running");
                shutdown_server(&url).await;
            }
            let _ = std::fs::remove_file(&socket);
        }

        let mut child = Command::new(bin)
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--dir"])
            .arg(state_dir)
            .args(["--appendonly", "yes", "--save", "", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                fail(format!(
                    "cannot run {:?}: {e}. Install it (apt-get install redis-server), \
                     or pass --redis-url",
                    bin.display()
                ))
            })?;

        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let ready = async {
            while let Some(line) = lines.next_line().await? {
                tracing::debug!(target: "redis_server", "{line}");
                // 7.0 says "Ready to accept connections" for TCP and "ready to accept
                // connections at <path>" for a Unix socket.
                if line
                    .to_ascii_lowercase()
                    .contains("ready to accept connections")
                {
                    return Ok(true);
                }
            }
            Ok::<_, std::io::Error>(false)
        };
        match tokio::time::timeout(Duration::from_secs(15), ready).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) | Ok(Err(_)) => {
                let status = child.wait().await.ok();
                return Err(fail(format!(
                    "redis-server exited before it was ready ({status:?})"
                )));
            }
            Err(_) => return Err(fail("redis-server not ready after 15 s".into())),
        }
        // Keep draining its log so that it never blocks on a full pipe.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "redis_server", "{line}");
            }
        });
        tracing::info!(socket = %socket.display(), "started a managed redis-server");
        Ok(Self { child, url, socket })
    }

    /// Its URL (`redis+unix://…`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Asks it to shut down (flushing its append-only file) and waits for it; kills it
    /// if it has not exited within 5 s.
    pub async fn stop(mut self) {
        shutdown_server(&self.url).await;
        match tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await {
            Ok(_) => tracing::info!("managed redis-server stopped"),
            Err(_) => {
                tracing::warn!("managed redis-server did not stop; killing it");
                let _ = self.child.kill().await;
            }
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Sends `SHUTDOWN` (the reply is the connection closing).
async fn shutdown_server(url: &str) {
    if let Ok(client) = redis::Client::open(url) {
        let shutdown = async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            crate::store::shutdown(&mut conn).await
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), shutdown).await;
    }
}
