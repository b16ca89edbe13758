//! Child processes that die with their owner, and waiting for a line of their output.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process, killed on drop; its stdout lines are readable through
/// [`Spawned::wait_for_line`], its stderr lines (the relay's log) through
/// [`Spawned::wait_for_log_line`], and both are copied to the test's stderr with a
/// prefix.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: mpsc::Receiver<String>,
    name: String,
}

impl Spawned {
    /// Spawns `command` with piped stdout and stderr.
    pub fn spawn(name: &str, command: &mut Command) -> std::io::Result<Self> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, lines) = mpsc::channel();
        let (log_tx, log) = mpsc::channel();
        forward(child.stdout.take().expect("piped"), name, Some(tx));
        forward(child.stderr.take().expect("piped"), name, Some(log_tx));
        Ok(Self {
            child,
            lines,
            log,
            name: name.to_owned(),
        })
    }

    /// Waits up to `timeout` for a stdout line containing `needle`, and returns it.
    /// Fails if the process exits or the time runs out first.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no line with {needle:?} after {timeout:?}",
                        self.name
                    ))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    return Err(format!(
                        "{} exited ({status:?}) before printing {needle:?}",
                        self.name
                    ));
                }
            }
        }
    }

    /// Waits up to `timeout` for a stderr (log) line containing `needle`, and returns
    /// it with the log lines before it (since the last log wait or call).
    pub fn wait_for_log_line(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> Result<(String, Vec<String>), String> {
        let deadline = Instant::now() + timeout;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Ok((line, before)),
                Ok(line) => before.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no log line with {needle:?} after {timeout:?}",
                        self.name
                    ))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("{} exited before logging {needle:?}", self.name))
                }
            }
        }
    }

    /// Waits up to `timeout` for the process to exit (its stdout closing is the
    /// event), discarding output meanwhile; its exit status, or `None` if it is still
    /// running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.child.wait().ok(),
            }
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Copies `pipe` line by line to the test's stderr (prefixed), and to `tx` if given.
fn forward(pipe: impl Read + Send + 'static, name: &str, tx: Option<mpsc::Sender<String>>) {
    let name = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{name}] {line}");
            if let Some(tx) = &tx {
                let _ = tx.send(line);
            }
        }
    });
}

/// The resident set size of process `pid`, in KiB (Linux `/proc`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}
