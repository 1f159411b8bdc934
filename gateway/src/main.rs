//! The `gateway` binary: reads the config, sets up logging, binds the listener
//! and runs the library until SIGINT or SIGTERM.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use gateway::config::LogFormat;
use gateway::Config;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Programmable webhook gateway.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file; `GATEWAY_*` environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = Config::load(args.config.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    init_tracing(config.log_format);
    if config.admin_token.is_none() {
        let token = gateway::store::tenants::generate_admin_token();
        // Printed once, on stdout only, never through the log.
        println!("GATEWAY_ADMIN_TOKEN={token}  (generated; set GATEWAY_ADMIN_TOKEN to choose your own)");
        config.admin_token = Some(token);
    }
    let listener = if config.api_enabled {
        Some(tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("listen: cannot bind {}", config.listen))?)
    } else {
        None
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    gateway::run(config, listener, shutdown).await
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: finishing in-flight deliveries");
    shutdown.cancel();
}
