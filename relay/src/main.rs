//! The `cortex-relay` binary: parse the configuration, resolve Redis, bind, and run
//! until Ctrl-C or SIGTERM.

use anyhow::Context;
use cortex_relay::config::{Config, ConfigError, LogFormat};
use std::io::Write;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = match Config::load() {
        Ok(config) => config,
        // --help, --version and bad flags: clap prints and picks the exit code.
        Err(ConfigError::Args(e)) => e.exit(),
        Err(e) => {
            eprintln!("cortex-relay: bad configuration: {e}");
            std::process::exit(2);
        }
    };
    if config.print_config {
        print!("{}", config.to_yaml_masked());
        return Ok(());
    }
    if let Some(command) = config.command.clone() {
        // An operator command instead of the server: exit 0 done, 1 failed, 2 refused.
        std::process::exit(
            cortex_relay::cli::main(command, config.redis_url.as_deref(), config.lifecycle()).await,
        );
    }
    init_tracing(config.log_format);
    if config.tokens.is_empty() {
        tracing::warn!(
            listen = %config.listen,
            "no tokens configured: anyone who can reach the listen address may do anything \
             (loopback only unless --allow-remote)"
        );
    }

    let redis = cortex_relay::redis_server::resolve(&config).await?;
    let shutdown = CancellationToken::new();
    let relay = cortex_relay::Relay::new(&config, &redis.url, shutdown.clone()).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, redis = %redis.url, "listening");
    // The one line on stdout: the URL to open (tests read the bound port from it).
    println!("cortex-relay listening on http://{addr}/");
    std::io::stdout().flush()?;

    tokio::spawn(cancel_on_signal(shutdown));
    let result = relay.serve(listener).await;
    if let Some(managed) = redis.managed {
        managed.stop().await;
    }
    tracing::info!("stopped");
    Ok(result?)
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Cancels `token` on Ctrl-C or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    token.cancel();
}
