//! Building the dashboard: `trunk build --release --offline` into `<root>/dist`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{ensure, Result};

use crate::cmd::{prepend_path, run};
use crate::setup::Tools;

/// Builds the dashboard with trunk and returns the `dist` directory.
///
/// npm's `wasm-opt` goes first on `PATH`; wasm32 artifacts (and, on the Debian path,
/// host artifacts built by Debian's rustc) go to `<root>/target/wasm`, apart from the
/// normal host target directory.
pub(crate) fn build_dashboard(tools: &Tools) -> Result<PathBuf> {
    // trunk's offline mode also makes cargo offline, so download first what the wasm
    // build needs: the web crate's dependencies and, on the Debian path (build-std),
    // the standard library's own. With everything cached this touches no network.
    let mut fetch = tools.cargo();
    fetch
        .args(["fetch", "--manifest-path", "web/Cargo.toml"])
        .args(["--target", "wasm32-unknown-unknown"])
        .envs(tools.wasm_env.iter().map(|(key, value)| (*key, value)));
    run(&mut fetch)?;

    let mut trunk = Command::new(&tools.trunk);
    trunk
        .current_dir(&tools.root)
        .args(["build", "--release", "--offline"])
        .env("PATH", prepend_path(&[&tools.wasm_opt_dir], &tools.path)?)
        .env("CARGO_TARGET_DIR", tools.root.join("target/wasm"))
        .envs(tools.wasm_env.iter().map(|(key, value)| (*key, value)));
    run(&mut trunk)?;
    let dist = tools.root.join("dist");
    ensure!(
        dist.join("index.html").is_file(),
        "trunk finished but {} has no index.html (is `dist` set in Trunk.toml?)",
        dist.display()
    );
    Ok(dist)
}
