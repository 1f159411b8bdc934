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

/// Most entries kept; past it, stale entries go first, then everything.
const MAX_ENTRIES: usize = 10_000;

/// How long a revocation is remembered: longer than any lookup can take (the Redis
/// response timeout is 5 s), so a lookup that read the key just before its deletion
/// cannot cache it after.
const REVOKED_KEEP: Duration = Duration::from_secs(30);

#[derive(Debug)]
enum Entry {
    /// Found in Redis by a lookup that started at this instant.
    Key(Instant, KeyRecord),
    /// Revoked by this process at this instant.
    Revoked(Instant),
}

/// API key hash → what it resolved to, and when.
#[derive(Debug, Default)]
pub struct ApiKeyCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl ApiKeyCache {
    /// The record of `hash` if a lookup that started less than [`CACHE_TTL`] before `now`
    /// found it.
    pub fn get(&self, hash: &str, now: Instant) -> Option<KeyRecord> {
        let entries = self.entries.lock().ok()?;
        match entries.get(hash)? {
            Entry::Key(at, record) if now.saturating_duration_since(*at) < CACHE_TTL => {
                Some(record.clone())
            }
            _ => None,
        }
    }

    /// Remembers that a lookup started at `looked_up_at` found `record` for `hash`, unless
    /// this process revoked the key since that lookup started (it may have read the key
    /// just before the revocation deleted it).
    pub fn put(&self, hash: &str, record: &KeyRecord, looked_up_at: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if let Some(Entry::Revoked(at)) = entries.get(hash) {
            if *at >= looked_up_at {
                return;
            }
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, entry| match entry {
                Entry::Key(at, _) => at.elapsed() < CACHE_TTL,
                Entry::Revoked(at) => at.elapsed() < REVOKED_KEEP,
            });
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, entry| matches!(entry, Entry::Revoked(_)));
            }
        }
        entries.insert(hash.to_string(), Entry::Key(looked_up_at, record.clone()));
    }

    /// Forgets `hash` (its key was revoked) and refuses to cache a lookup of it that
    /// started before now.
    pub fn forget(&self, hash: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(hash.to_string(), Entry::Revoked(Instant::now()));
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
    fn a_lookup_that_started_before_the_revocation_is_not_cached() {
        let cache = ApiKeyCache::default();
        let started = Instant::now();
        cache.forget("h");
        // the lookup read the key just before the revocation deleted it
        cache.put("h", &record("ten_a"), started);
        assert!(cache.get("h", Instant::now()).is_none());
        // a lookup that starts after the revocation is cached again (a re-created key)
        let later = Instant::now() + Duration::from_millis(1);
        cache.put("h", &record("ten_a"), later);
        assert!(cache.get("h", later).is_some());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = ApiKeyCache::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            cache.put(&format!("h{i}"), &record("ten_a"), t0);
        }
        let len = cache.entries.lock().map(|e| e.len()).unwrap_or(0);
        assert!(len <= MAX_ENTRIES, "{len} entries");
        let last = format!("h{}", MAX_ENTRIES + 9);
        assert!(cache.get(&last, t0).is_some(), "the newest key is kept");
    }
}
