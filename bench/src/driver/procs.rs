//! The processes a scenario runs: a fresh `redis-server`, the release relay, and the
//! bench's own load processes. Each is killed on drop; their stdout lines are read on
//! a thread, so the driver waits on events (a line) with a timeout, never on a sleep.

use crate::wire::{Line, LoadReport};
use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process, killed on drop, whose stdout lines arrive on a channel.
#[derive(Debug)]
pub(crate) struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    name: String,
}

impl Proc {
    /// Starts `command` with its stdout read line by line and its stderr appended to
    /// `log` (or inherited when `None`). The file-descriptor limit is raised to the
    /// hard limit first (a shell `ulimit` before `exec`, as no unsafe code may do it
    /// here): 10,000 connections need more than the usual 1,024.
    pub(crate) fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Result<Self> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#"ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@""#)
            .arg(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("open {}", path.display()))?;
                command.stderr(file);
            }
            None => {
                command.stderr(Stdio::inherit());
            }
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || forward(stdout, tx));
        Ok(Self {
            child,
            lines,
            name: name.to_owned(),
        })
    }

    /// Waits up to `timeout` for a stdout line containing `needle`.
    pub(crate) fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_line(deadline)? {
                line if line.contains(needle) => return Ok(line),
                _ => {}
            }
        }
    }

    fn next_line(&mut self, deadline: Instant) -> Result<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => Ok(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                bail!("{}: nothing after waiting {left:?}", self.name)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                bail!(
                    "{} exited ({status:?}) before saying what was expected",
                    self.name
                )
            }
        }
    }

    /// Waits up to `timeout` for the load's [`Line::Ready`]; (connections up, failed).
    pub(crate) fn ready(&mut self, timeout: Duration) -> Result<(u64, u64)> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.next_line(deadline)?;
            if let Ok(Line::Ready {
                connections,
                failed,
            }) = serde_json::from_str(&line)
            {
                return Ok((connections, failed));
            }
        }
    }

    /// Waits up to `timeout` for the load's [`Line::Done`].
    pub(crate) fn done(&mut self, timeout: Duration) -> Result<LoadReport> {
        let deadline = Instant::now() + timeout;
        loop {
            let line = self.next_line(deadline)?;
            if let Ok(Line::Done(report)) = serde_json::from_str(&line) {
                let _ = self.child.wait();
                return Ok(report);
            }
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(pipe: impl Read, tx: mpsc::Sender<String>) {
    for line in BufReader::new(pipe).lines() {
        let Ok(line) = line else { break };
        if tx.send(line).is_err() {
            break;
        }
    }
}

/// A throwaway `redis-server` on a free loopback port: no persistence, data in a temp
/// directory.
#[derive(Debug)]
pub(crate) struct Redis {
    proc: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one and waits until it accepts connections.
    pub(crate) fn start(program: &Path, log: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        // A port free when picked may be taken before redis binds it: try a few.
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--maxclients",
                "20000",
                "--logfile",
                "",
                "--dir",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([dir.path().display().to_string()])
            .collect();
            let mut proc = Proc::spawn("redis-server", program, &args, &[], Some(log))?;
            match proc.wait_for_line("eady to accept connections", Duration::from_secs(10)) {
                Ok(_) => {
                    return Ok(Self {
                        proc,
                        port,
                        _dir: dir,
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("redis-server did not start")))
    }

    /// `redis://127.0.0.1:<port>/`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.proc.pid()
    }
}

/// The relay binary, listening on a port of its choosing.
#[derive(Debug)]
pub(crate) struct Relay {
    proc: Proc,
    addr: String,
}

impl Relay {
    /// Starts `program` with `--listen 127.0.0.1:0 --redis-url <redis_url>` and `flags`
    /// (under `wrapper`, e.g. valgrind, when not empty), and reads the bound address
    /// from its `cortex-relay listening on http://ADDR/`.
    pub(crate) fn start(
        program: &Path,
        wrapper: &[String],
        redis_url: &str,
        flags: &[String],
        log: &Path,
    ) -> Result<Self> {
        let mut args = vec![
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--redis-url".to_owned(),
            redis_url.to_owned(),
        ];
        args.extend_from_slice(flags);
        let (program, args, start_timeout) = match wrapper.split_first() {
            None => (program.to_path_buf(), args, Duration::from_secs(30)),
            Some((under, wrapper_args)) => {
                let mut all = wrapper_args.to_vec();
                all.push(program.display().to_string());
                all.extend(args);
                (PathBuf::from(under), all, Duration::from_secs(180))
            }
        };
        let mut proc = Proc::spawn("cortex-relay", &program, &args, &[], Some(log))?;
        let line = proc.wait_for_line("listening on http://", start_timeout)?;
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .context("no address in the relay's listening line")?
            .to_owned();
        Ok(Self { proc, addr })
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.proc.pid()
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The resident set size of `pid`, KiB (`VmRSS` in `/proc/<pid>/status`).
pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

/// CPU time `pid` has used (user + system), in seconds, from `/proc/<pid>/stat`.
pub(crate) fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at ")".
    let rest = stat.rsplit_once(')').context("odd stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ")".
    Ok((ticks(11) + ticks(12)) / clock_ticks())
}

/// The whole machine's CPU time so far, from the `cpu` line of `/proc/stat`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MachineCpu {
    /// Seconds every CPU spent on anything but idling: user, nice, system, irq,
    /// softirq and steal.
    pub(crate) busy_secs: f64,
    /// Of those, seconds the hypervisor ran something else while this VM wanted the
    /// CPU (steal): time nobody on this machine could use.
    pub(crate) steal_secs: f64,
}

impl MachineCpu {
    /// Now.
    pub(crate) fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
            return Self::default();
        };
        let v: Vec<f64> = cpu
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal
        let field = |i: usize| v.get(i).copied().unwrap_or(0.0);
        let busy: f64 = [0, 1, 2, 5, 6, 7].into_iter().map(field).sum();
        Self {
            busy_secs: busy / clock_ticks(),
            steal_secs: field(7) / clock_ticks(),
        }
    }

    /// The time spent between `earlier` and `self`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            busy_secs: self.busy_secs - earlier.busy_secs,
            steal_secs: self.steal_secs - earlier.steal_secs,
        }
    }
}

/// How busy the machine is over `window`, as a percentage of all its CPUs.
pub(crate) fn machine_busy_pct(window: Duration) -> f64 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let before = MachineCpu::now();
    std::thread::sleep(window);
    100.0 * MachineCpu::now().since(before).busy_secs / (window.as_secs_f64() * cpus)
}

/// `getconf CLK_TCK`, 100 if that cannot be read.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Finds `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
