//! Endpoints in Redis, and a per-process cache of each tenant's endpoint set.
//!
//! Every change bumps the tenant's endpoint version counter in the same
//! transaction. Ingest matches against the cached set and hands the version it
//! matched against to the ingest script, which refuses (and the caller reloads)
//! when the set changed meanwhile, in this process or any other. So a cache
//! never sends an event to a deleted endpoint or misses a new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use redis::AsyncCommands;

use super::{Store, StoreError, StoreResult};
use crate::model::endpoint::Endpoint;

/// Writes an endpoint only if its stored revision is the expected one.
/// KEYS: endpoints hash, endpoints version. ARGV: id, JSON, expected revision (0: must not exist).
static PUT_IF_REVISION: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r#"
local current = redis.call('HGET', KEYS[1], ARGV[1])
local revision = 0
if current then revision = cjson.decode(current)['revision'] or 0 end
if revision ~= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
"#,
    )
});

/// A tenant's endpoints at one version.
#[derive(Debug, Clone, Default)]
pub struct EndpointSet {
    /// The version counter these were read at.
    pub version: u64,
    /// Endpoints ordered by id (creation time).
    pub endpoints: Arc<Vec<Endpoint>>,
}

impl EndpointSet {
    /// One endpoint by id.
    pub fn get(&self, id: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.id == id)
    }
}

/// Per-process cache of endpoint sets by tenant.
#[derive(Debug, Default)]
pub struct EndpointCache {
    sets: Mutex<HashMap<String, EndpointSet>>,
}

impl EndpointCache {
    fn get(&self, tenant: &str) -> Option<EndpointSet> {
        self.sets.lock().ok()?.get(tenant).cloned()
    }

    fn put(&self, tenant: &str, set: EndpointSet) {
        if let Ok(mut sets) = self.sets.lock() {
            // Never replace a newer set with an older one read concurrently.
            let newer = sets
                .get(tenant)
                .is_some_and(|old| old.version > set.version);
            if !newer {
                sets.insert(tenant.to_string(), set);
            }
        }
    }
}

impl Store {
    /// Reads a tenant's endpoints and their version atomically, and caches them.
    pub async fn load_endpoints(&self, tenant: &str) -> StoreResult<EndpointSet> {
        let mut conn = self.conn();
        let (version, raw): (Option<u64>, HashMap<String, String>) = redis::pipe()
            .atomic()
            .get(self.keys.endpoints_version(tenant))
            .hgetall(self.keys.endpoints(tenant))
            .query_async(&mut conn)
            .await?;
        let mut endpoints = raw
            .values()
            .map(|json| serde_json::from_str::<Endpoint>(json))
            .collect::<Result<Vec<_>, _>>()?;
        endpoints.sort_by(|a, b| a.id.cmp(&b.id));
        let set = EndpointSet {
            version: version.unwrap_or(0),
            endpoints: Arc::new(endpoints),
        };
        self.endpoints.put(tenant, set.clone());
        Ok(set)
    }

    /// The cached endpoint set, loading it on first use. May be stale; callers that
    /// write based on it pass its version to a script that checks it.
    pub async fn cached_endpoints(&self, tenant: &str) -> StoreResult<EndpointSet> {
        match self.endpoints.get(tenant) {
            Some(set) => Ok(set),
            None => self.load_endpoints(tenant).await,
        }
    }

    /// The endpoint set at `version` or newer: the cache if it is current, else a reload.
    pub async fn endpoints_at(&self, tenant: &str, version: u64) -> StoreResult<EndpointSet> {
        match self.endpoints.get(tenant) {
            Some(set) if set.version >= version => Ok(set),
            _ => self.load_endpoints(tenant).await,
        }
    }

    /// One endpoint, read fresh.
    pub async fn get_endpoint(&self, tenant: &str, id: &str) -> StoreResult<Endpoint> {
        let mut conn = self.conn();
        let raw: Option<String> = conn.hget(self.keys.endpoints(tenant), id).await?;
        let raw = raw.ok_or(StoreError::NotFound)?;
        Ok(serde_json::from_str(&raw)?)
    }

    /// Creates or replaces an endpoint and bumps the version.
    /// The write succeeds only if the stored revision is still the one `endpoint` was read
    /// at (0 for a new endpoint); it then bumps `endpoint.revision`. Otherwise it is a
    /// `Conflict`: someone else changed (or deleted) the endpoint meanwhile.
    pub async fn put_endpoint(&self, tenant: &str, endpoint: &mut Endpoint) -> StoreResult<()> {
        let expected = endpoint.revision;
        endpoint.revision += 1;
        let mut conn = self.conn();
        let written: i64 = PUT_IF_REVISION
            .key(self.keys.endpoints(tenant))
            .key(self.keys.endpoints_version(tenant))
            .arg(&endpoint.id)
            .arg(serde_json::to_string(endpoint)?)
            .arg(expected)
            .invoke_async(&mut conn)
            .await?;
        if written == 0 {
            endpoint.revision = expected;
            return Err(StoreError::Conflict(
                "the endpoint was changed or deleted meanwhile; read it again and retry".into(),
            ));
        }
        self.load_endpoints(tenant).await?;
        Ok(())
    }

    /// Pauses an endpoint on the gateway's own initiative, saying why. Its later
    /// deliveries are held, not lost, until the tenant resumes it.
    /// Returns whether it was active (and so whether this call paused it).
    pub async fn disable_endpoint(
        &self,
        tenant: &str,
        id: &str,
        reason: &str,
    ) -> StoreResult<bool> {
        for _ in 0..5 {
            let mut endpoint = match self.get_endpoint(tenant, id).await {
                Ok(endpoint) => endpoint,
                Err(StoreError::NotFound) => return Ok(false),
                Err(e) => return Err(e),
            };
            if !endpoint.active {
                return Ok(false);
            }
            endpoint.active = false;
            endpoint.disabled_reason = Some(reason.to_string());
            endpoint.updated_at_ms = super::time::now_ms();
            match self.put_endpoint(tenant, &mut endpoint).await {
                Ok(()) => return Ok(true),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict("the endpoint kept changing".into()))
    }

    /// Deletes an endpoint and bumps the version. Its logs stay (in the tenant's index)
    /// until retention removes them; its own index goes with it.
    pub async fn delete_endpoint(&self, tenant: &str, id: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let (removed, _): (u32, u64) = redis::pipe()
            .atomic()
            .hdel(self.keys.endpoints(tenant), id)
            .incr(self.keys.endpoints_version(tenant), 1)
            .del(self.keys.endpoint_logs_index(tenant, id))
            .ignore()
            .query_async(&mut conn)
            .await?;
        self.load_endpoints(tenant).await?;
        if removed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}

/// Outcome counts of one endpoint over a window.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct WindowStats {
    /// `1h`, `24h` or `7d` (whole hours, the current one included).
    pub window: &'static str,
    /// Deliveries that got a 2xx.
    pub delivered: u64,
    /// Deliveries that ended failed (out of attempts, plugin error, dead-lettered).
    pub failed: u64,
    /// Deliveries a plugin dropped.
    pub dropped: u64,
    /// Attempts that failed and were scheduled for a retry.
    pub attempts_failed: u64,
    /// delivered / (delivered + failed), `null` when neither happened.
    pub success_rate: Option<f64>,
}

impl Store {
    /// An endpoint's outcome counts over the last hour, day and week.
    pub async fn endpoint_stats(
        &self,
        tenant: &str,
        endpoint: &str,
        now_ms: u64,
    ) -> StoreResult<Vec<WindowStats>> {
        let hour = now_ms / 3_600_000;
        let mut pipe = redis::pipe();
        for h in 0..168 {
            pipe.hgetall(
                self.keys
                    .endpoint_stats(tenant, endpoint, hour.saturating_sub(h)),
            );
        }
        let mut conn = self.conn();
        let buckets: Vec<HashMap<String, u64>> = pipe.query_async(&mut conn).await?;
        Ok([("1h", 1), ("24h", 24), ("7d", 168)]
            .into_iter()
            .map(|(window, hours)| {
                let mut w = WindowStats {
                    window,
                    ..WindowStats::default()
                };
                for bucket in buckets.iter().take(hours) {
                    let get = |k: &str| bucket.get(k).copied().unwrap_or(0);
                    w.delivered += get("delivered");
                    w.failed += get("failed");
                    w.dropped += get("dropped");
                    w.attempts_failed += get("attempt_failed");
                }
                let finished = w.delivered + w.failed;
                w.success_rate = (finished > 0).then(|| w.delivered as f64 / finished as f64);
                w
            })
            .collect())
    }
}
