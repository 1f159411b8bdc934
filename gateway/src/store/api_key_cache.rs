//! Per-process cache of API keys that authenticated, so that an ingest call does not
//! pay a Redis round trip for its key before the one that stores the event.
//!
//! Only keys found in Redis are cached (an unknown key is looked up every time, so a
//! new key works at once), each for at most [`CACHE_TTL`]. Revoking a key forgets it
//! in the process that revoked it at once; other gateway processes stop accepting it
//! within [`CACHE_TTL`], as they pick up tenant settings within theirs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::tenants::KeyRecord;

/// How long a process trusts that a key it saw in Redis still exists.
pub const CACHE_TTL: Duration = Duration::from_secs(1);

/// Most keys kept; past it, expired entries go first, then everything.
const MAX_ENTRIES: usize = 10_000;

/// API key hash → what it resolved to, and when.
#[derive(Debug, Default)]
pub struct ApiKeyCache {
    entries: Mutex<HashMap<String, (Instant, KeyRecord)>>,
}

impl ApiKeyCache {
    /// The record of `hash` if it was seen less than [`CACHE_TTL`] before `now`.
    pub fn get(&self, hash: &str, now: Instant) -> Option<KeyRecord> {
        let entries = self.entries.lock().ok()?;
        let (at, record) = entries.get(hash)?;
        (now.saturating_duration_since(*at) < CACHE_TTL).then(|| record.clone())
    }

    /// Remembers that `hash` resolved to `record` at `now`.
    pub fn put(&self, hash: &str, record: &KeyRecord, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| now.saturating_duration_since(*at) < CACHE_TTL);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash.to_string(), (now, record.clone()));
    }

    /// Forgets `hash` (its key was revoked).
    pub fn forget(&self, hash: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tenant: &str) -> KeyRecord {
        KeyRecord {
            tenant_id: tenant.into(),
            key_id: "key_1".into(),
        }
    }

    #[test]
    fn a_key_is_trusted_for_the_ttl_only() {
        let cache = ApiKeyCache::default();
        let t0 = Instant::now();
        assert!(cache.get("h", t0).is_none());
        cache.put("h", &record("ten_a"), t0);
        assert_eq!(
            cache.get("h", t0 + CACHE_TTL / 2).map(|r| r.tenant_id),
            Some("ten_a".to_string())
        );
        assert!(cache.get("h", t0 + CACHE_TTL).is_none());
        assert!(cache.get("other", t0).is_none());
    }

    #[test]
    fn a_forgotten_key_is_looked_up_again() {
        let cache = ApiKeyCache::default();
        let t0 = Instant::now();
        cache.put("h", &record("ten_a"), t0);
        cache.forget("h");
        assert!(cache.get("h", t0).is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = ApiKeyCache::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            cache.put(&format!("h{i}"), &record("ten_a"), t0);
        }
        let len = cache.entries.lock().unwrap().len();
        assert!(len <= MAX_ENTRIES, "{len} entries");
        let last = format!("h{}", MAX_ENTRIES + 9);
        assert!(cache.get(&last, t0).is_some(), "the newest key is kept");
    }
}
