//! The command-line entry point shared by the `gateway` binary (and by the test
//! suite's process-level tests, which run the very same code in a child process).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::Config;

/// Programmable webhook gateway.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file; `GATEWAY_*` environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Parses arguments, loads the config, and runs until SIGINT or SIGTERM.
pub async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = Config::load(args.config.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    init_tracing(config.log_format);
    if config.admin_token.is_none() {
        let token = crate::store::tenants::generate_admin_token();
        // Printed once, on stdout only, never through the log.
        println!(
            "GATEWAY_ADMIN_TOKEN={token}  (generated; set GATEWAY_ADMIN_TOKEN to choose your own)"
        );
        config.admin_token = Some(token);
    }
    let listener = if config.api_enabled {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listen: cannot bind {}", config.listen))?;
        Some(listener)
    } else {
        None
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    crate::run(config, listener, shutdown).await
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn stop_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down: finishing in-flight deliveries");
    shutdown.cancel();
}
