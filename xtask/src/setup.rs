//! Set-up: find every tool the build and the tests need, and install only what is missing.
//!
//! With everything present this runs a handful of `--version` checks and touches no
//! network. See `shared/notes/wasm-toolchain.md` for why each piece is what it is.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use crate::cmd::{is_executable, output, prepend_path, run, say, which};

/// trunk 0.22 needs a newer rustc than Debian's; 0.21.14 is the tested version.
const TRUNK_VERSION: &str = "0.21.14";
/// Debian's binaryen is too old for what rustc 1.96 emits; npm's 132 works.
const BINARYEN: &str = "binaryen@132";
/// `tsc`, to type-check the JavaScript client's declarations (tests/tests/e2e/embed.rs).
/// 5.x: the JavaScript compiler (7.x is a native port).
const TYPESCRIPT: &str = "typescript@5.9.3";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_RUST_SRC: &str = "/usr/lib/rustlib/src/rust/library";
/// The workspace's `rust-version` is 1.85: an older `/usr/bin/rustc` (plain Debian
/// `rustc`, 1.63 on Debian 12) is not the `rustc-web` we want.
const MIN_DEBIAN_RUSTC_MINOR: u32 = 85;

/// Where everything is, once set-up has run.
#[derive(Debug)]
pub(crate) struct Tools {
    /// The workspace root.
    pub(crate) root: PathBuf,
    /// The cargo that runs xtask (`$CARGO`); a bare `cargo` might be Debian's `/usr/bin/cargo`.
    cargo: PathBuf,
    /// `PATH` for child processes: cargo's `bin` directory first.
    pub(crate) path: OsString,
    pub(crate) trunk: PathBuf,
    /// wasm-bindgen-cli at the `Cargo.lock` version (the JavaScript client's build).
    pub(crate) wasm_bindgen: PathBuf,
    /// npm's binaryen `node_modules/.bin`, put first on `PATH` for trunk; also holds
    /// npm's `tsc`.
    pub(crate) wasm_opt_dir: PathBuf,
    /// Extra environment for wasm32 builds; empty when rustup has the target.
    pub(crate) wasm_env: Vec<(&'static str, OsString)>,
    pub(crate) chromium: PathBuf,
    pub(crate) chromedriver: PathBuf,
}

impl Tools {
    /// A `cargo` command run from the workspace root with the set-up's `PATH`.
    pub(crate) fn cargo(&self) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.current_dir(&self.root).env("PATH", &self.path);
        cmd
    }

    /// Cargo's target directory for host builds (`CARGO_TARGET_DIR` or `<root>/target`).
    pub(crate) fn host_target_dir(&self) -> PathBuf {
        match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => self.root.join(dir),
            None => self.root.join("target"),
        }
    }
}

/// Checks every tool, installs what is missing, and says where everything is.
pub(crate) fn ensure(root: &Path) -> Result<Tools> {
    let cargo =
        std::env::var_os("CARGO").map_or_else(|| cargo_home().join("bin/cargo"), PathBuf::from);
    let cargo_bin = cargo_home().join("bin");
    let path = prepend_path(&[&cargo_bin], &std::env::var_os("PATH").unwrap_or_default())?;
    let tools_dir = root.join("target/tools");
    let wasm_opt_dir = tools_dir.join("node_modules/.bin");
    let has_wasm_opt = is_executable(&wasm_opt_dir.join("wasm-opt"));
    let has_tsc = is_executable(&wasm_opt_dir.join("tsc"));
    let rustup_wasm = rustup_has_wasm_target(&cargo, &path);

    // 1. Debian packages, in one apt-get run, only for commands that are missing.
    let mut packages = Vec::new();
    if which("redis-server", &path).is_none() {
        packages.push("redis-server");
    }
    if find_chromium(&path).is_none() {
        packages.push("chromium");
    }
    if which("chromedriver", &path).is_none() {
        packages.push("chromium-driver");
    }
    if !rustup_wasm && debian_rustc_version().is_none() {
        packages.extend(["rustc-web", "cargo-web", "rust-web-src"]);
    }
    if (!has_wasm_opt || !has_tsc) && which("npm", &path).is_none() {
        packages.extend(["nodejs", "npm"]);
    }
    if !packages.is_empty() {
        apt_install(&packages, &path)?;
    }

    // 2. wasm32: rustup's target if it is there, else Debian's rustc building std.
    let wasm_env = if rustup_wasm {
        say!("wasm32: rustup's {WASM_TARGET} target");
        Vec::new()
    } else {
        debian_wasm_env(&cargo, &path)?
    };

    // 3. wasm-opt and tsc from npm, in the project's own tools folder.
    let npm_packages: Vec<&str> = [(has_wasm_opt, BINARYEN), (has_tsc, TYPESCRIPT)]
        .into_iter()
        .filter_map(|(has, package)| (!has).then_some(package))
        .collect();
    if !npm_packages.is_empty() {
        let list = npm_packages.join(" ");
        say!("installing {list} from npm into {}", tools_dir.display());
        fs::create_dir_all(&tools_dir)?;
        let npm = which("npm", &path).context("npm is still missing after apt-get install npm")?;
        run(Command::new(npm)
            .args(["install", "--prefix"])
            .arg(&tools_dir)
            .args(["--no-audit", "--no-fund"])
            .args(&npm_packages)
            .env("PATH", &path))?;
    }
    ensure!(
        is_executable(&wasm_opt_dir.join("wasm-opt")) && is_executable(&wasm_opt_dir.join("tsc")),
        "npm install finished but {} lacks wasm-opt or tsc",
        wasm_opt_dir.display()
    );

    // 4. and 5. trunk and wasm-bindgen-cli at exact versions, in cargo's bin directory.
    let trunk = cargo_tool(
        &cargo,
        &path,
        "trunk",
        "trunk",
        TRUNK_VERSION,
        &["--locked"],
        "7 min",
    )?;
    let bindgen_version = lock_version(root, "wasm-bindgen")?;
    // No --locked: with it the install wants a dependency version the mirror lacks.
    let wasm_bindgen = cargo_tool(
        &cargo,
        &path,
        "wasm-bindgen-cli",
        "wasm-bindgen",
        &bindgen_version,
        &[],
        "2 min",
    )?;

    let chromium = find_chromium(&path).context("chromium is still missing after apt-get")?;
    let chromedriver =
        which("chromedriver", &path).context("chromedriver is still missing after apt-get")?;
    which("redis-server", &path).context("redis-server is still missing after apt-get")?;
    say!("ready: trunk {TRUNK_VERSION}, wasm-bindgen {bindgen_version}, wasm-opt ({BINARYEN}), tsc ({TYPESCRIPT}), redis-server, chromium, chromedriver");
    Ok(Tools {
        root: root.to_path_buf(),
        cargo,
        path,
        trunk,
        wasm_bindgen,
        wasm_opt_dir,
        wasm_env,
        chromium,
        chromedriver,
    })
}

/// `$CARGO_HOME`, else `~/.cargo`: where `cargo install` puts binaries (under `bin`).
fn cargo_home() -> PathBuf {
    match std::env::var_os("CARGO_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
    }
}

fn find_chromium(path: &OsStr) -> Option<PathBuf> {
    which("chromium", path).or_else(|| which("chromium-browser", path))
}

/// The host `rustc` that belongs to the cargo running us (next to it, for rustup).
fn host_rustc(cargo: &Path, path: &OsStr) -> PathBuf {
    let sibling = cargo.with_file_name("rustc");
    if is_executable(&sibling) {
        return sibling;
    }
    which("rustc", path).unwrap_or_else(|| PathBuf::from("rustc"))
}

fn host_sysroot(cargo: &Path, path: &OsStr) -> Result<PathBuf> {
    let rustc = host_rustc(cargo, path);
    let sysroot = output(
        Command::new(rustc)
            .args(["--print", "sysroot"])
            .env("PATH", path),
    )?;
    Ok(PathBuf::from(sysroot))
}

/// Whether rustup (or, without rustup, the host sysroot) has the wasm32 std.
fn rustup_has_wasm_target(cargo: &Path, path: &OsStr) -> bool {
    if let Some(rustup) = which("rustup", path) {
        let mut list = Command::new(rustup);
        list.args(["target", "list", "--installed"])
            .env("PATH", path);
        if let Ok(installed) = output(&mut list) {
            return installed.lines().any(|line| line.trim() == WASM_TARGET);
        }
    }
    host_sysroot(cargo, path).is_ok_and(|sysroot| {
        sysroot
            .join("lib/rustlib")
            .join(WASM_TARGET)
            .join("lib")
            .is_dir()
    })
}

/// Debian's `rustc-web` version, if it and its std source are installed.
fn debian_rustc_version() -> Option<String> {
    if !Path::new(DEBIAN_RUST_SRC).is_dir() {
        return None;
    }
    let text = output(Command::new(DEBIAN_RUSTC).arg("--version")).ok()?;
    let version = text.split_whitespace().nth(1)?.to_owned();
    let minor: u32 = version.split('.').nth(1)?.parse().ok()?;
    (minor >= MIN_DEBIAN_RUSTC_MINOR).then_some(version)
}

/// The environment that makes cargo (and trunk) build wasm32 with Debian's rustc:
/// std from source, linked with the `rust-lld` of the host toolchain.
fn debian_wasm_env(cargo: &Path, path: &OsStr) -> Result<Vec<(&'static str, OsString)>> {
    let version = debian_rustc_version().with_context(|| {
        format!("need {DEBIAN_RUSTC} 1.{MIN_DEBIAN_RUSTC_MINOR}+ and {DEBIAN_RUST_SRC} (Debian packages rustc-web rust-web-src)")
    })?;
    let rustc = host_rustc(cargo, path);
    let sysroot = host_sysroot(cargo, path)?;
    let verbose = output(Command::new(&rustc).arg("-vV").env("PATH", path))?;
    let host = verbose
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .context("`rustc -vV` does not name the host")?;
    let lld = sysroot.join("lib/rustlib").join(host).join("bin/rust-lld");
    ensure!(
        is_executable(&lld),
        "no rust-lld at {}: linking wasm32 needs the one the host toolchain ships",
        lld.display()
    );
    say!("wasm32: no rustup {WASM_TARGET} target; Debian rustc {version} builds std from source");
    Ok(vec![
        ("RUSTC", DEBIAN_RUSTC.into()),
        ("RUSTC_BOOTSTRAP", "1".into()),
        ("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort".into()),
        (
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER",
            lld.into_os_string(),
        ),
    ])
}

/// `apt-get update` then `apt-get install`, through sudo when not root.
fn apt_install(packages: &[&str], path: &OsStr) -> Result<()> {
    let list = packages.join(" ");
    let by_hand = format!("apt-get update && apt-get install -y {list}");
    let Some(apt) = which("apt-get", path) else {
        bail!("missing {list}, and this machine has no apt-get: install them by hand, then rerun");
    };
    let sudo = if output(Command::new("id").arg("-u"))? == "0" {
        None
    } else {
        let sudo = which("sudo", path);
        Some(sudo.with_context(|| {
            format!("installing {list} needs root: run `{by_hand}` as root, then rerun")
        })?)
    };
    let apt_get = |args: &[&str]| {
        let mut cmd = match &sudo {
            Some(sudo) => {
                let mut cmd = Command::new(sudo);
                cmd.args(["env", "DEBIAN_FRONTEND=noninteractive"])
                    .arg(&apt);
                cmd
            }
            None => {
                let mut cmd = Command::new(&apt);
                cmd.env("DEBIAN_FRONTEND", "noninteractive");
                cmd
            }
        };
        cmd.args(args);
        cmd
    };
    say!("installing Debian packages: {list}");
    // Recommends stay on: that is the tested recipe (fonts for Chromium, for one).
    run(&mut apt_get(&["update"]))
        .and_then(|()| run(apt_get(&["install", "-y"]).args(packages)))
        .with_context(|| format!("apt-get failed; to do it by hand: {by_hand}"))
}

/// The version a tool prints as `<name> <version> ...` for `--version`.
fn tool_version(program: &Path) -> Option<String> {
    let text = output(Command::new(program).arg("--version")).ok()?;
    text.split_whitespace().nth(1).map(str::to_owned)
}

/// Finds `bin` at exactly `version`, or `cargo install`s crate `krate` at that version.
fn cargo_tool(
    cargo: &Path,
    path: &OsStr,
    krate: &str,
    bin: &str,
    version: &str,
    extra: &[&str],
    duration: &str,
) -> Result<PathBuf> {
    let found = which(bin, path);
    let found_version = found.as_deref().and_then(tool_version);
    if let (Some(program), Some(v)) = (&found, &found_version) {
        if v == version {
            return Ok(program.clone());
        }
    }
    let now = found_version.map_or_else(|| "missing".to_owned(), |v| format!("at {v}"));
    say!("installing {krate} {version} with cargo install ({bin} is {now}; about {duration})");
    // --force replaces a binary that cargo did not install itself.
    run(Command::new(cargo)
        .args(["install", krate, "--version", version, "--force"])
        .args(extra)
        .env("PATH", path))?;
    let program =
        which(bin, path).with_context(|| format!("{bin} is not in PATH after cargo install"))?;
    let now = tool_version(&program).unwrap_or_default();
    ensure!(
        now == version,
        "{} reports version {now:?}, expected {version}",
        program.display()
    );
    Ok(program)
}

/// The one version of package `name` in `<root>/Cargo.lock`.
fn lock_version(root: &Path, name: &str) -> Result<String> {
    let lock_file = root.join("Cargo.lock");
    let lock = fs::read_to_string(&lock_file)
        .with_context(|| format!("cannot read {}", lock_file.display()))?;
    version_in_lock(&lock, name)
}

fn version_in_lock(lock: &str, name: &str) -> Result<String> {
    let name_line = format!("name = \"{name}\"");
    let mut versions: Vec<&str> = lock
        .split("[[package]]")
        .filter(|entry| entry.lines().any(|line| line.trim() == name_line))
        .filter_map(|entry| {
            entry
                .lines()
                .find_map(|line| line.trim().strip_prefix("version = \"")?.strip_suffix('"'))
        })
        .collect();
    versions.dedup();
    match versions.as_slice() {
        [version] => Ok((*version).to_owned()),
        [] => bail!("no `{name}` package in Cargo.lock"),
        _ => bail!("Cargo.lock has several `{name}` versions ({}); the wasm-bindgen CLI must match exactly one", versions.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::version_in_lock;

    const LOCK: &str = r#"
[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "wasm-bindgen-backend"
version = "0.2.99"
"#;

    #[test]
    fn finds_the_exact_package_version() {
        assert_eq!(version_in_lock(LOCK, "wasm-bindgen").unwrap(), "0.2.130");
        assert!(version_in_lock(LOCK, "yew").is_err());
    }
}
