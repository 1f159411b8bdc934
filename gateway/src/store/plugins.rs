//! Plugins by name: the built-ins every tenant sees, and each tenant's uploads.
//!
//! A tenant's plugin name points at a content hash (its version); the component
//! bytes are stored once per hash, and the compiled artifact once per hash and
//! engine build, so any gateway process loads a plugin by deserializing it
//! (well under a millisecond) instead of compiling it. The running engine keeps
//! loaded plugins in memory by hash.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use super::time::{now_ms, rfc3339};
use super::{Store, StoreError};
use crate::plugins::{
    builtin, LoadedPlugin, PluginCallError, PluginEngine, PreparedPlugin, UploadError,
};

/// A plugin as the API lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PluginInfo {
    /// Name, unique per tenant; built-in names are reserved.
    pub name: String,
    /// sha256 of the component: the plugin's version.
    pub version: String,
    /// Component size in bytes.
    pub size: usize,
    /// RFC 3339 upload time (empty for built-ins).
    pub created_at: String,
    /// Shipped with the gateway.
    #[serde(default)]
    pub builtin: bool,
}

/// Why a plugin could not be found, loaded or stored.
#[derive(Debug, thiserror::Error)]
pub enum PluginStoreError {
    /// No plugin of that name for this tenant.
    #[error("no plugin named `{0}`")]
    Unknown(String),
    /// The upload was refused.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// Redis failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redis::RedisError> for PluginStoreError {
    fn from(e: redis::RedisError) -> Self {
        PluginStoreError::Store(e.into())
    }
}

/// Resolves plugin names to loaded plugins and runs them with bounded concurrency.
#[derive(Clone)]
pub struct PluginDirectory {
    engine: PluginEngine,
    store: Store,
    builtin_hashes: Arc<OnceLock<HashMap<&'static str, String>>>,
    calls: Arc<Semaphore>,
}

impl PluginDirectory {
    /// A directory over `engine` and `store`.
    pub fn new(engine: PluginEngine, store: Store) -> Self {
        let slots = engine.limits().pool_instances.max(1) as usize;
        Self {
            engine,
            store,
            builtin_hashes: Arc::new(OnceLock::new()),
            calls: Arc::new(Semaphore::new(slots)),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    fn builtin_hash(&self, name: &str) -> Option<String> {
        let hashes = self.builtin_hashes.get_or_init(|| {
            builtin::all()
                .iter()
                .map(|b| (b.name, hex::encode(Sha256::digest(b.component))))
                .collect()
        });
        hashes.get(name).cloned()
    }

    /// Whether `name` is reserved by a built-in plugin.
    pub fn is_builtin(name: &str) -> bool {
        builtin::get(name).is_some()
    }

    /// Built-ins followed by the tenant's own plugins.
    pub async fn list(&self, tenant: &str) -> Result<Vec<PluginInfo>, PluginStoreError> {
        let mut all: Vec<PluginInfo> = builtin::all()
            .iter()
            .map(|b| PluginInfo {
                name: b.name.to_string(),
                version: self.builtin_hash(b.name).unwrap_or_default(),
                size: b.component.len(),
                created_at: String::new(),
                builtin: true,
            })
            .collect();
        let mut conn = self.store.conn();
        let own: HashMap<String, String> = conn.hgetall(self.store.keys().plugins(tenant)).await?;
        let mut own = own
            .values()
            .map(|raw| serde_json::from_str::<PluginInfo>(raw).map_err(StoreError::from))
            .collect::<Result<Vec<_>, _>>()?;
        own.sort_by(|a, b| a.name.cmp(&b.name));
        all.extend(own);
        Ok(all)
    }

    /// One plugin's info.
    pub async fn info(&self, tenant: &str, name: &str) -> Result<PluginInfo, PluginStoreError> {
        self.list(tenant)
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| PluginStoreError::Unknown(name.to_string()))
    }

    /// Validates, compiles and stores an upload under `name` (replacing an older version).
    pub async fn upload(
        &self,
        tenant: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<PluginInfo, PluginStoreError> {
        let prepared = self.prepare(bytes).await?;
        let info = PluginInfo {
            name: name.to_string(),
            version: prepared.0.sha256.clone(),
            size: prepared.0.component.len(),
            created_at: rfc3339(now_ms()),
            builtin: false,
        };
        let keys = self.store.keys();
        let mut conn = self.store.conn();
        // Content first, name last: the name never points at bytes that are not there.
        redis::pipe()
            .set(keys.plugin_wasm(&info.version), prepared.0.component)
            .set(
                keys.plugin_artifact(self.engine.artifact_key(), &info.version),
                prepared.0.artifact,
            )
            .hset(
                keys.plugins(tenant),
                name,
                serde_json::to_string(&info).map_err(StoreError::from)?,
            )
            .query_async::<()>(&mut conn)
            .await?;
        Ok(info)
    }

    /// Removes a tenant's plugin name (the content stays, addressed by hash).
    pub async fn delete(&self, tenant: &str, name: &str) -> Result<(), PluginStoreError> {
        let mut conn = self.store.conn();
        let removed: u32 = conn.hdel(self.store.keys().plugins(tenant), name).await?;
        if removed == 0 {
            return Err(PluginStoreError::Unknown(name.to_string()));
        }
        Ok(())
    }

    /// The loaded plugin a tenant means by `name`: a built-in, else its own upload.
    pub async fn resolve(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Arc<LoadedPlugin>, PluginStoreError> {
        if let Some(builtin) = builtin::get(name) {
            let sha = self.builtin_hash(name).unwrap_or_default();
            return self.load(&sha, Some(builtin.component)).await;
        }
        let mut conn = self.store.conn();
        let raw: Option<String> = conn.hget(self.store.keys().plugins(tenant), name).await?;
        let raw = raw.ok_or_else(|| PluginStoreError::Unknown(name.to_string()))?;
        let info: PluginInfo = serde_json::from_str(&raw).map_err(StoreError::from)?;
        self.load(&info.version, None).await
    }

    /// Loads by hash: from memory, else the stored artifact, else compiles the stored (or given) component.
    async fn load(
        &self,
        sha: &str,
        component: Option<&'static [u8]>,
    ) -> Result<Arc<LoadedPlugin>, PluginStoreError> {
        if let Some(loaded) = self.engine.loaded(sha) {
            return Ok(loaded);
        }
        let keys = self.store.keys();
        let artifact_key = keys.plugin_artifact(self.engine.artifact_key(), sha);
        let mut conn = self.store.conn();
        let artifact: Option<Vec<u8>> = conn.get(&artifact_key).await?;
        if let Some(artifact) = artifact {
            let engine = self.engine.clone();
            let sha = sha.to_string();
            if let Ok(Ok(loaded)) =
                tokio::task::spawn_blocking(move || engine.load(&sha, &artifact)).await
            {
                return Ok(loaded);
            }
        }
        let bytes = match component {
            Some(bytes) => bytes.to_vec(),
            None => {
                let stored: Option<Vec<u8>> = conn.get(keys.plugin_wasm(sha)).await?;
                stored.ok_or_else(|| {
                    StoreError::Corrupt(format!("plugin content {sha} is missing"))
                })?
            }
        };
        let (prepared, loaded) = self.prepare(bytes).await?;
        let _: () = conn.set(&artifact_key, prepared.artifact).await?;
        Ok(loaded)
    }

    /// Compiles, checks and loads component bytes on a blocking thread. The check
    /// instantiates the plugin once, so it waits for a call slot like any call: with every
    /// slot busy it would otherwise fail with the pool exhausted.
    async fn prepare(
        &self,
        bytes: Vec<u8>,
    ) -> Result<(PreparedPlugin, Arc<LoadedPlugin>), PluginStoreError> {
        let _slot = self
            .calls
            .acquire()
            .await
            .map_err(|_| UploadError::Compile("plugin runtime is shutting down".into()))?;
        let engine = self.engine.clone();
        let prepared = tokio::task::spawn_blocking(move || engine.prepare_and_load(&bytes))
            .await
            .map_err(|e| UploadError::Compile(format!("compilation aborted: {e}")))??;
        Ok(prepared)
    }

    /// Runs the plugin call `f` makes on this task once a plugin call slot is free: the
    /// pool has a fixed size, and a call beyond it would fail instead of waiting.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, PluginCallError>
    where
        F: FnOnce(PluginEngine) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let _slot = self
            .calls
            .acquire()
            .await
            .map_err(|_| PluginCallError::Trap("plugin runtime is shutting down".into()))?;
        Ok(f(self.engine.clone()).await)
    }
}
