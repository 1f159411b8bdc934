//! Everything the gateway keeps, in Redis: tenants, endpoints, events, delivery logs, plugins.
//!
//! The key layout is documented in [`keys`]. Writes that must be all-or-nothing
//! (ingest, recording an attempt) are Lua scripts over keys of one hash tag.
//! Every call takes the tenant id first, and every tenant key contains it, so
//! one tenant can never read another's data: a foreign id is simply not found.

pub mod api_key_cache;
pub mod deliveries;
pub mod endpoints;
pub mod event_record;
pub mod event_types;
pub mod events;
pub mod group_commit;
pub mod keys;
pub mod logs;
mod packed;
pub mod plugins;
pub mod retention;
pub mod tenant_settings;
pub mod tenants;
pub mod time;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use keys::Keys;

/// A failure of the store layer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Redis could not be reached or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The resource does not exist for this tenant.
    #[error("not found")]
    NotFound,
    /// The request conflicts with the resource's state.
    #[error("{0}")]
    Conflict(String),
    /// The tenant sent more than its rate limit allows; retry after this many seconds.
    #[error("rate limit exceeded")]
    RateLimited(u64),
    /// A stored value could not be decoded.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the Redis store: cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Shared: a `redis::Client` holds the connection info's strings, and a store is
    /// cloned for every request.
    client: Arc<redis::Client>,
    conn: ConnectionManager,
    keys: Arc<Keys>,
    retention_secs: u64,
    event_format: event_record::EventFormat,
    endpoints: Arc<endpoints::EndpointCache>,
    settings: Arc<tenant_settings::SettingsCache>,
    api_keys: Arc<api_key_cache::ApiKeyCache>,
    /// Ingest script calls, sent in batches per shard.
    ingests: Arc<group_commit::ShardBatchers>,
}

impl Store {
    /// A store on `redis_url`. Connects lazily and reconnects on its own, so the gateway
    /// starts (and reports not ready) while Redis is down.
    pub fn connect(redis_url: &str, keys: Keys, retention: Duration) -> StoreResult<Self> {
        // Nagle off: commands are small and pipelined; with it on (redis-rs's default) a
        // command written while an earlier one is unanswered waits for that answer's ACK.
        let info = redis::IntoConnectionInfo::into_connection_info(redis_url)?;
        let tcp = redis::io::tcp::TcpSettings::default().set_nodelay(true);
        let client = redis::Client::open(info.set_tcp_settings(tcp))?;
        let conn = client.get_connection_manager_lazy(connection_config(Duration::from_secs(5)))?;
        Ok(Self::new(client, conn, keys, retention))
    }

    /// A store over an existing client and connection.
    pub fn new(
        client: redis::Client,
        conn: ConnectionManager,
        keys: Keys,
        retention: Duration,
    ) -> Self {
        let ingests = group_commit::ShardBatchers::new(&events::INGEST, &conn, keys.shards());
        Self {
            client: Arc::new(client),
            conn,
            ingests: Arc::new(ingests),
            keys: Arc::new(keys),
            retention_secs: retention.as_secs().max(1),
            event_format: event_record::EventFormat::default(),
            endpoints: Arc::new(endpoints::EndpointCache::default()),
            settings: Arc::new(tenant_settings::SettingsCache::default()),
            api_keys: Arc::new(api_key_cache::ApiKeyCache::default()),
        }
    }

    /// Writes new events in `format` (both formats are always read).
    pub fn with_event_format(mut self, format: event_record::EventFormat) -> Self {
        self.event_format = format;
        self
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A connection handle (multiplexed; cloning is cheap).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A connection of its own, for blocking reads that would stall the shared one.
    /// `response_timeout` must exceed the longest block.
    pub fn dedicated_conn(&self, response_timeout: Duration) -> StoreResult<ConnectionManager> {
        Ok(self
            .client
            .get_connection_manager_lazy(connection_config(response_timeout))?)
    }

    /// How long events and logs are kept, in seconds.
    pub fn retention_secs(&self) -> u64 {
        self.retention_secs
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(())
    }
}

/// Reconnect quickly and forever; answer or fail each command within `response_timeout`.
fn connection_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(response_timeout))
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_secs(2))
        .set_number_of_retries(3)
}
