//! Per-tenant settings set by the operator: ingest rate limit and IP allow-list.
//! Kept in the tenant record; cached per process for a couple of seconds, so a
//! change reaches every gateway process within [`CACHE_TTL`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Store, StoreError, StoreResult};

/// How long a process trusts its cached copy of a tenant's settings.
pub const CACHE_TTL: Duration = Duration::from_secs(2);

/// A tenant's operator-set limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// Events accepted per second (all gateway processes together); `null` for the
    /// gateway's default (`default_rate_limit_per_s`).
    pub rate_limit_per_s: Option<u32>,
    /// Networks the tenant's API calls may come from; empty means any.
    #[schema(value_type = Vec<String>)]
    pub ip_allowlist: Vec<IpNet>,
}

impl TenantSettings {
    /// Whether a call from `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.ip_allowlist.is_empty() || self.ip_allowlist.iter().any(|net| net.contains(&ip))
    }
}

/// Per-process cache of tenant settings.
#[derive(Debug, Default)]
pub struct SettingsCache {
    entries: Mutex<HashMap<String, (Instant, Arc<TenantSettings>)>>,
}

impl Store {
    /// A tenant's settings, from the cache when fresh.
    pub async fn tenant_settings(&self, tenant: &str) -> StoreResult<Arc<TenantSettings>> {
        if let Ok(entries) = self.settings.entries.lock() {
            if let Some((at, settings)) = entries.get(tenant) {
                if at.elapsed() < CACHE_TTL {
                    return Ok(settings.clone());
                }
            }
        }
        let mut conn = self.conn();
        let raw: Option<String> = conn.get(self.keys.tenant(tenant)).await?;
        let record: serde_json::Value = serde_json::from_str(&raw.ok_or(StoreError::NotFound)?)?;
        let settings: TenantSettings = match record.get("settings") {
            Some(value) => serde_json::from_value(value.clone())?,
            None => TenantSettings::default(),
        };
        let settings = Arc::new(settings);
        if let Ok(mut entries) = self.settings.entries.lock() {
            entries.insert(tenant.to_string(), (Instant::now(), settings.clone()));
        }
        Ok(settings)
    }

    /// Replaces a tenant's settings.
    pub async fn put_tenant_settings(
        &self,
        tenant: &str,
        settings: &TenantSettings,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let key = self.keys.tenant(tenant);
        let raw: Option<String> = conn.get(&key).await?;
        let mut record: serde_json::Value =
            serde_json::from_str(&raw.ok_or(StoreError::NotFound)?)?;
        record["settings"] = serde_json::to_value(settings)?;
        let _: () = conn.set(&key, record.to_string()).await?;
        if let Ok(mut entries) = self.settings.entries.lock() {
            entries.remove(tenant);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_networks_and_mapped_addresses() {
        let open = TenantSettings::default();
        assert!(open.allows("203.0.113.9".parse().unwrap()));
        let closed = TenantSettings {
            ip_allowlist: vec!["127.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        assert!(closed.allows("127.0.0.1".parse().unwrap()));
        assert!(closed.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!closed.allows("10.0.0.1".parse().unwrap()));
    }
}
