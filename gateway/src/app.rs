//! Wiring: builds the shared parts from the config and runs the API and the
//! workers until the shutdown token is cancelled. Either role can be switched
//! off, so API-only and worker-only processes scale apart.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{self, ApiContext, AppState};
use crate::config::Config;
use crate::delivery::address_policy::AddressPolicy;
use crate::delivery::attempt::DeliveryContext;
use crate::delivery::client::DeliveryClient;
use crate::delivery::worker::{Worker, WorkerSettings};
use crate::metrics::Metrics;
use crate::model::endpoint::MAX_TIMEOUT_MS;
use crate::plugins::PluginEngine;
use crate::queue::Queue;
use crate::store::plugins::PluginDirectory;
use crate::store::tenants::hash_token;
use crate::store::{Keys, Store};

/// Runs the gateway until `shutdown` is cancelled. `listener` serves the API
/// (required when `config.api_enabled`). `config.admin_token` must be set.
pub async fn run(
    config: Config,
    listener: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let admin_token = config
        .admin_token
        .clone()
        .context("admin_token must be set before run")?;
    let keys = Keys::new(&config.redis_prefix, config.shards);
    let store = Store::connect(&config.redis_url, keys.clone(), config.retention())
        .context("redis_url")?
        .with_event_format(config.event_format);
    let consumer = format!(
        "{}-{}",
        std::process::id(),
        crate::ids::new_id(crate::ids::IdKind::Message)
    );
    let queue = Queue::new(
        store.conn(),
        keys,
        consumer,
        config.lease_ms,
        config.max_leases,
        store.retention_secs(),
    );
    let metrics = Arc::new(Metrics::default());
    if let Err(e) = queue.ensure_groups().await {
        warn!(error = %e, "redis is not reachable yet; the gateway will keep trying");
    }
    let engine = PluginEngine::new(config.plugins.clone()).context("plugin engine")?;
    let plugins = PluginDirectory::new(engine, store.clone());
    let addresses = Arc::new(AddressPolicy::new(config.allowed_networks.clone()));
    let client = DeliveryClient::new(addresses.clone(), config.dns_overrides.clone())
        .context("http client")?;
    let delivery = DeliveryContext {
        client,
        plugins: plugins.clone(),
        metrics: metrics.clone(),
    };

    let mut tasks = tokio::task::JoinSet::new();
    let mut handoff = None;
    if config.workers_enabled {
        let settings = WorkerSettings {
            concurrency: config.worker_concurrency,
            lease: Duration::from_millis(config.lease_ms),
            drain_timeout: Duration::from_millis(MAX_TIMEOUT_MS + 5_000),
            disable_after_failing: Duration::from_millis(config.disable_after_failing_ms),
            endpoint_concurrency: config.endpoint_concurrency,
        };
        tasks.spawn(janitor(
            store.clone(),
            (config.retention() / 2).min(JANITOR_EVERY),
            shutdown.clone(),
        ));
        let worker = Worker::new(store.clone(), queue.clone(), delivery.clone(), settings);
        handoff = Some(worker.clone());
        tasks.spawn(worker.run(shutdown.clone()));
        info!(
            concurrency = config.worker_concurrency,
            shards = config.shards,
            "workers started"
        );
    }
    if config.api_enabled {
        let listener = listener.context("api_enabled needs a listener")?;
        let state = AppState::new(ApiContext {
            store,
            queue,
            plugins,
            delivery,
            admin_token_hash: hash_token(&admin_token),
            addresses,
            https_only: config.https_only,
            max_body_bytes: config.max_body_bytes,
            max_upload_bytes: config.plugins.max_upload_bytes,
            metrics,
            default_rate_limit_per_s: config.default_rate_limit_per_s,
            handoff,
        });
        info!(addr = %listener.local_addr()?, "api listening");
        let app = api::router(state);
        tasks.spawn(api::serve::serve(
            listener,
            app,
            shutdown.clone(),
            Duration::from_secs(30),
        ));
    }
    while tasks.join_next().await.is_some() {}
    info!("gateway stopped");
    Ok(())
}

/// How often (at most) the janitor trims index entries past the retention.
const JANITOR_EVERY: Duration = Duration::from_secs(600);

/// Trims expired index entries now and then (see [`crate::store::retention`]).
async fn janitor(store: Store, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(500)));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store
            .trim_expired_indexes(crate::store::time::now_ms())
            .await
        {
            Ok(0) => {}
            Ok(removed) => info!(removed, "trimmed expired log index entries"),
            Err(e) => warn!(error = %e, "trimming expired log index entries failed"),
        }
    }
}
