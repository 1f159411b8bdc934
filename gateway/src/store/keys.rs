//! The Redis key layout. Every key the gateway touches is built here.
//!
//! All keys start with the configured prefix `P`. Tenant-owned data and the
//! queue live under a shard hash tag `{P:s<n>}` (shard = hash of the tenant id
//! modulo the shard count), so every multi-key script touches a single slot
//! and the layout works on Redis Cluster.
//!
//! | key | type | holds | written by | removed by |
//! |---|---|---|---|---|
//! | `P:apikey:<sha256>` | string | JSON `{tenant_id, key_id}` for an API key hash | tenant/key creation | key revocation |
//! | `P:tenants` | set | every tenant id | tenant creation | never |
//! | `P:tenant:<tid>` | string | tenant record (JSON) | tenant creation | never |
//! | `P:tenant:<tid>:keys` | hash | API key id → `{name, hint, created_at_ms, hash}` | key creation | key revocation |
//! | `{S}:t:<tid>:endpoints` | hash | endpoint id → endpoint JSON (secrets included) | endpoint API | endpoint delete |
//! | `{S}:t:<tid>:endpoints:ver` | string | counter bumped on every endpoint change; ingest checks it | endpoint API | never |
//! | `{S}:t:<tid>:evt:<evt>` | string | event: a JSON header line (type, channel, endpoint_id, created_at_ms, deliveries), then the payload as received ([`super::event_record`]); a hash of those fields when written by a gateway before commit 2ae6182 or with `event_format = "hash"` | ingest | TTL (retention) |
//! | `{S}:t:<tid>:idem:<sha256>` | string | event id for an `Idempotency-Key` | ingest | TTL 24 h |
//! | `{S}:t:<tid>:log:<msg>` | hash | delivery log: status, attempts, next attempt, request as sent, and attempt `n`'s JSON record as field `a:<n>` (the newest 100) | ingest, worker | TTL (retention) |
//! | `{S}:t:<tid>:log:<msg>:attempts` | list | legacy: attempt records of logs written before 2026-11-21 (read, TTL kept, never written) | - | TTL (retention) |
//! | `{S}:t:<tid>:logs` | zset (lex) | every delivery log id, time-ordered | ingest | janitor (retention) |
//! | `{S}:t:<tid>:ep:<ep>:logs` | zset (lex) | that endpoint's log ids | ingest | janitor, endpoint delete |
//! | `{S}:t:<tid>:ep:<ep>:stats:<hour>` | hash | outcome → count for that hour | worker (with the outcome) | TTL 8 days |
//! | `{S}:t:<tid>:ep:<ep>:failing-since` | string | ms since when every attempt failed | worker (with the outcome) | the next success, TTL 30 days |
//! | `{S}:t:<tid>:ep:<ep>:held` | zset | jobs parked while the endpoint is paused | worker | resume |
//! | `{S}:t:<tid>:rate:<sec>` | string | events accepted in that second (rate limit) | ingest | TTL 2 s |
//! | `{S}:t:<tid>:ep:<ep>:rate:<sec>` | string | deliveries started in that second (endpoint rate limit) | worker | TTL 2 s |
//! | `{S}:t:<tid>:event-types` | hash | tenant's own event types → description | event-types API | never |
//! | `{S}:t:<tid>:plugins` | hash | plugin name → metadata JSON (version = sha256) | plugin API | plugin delete |
//! | `{S}:jobs` | stream | ready jobs `{t: tenant, m: msg, e: event}` (`l: 1` when a handed-off lease ended first); the consumer group leases them | ingest, mover, retry | ack (XDEL) |
//! | `{S}:delayed` | zset | `tenant msg` scored by due time (ms) | worker on failure | mover |
//! | `{S}:leases` | zset | jobs handed to the process that ingested them, `tenant msg event` scored by lease end (ms) | ingest; its worker renews the score (`XX`) | outcome; mover at lease end by Redis' clock (that process died) |
//! | `{S}:dead` | zset | jobs that crashed their worker too often | reclaimer | redrive |
//! | `P:plugin:wasm:<sha>` | string | uploaded component bytes | plugin API | never (content-addressed) |
//! | `P:plugin:art:<engine>:<sha>` | string | compiled artifact for one engine build | plugin API / first loader | never |

use std::fmt::Write;

/// Builds key names for one gateway deployment.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    shards: u16,
    /// `{P:s<n>}` of every shard, built once: every tenant key starts with one.
    shard_tags: Vec<String>,
}

impl Keys {
    /// Keys under `prefix`, spread over `shards` hash tags.
    pub fn new(prefix: &str, shards: u16) -> Self {
        let shards = shards.max(1);
        Self {
            prefix: prefix.to_string(),
            shards,
            shard_tags: (0..shards).map(|n| format!("{{{prefix}:s{n}}}")).collect(),
        }
    }

    /// Number of shards.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The shard a tenant's data lives in.
    pub fn shard_of(&self, tenant: &str) -> u16 {
        // FNV-1a: stable across processes and releases, unlike std's hasher.
        let hash = tenant.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (hash % u64::from(self.shards)) as u16
    }

    /// The hash-tagged base of a shard: `{P:s<n>}`.
    pub fn shard(&self, shard: u16) -> String {
        self.tag(shard).into_owned()
    }

    fn tag(&self, shard: u16) -> std::borrow::Cow<'_, str> {
        match self.shard_tags.get(usize::from(shard)) {
            Some(tag) => std::borrow::Cow::Borrowed(tag),
            None => std::borrow::Cow::Owned(format!("{{{}:s{}}}", self.prefix, shard)),
        }
    }

    /// `{S}:t:<tid>` followed by `parts`, built in one allocation: keys are made for every
    /// Redis call on the hot path, and `format!` over `format!` made two.
    fn tenant_key(&self, tenant: &str, parts: &[&str]) -> String {
        let tag = self.tag(self.shard_of(tenant));
        let len = tag.len() + 3 + tenant.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = String::with_capacity(len + 20);
        key.push_str(&tag);
        key.push_str(":t:");
        key.push_str(tenant);
        parts.iter().for_each(|p| key.push_str(p));
        key
    }

    /// [`Self::tenant_key`] ending in a number (an hour or a second).
    fn tenant_key_n(&self, tenant: &str, parts: &[&str], n: u64) -> String {
        let mut key = self.tenant_key(tenant, parts);
        // Writing to a String cannot fail.
        let _ = write!(key, "{n}");
        key
    }

    /// `{S}` of a shard followed by `suffix`.
    fn shard_key(&self, shard: u16, suffix: &str) -> String {
        let tag = self.tag(shard);
        let mut key = String::with_capacity(tag.len() + suffix.len());
        key.push_str(&tag);
        key.push_str(suffix);
        key
    }

    /// API key hash → tenant.
    pub fn api_key(&self, key_hash: &str) -> String {
        format!("{}:apikey:{}", self.prefix, key_hash)
    }

    /// Set of all tenant ids.
    pub fn tenants(&self) -> String {
        format!("{}:tenants", self.prefix)
    }

    /// A tenant's API key index (key id → info with the key's hash).
    pub fn tenant_api_keys(&self, tenant: &str) -> String {
        format!("{}:tenant:{}:keys", self.prefix, tenant)
    }

    /// One tenant's record.
    pub fn tenant(&self, tenant: &str) -> String {
        format!("{}:tenant:{}", self.prefix, tenant)
    }

    /// A tenant's endpoints.
    pub fn endpoints(&self, tenant: &str) -> String {
        self.tenant_key(tenant, &[":endpoints"])
    }

    /// A tenant's endpoint version counter.
    pub fn endpoints_version(&self, tenant: &str) -> String {
        self.tenant_key(tenant, &[":endpoints:ver"])
    }

    /// One event.
    pub fn event(&self, tenant: &str, event: &str) -> String {
        self.tenant_key(tenant, &[":evt:", event])
    }

    /// An idempotency key (already hashed).
    pub fn idempotency(&self, tenant: &str, key_hash: &str) -> String {
        self.tenant_key(tenant, &[":idem:", key_hash])
    }

    /// One delivery log.
    pub fn log(&self, tenant: &str, msg: &str) -> String {
        self.tenant_key(tenant, &[":log:", msg])
    }

    /// One delivery log's attempts list (legacy: see the table above).
    pub fn attempts(&self, tenant: &str, msg: &str) -> String {
        self.tenant_key(tenant, &[":log:", msg, ":attempts"])
    }

    /// A tenant's log index.
    pub fn logs_index(&self, tenant: &str) -> String {
        self.tenant_key(tenant, &[":logs"])
    }

    /// One endpoint's log index.
    pub fn endpoint_logs_index(&self, tenant: &str, endpoint: &str) -> String {
        self.tenant_key(tenant, &[":ep:", endpoint, ":logs"])
    }

    /// An endpoint's outcome counts for one hour (Unix hour number).
    pub fn endpoint_stats(&self, tenant: &str, endpoint: &str, hour: u64) -> String {
        self.tenant_key_n(tenant, &[":ep:", endpoint, ":stats:"], hour)
    }

    /// Since when (Unix ms) an endpoint has failed every attempt; absent while healthy.
    pub fn endpoint_health(&self, tenant: &str, endpoint: &str) -> String {
        self.tenant_key(tenant, &[":ep:", endpoint, ":failing-since"])
    }

    /// Jobs held while an endpoint is paused.
    pub fn held(&self, tenant: &str, endpoint: &str) -> String {
        self.tenant_key(tenant, &[":ep:", endpoint, ":held"])
    }

    /// A tenant's ingest counter for one second (Unix seconds).
    pub fn rate_window(&self, tenant: &str, second: u64) -> String {
        self.tenant_key_n(tenant, &[":rate:"], second)
    }

    /// An endpoint's delivery counter for one second (Unix seconds).
    pub fn endpoint_rate_window(&self, tenant: &str, endpoint: &str, second: u64) -> String {
        self.tenant_key_n(tenant, &[":ep:", endpoint, ":rate:"], second)
    }

    /// A tenant's own event types.
    pub fn event_types(&self, tenant: &str) -> String {
        self.tenant_key(tenant, &[":event-types"])
    }

    /// A tenant's plugins.
    pub fn plugins(&self, tenant: &str) -> String {
        self.tenant_key(tenant, &[":plugins"])
    }

    /// The ready-job stream of a shard.
    pub fn jobs(&self, shard: u16) -> String {
        self.shard_key(shard, ":jobs")
    }

    /// The ready-job stream of a tenant's shard.
    pub fn jobs_for(&self, tenant: &str) -> String {
        self.jobs(self.shard_of(tenant))
    }

    /// Delayed retries of a shard.
    pub fn delayed(&self, shard: u16) -> String {
        self.shard_key(shard, ":delayed")
    }

    /// Jobs of a shard handed off at ingest to the ingesting process, scored by lease end.
    pub fn leases(&self, shard: u16) -> String {
        self.shard_key(shard, ":leases")
    }

    /// Dead-lettered jobs of a shard.
    pub fn dead(&self, shard: u16) -> String {
        self.shard_key(shard, ":dead")
    }

    /// Uploaded plugin bytes by content hash.
    pub fn plugin_wasm(&self, sha: &str) -> String {
        format!("{}:plugin:wasm:{}", self.prefix, sha)
    }

    /// Compiled plugin artifact for one engine build.
    pub fn plugin_artifact(&self, engine: &str, sha: &str) -> String {
        format!("{}:plugin:art:{}:{}", self.prefix, engine, sha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str) -> &str {
        let start = key.find('{').unwrap();
        let end = key.find('}').unwrap();
        &key[start + 1..end]
    }

    #[test]
    fn a_tenants_queue_and_data_share_one_hash_tag() {
        let keys = Keys::new("gw", 8);
        let t = "ten_01HX";
        let tags = [
            keys.endpoints_version(t),
            keys.event(t, "evt_1"),
            keys.log(t, "msg_1"),
            keys.logs_index(t),
            keys.endpoint_logs_index(t, "ep_1"),
            keys.idempotency(t, "abc"),
            keys.jobs_for(t),
            keys.delayed(keys.shard_of(t)),
        ];
        for key in &tags {
            assert_eq!(tag(key), tag(&tags[0]), "{key}");
        }
    }

    #[test]
    fn keys_are_spelled_as_the_layout_table_says() {
        let keys = Keys::new("gw", 2);
        let t = "ten_01HX";
        let tag = format!("{{gw:s{}}}", keys.shard_of(t));
        assert_eq!(keys.log(t, "msg_1"), format!("{tag}:t:{t}:log:msg_1"));
        assert_eq!(
            keys.attempts(t, "msg_1"),
            format!("{tag}:t:{t}:log:msg_1:attempts")
        );
        assert_eq!(keys.event(t, "evt_1"), format!("{tag}:t:{t}:evt:evt_1"));
        assert_eq!(
            keys.endpoints_version(t),
            format!("{tag}:t:{t}:endpoints:ver")
        );
        assert_eq!(
            keys.endpoint_logs_index(t, "ep_1"),
            format!("{tag}:t:{t}:ep:ep_1:logs")
        );
        assert_eq!(
            keys.endpoint_stats(t, "ep_1", 491_000),
            format!("{tag}:t:{t}:ep:ep_1:stats:491000")
        );
        assert_eq!(
            keys.rate_window(t, 1_763_700_000),
            format!("{tag}:t:{t}:rate:1763700000")
        );
        assert_eq!(
            keys.endpoint_rate_window(t, "ep_1", 7),
            format!("{tag}:t:{t}:ep:ep_1:rate:7")
        );
        // The rest of the tenant's keys, spelled as the `format!` calls before commit
        // fe86d09's rewrite spelled them (a different spelling would lose stored data).
        assert_eq!(keys.endpoints(t), format!("{tag}:t:{t}:endpoints"));
        assert_eq!(keys.idempotency(t, "h1"), format!("{tag}:t:{t}:idem:h1"));
        assert_eq!(keys.logs_index(t), format!("{tag}:t:{t}:logs"));
        assert_eq!(
            keys.endpoint_health(t, "ep_1"),
            format!("{tag}:t:{t}:ep:ep_1:failing-since")
        );
        assert_eq!(keys.held(t, "ep_1"), format!("{tag}:t:{t}:ep:ep_1:held"));
        assert_eq!(keys.event_types(t), format!("{tag}:t:{t}:event-types"));
        assert_eq!(keys.plugins(t), format!("{tag}:t:{t}:plugins"));
        assert_eq!(keys.jobs_for(t), keys.jobs(keys.shard_of(t)));
        assert_eq!(keys.api_key("h2"), "gw:apikey:h2");
        assert_eq!(keys.tenants(), "gw:tenants");
        assert_eq!(keys.tenant(t), format!("gw:tenant:{t}"));
        assert_eq!(keys.tenant_api_keys(t), format!("gw:tenant:{t}:keys"));
        assert_eq!(keys.plugin_wasm("sha"), "gw:plugin:wasm:sha");
        assert_eq!(keys.plugin_artifact("e1", "sha"), "gw:plugin:art:e1:sha");
        assert_eq!(keys.jobs(1), "{gw:s1}:jobs");
        assert_eq!(keys.delayed(0), "{gw:s0}:delayed");
        assert_eq!(keys.dead(1), "{gw:s1}:dead");
        assert_eq!(keys.leases(1), "{gw:s1}:leases");
        assert_eq!(keys.shard(1), "{gw:s1}");
        // A shard number past the configured count still gets its own tag.
        assert_eq!(keys.shard(7), "{gw:s7}");
    }

    #[test]
    fn shards_spread_tenants_and_are_stable() {
        let keys = Keys::new("gw", 4);
        let used: std::collections::HashSet<u16> = (0..100)
            .map(|i| keys.shard_of(&format!("ten_{i}")))
            .collect();
        assert_eq!(used.len(), 4);
        assert_eq!(
            keys.shard_of("ten_x"),
            Keys::new("other", 4).shard_of("ten_x")
        );
    }
}
