//! Small helpers for running commands, finding programs and timing steps.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// Prints a status line the same way for every step: `xtask: <message>`.
macro_rules! say {
    ($($arg:tt)*) => { eprintln!("xtask: {}", format_args!($($arg)*)) };
}
pub(crate) use say;

/// `program arg1 arg2`, for messages (without the environment `{:?}` would show).
pub(crate) fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` with inherited stdio and fails unless it exits with success.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` and returns its trimmed stdout; fails unless it exits with success.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            describe(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The first executable file called `name` in the directories of `path`.
pub(crate) fn which(name: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(name))
        .find(|file| is_executable(file))
}

pub(crate) fn is_executable(file: &Path) -> bool {
    file.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `dirs` followed by the entries of `path`, as a `PATH` value.
pub(crate) fn prepend_path(dirs: &[&Path], path: &OsStr) -> Result<OsString> {
    let old = std::env::split_paths(path).collect::<Vec<_>>();
    let all = dirs.iter().map(|d| d.to_path_buf()).chain(old);
    std::env::join_paths(all).context("a directory name cannot go into PATH")
}

/// Runs one named step, prints `xtask: <name> <seconds>s` when it succeeds, and
/// names the step in the error when it fails.
pub(crate) fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let result = f();
    let secs = start.elapsed().as_secs_f64();
    match result {
        Ok(value) => {
            say!("{name} {secs:.1}s");
            Ok(value)
        }
        Err(err) => Err(err.context(format!("step `{name}` failed after {secs:.1}s"))),
    }
}
