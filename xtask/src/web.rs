//! Building the web side into `<root>/dist`: the dashboard (`trunk build --release
//! --offline`), then the JavaScript client module (`dist/client/`) and its example page
//! (`dist/examples/`), which the relay serves with the dashboard.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use anyhow::{ensure, Context, Result};

use crate::cmd::{prepend_path, run, say};
use crate::setup::Tools;

/// The module's name: `cortex_client.js`, `cortex_client_bg.wasm`, `cortex_client.d.ts`.
const CLIENT_NAME: &str = "cortex_client";

/// Builds the dashboard with trunk, then the client module, and returns the `dist`
/// directory.
///
/// npm's `wasm-opt` goes first on `PATH`; wasm32 artifacts (and, on the Debian path,
/// host artifacts built by Debian's rustc) go to `<root>/target/wasm`, apart from the
/// normal host target directory.
pub(crate) fn build_dashboard(tools: &Tools) -> Result<PathBuf> {
    // trunk's offline mode also makes cargo offline (and the client build runs
    // `--offline` too), so download first what the wasm builds need: every package of
    // Cargo.lock (host build scripts and proc macros included), then, on the Debian
    // path (build-std), the standard library's own. With everything cached this
    // touches no network.
    run(tools.cargo().arg("fetch"))?;
    let mut fetch = tools.cargo();
    fetch
        .args(["fetch", "--manifest-path", "web/Cargo.toml"])
        .args(["--target", "wasm32-unknown-unknown"])
        .envs(tools.wasm_env.iter().map(|(key, value)| (*key, value)));
    run(&mut fetch)?;
    // The module first: trunk replaces `dist` as a whole, so the module is copied in
    // right after it, and `dist` is without it for as short a time as can be.
    let module = build_client(tools)?;

    let mut trunk = Command::new(&tools.trunk);
    trunk
        .current_dir(&tools.root)
        // Without the `js-client` feature: a binary keeps every `#[wasm_bindgen]` export
        // of the library it links, and the dashboard does not need the client's.
        .args(["build", "--release", "--offline", "--no-default-features"])
        .env("PATH", prepend_path(&[&tools.wasm_opt_dir], &tools.path)?)
        .env("CARGO_TARGET_DIR", wasm_target_dir(tools))
        .envs(tools.wasm_env.iter().map(|(key, value)| (*key, value)));
    run(&mut trunk)?;
    let dist = tools.root.join("dist");
    ensure!(
        dist.join("index.html").is_file(),
        "trunk finished but {} has no index.html (is `dist` set in Trunk.toml?)",
        dist.display()
    );
    copy_dir(&module, &dist.join("client"))?;
    copy_dir(&tools.root.join("web/examples"), &dist.join("examples"))?;
    Ok(dist)
}

fn wasm_target_dir(tools: &Tools) -> PathBuf {
    tools.root.join("target/wasm")
}

/// Builds the `cortex-web` library for JavaScript: cargo (the same profile and
/// environment as trunk's build; a cdylib, which the dashboard's build never makes, so
/// the two builds leave each other's outputs alone and a second run recompiles
/// nothing), then `wasm-bindgen --target web` and `wasm-opt -Oz` into
/// `target/wasm/client/`, which it returns. wasm-bindgen and wasm-opt run only when
/// cargo's output changed since they last did.
fn build_client(tools: &Tools) -> Result<PathBuf> {
    let target_dir = wasm_target_dir(tools);
    run(tools
        .cargo()
        .args([
            "rustc",
            "-p",
            "cortex-web",
            "--lib",
            "--crate-type",
            "cdylib",
        ])
        .args(["--offline", "--target", "wasm32-unknown-unknown"])
        .args(["--profile", "release-wasm"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .envs(tools.wasm_env.iter().map(|(key, value)| (*key, value))))?;
    let wasm = target_dir.join("wasm32-unknown-unknown/release-wasm/cortex_web.wasm");
    let out = target_dir.join("client");
    let stamp = target_dir.join("client.stamp");
    let fingerprint = fingerprint(&[
        &wasm,
        &tools.wasm_bindgen,
        &tools.wasm_opt_dir.join("wasm-opt"),
    ])?;
    let module_wasm = out.join(format!("{CLIENT_NAME}_bg.wasm"));
    if module_wasm.is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(&fingerprint) {
        say!("client module unchanged: {}", out.display());
        return Ok(out);
    }
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    run(Command::new(&tools.wasm_bindgen)
        .args(["--target", "web", "--out-name", CLIENT_NAME, "--out-dir"])
        .arg(&out)
        .arg(&wasm))?;
    run(Command::new(tools.wasm_opt_dir.join("wasm-opt"))
        .arg("-Oz")
        .arg(&module_wasm)
        .arg("-o")
        .arg(&module_wasm))?;
    fs::write(&stamp, fingerprint)?;
    Ok(out)
}

/// The size and modification time of each file: what makes a rebuild necessary.
fn fingerprint(files: &[&Path]) -> Result<String> {
    let mut text = String::new();
    for file in files {
        let meta = fs::metadata(file).with_context(|| format!("no {}", file.display()))?;
        let modified = meta
            .modified()?
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        text.push_str(&format!("{} {} {modified}\n", file.display(), meta.len()));
    }
    Ok(text)
}

/// Copies the files of `from` (recursively) into `to`, which is created.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    entry.path().display(),
                    target.display()
                )
            })?;
        }
    }
    Ok(())
}
