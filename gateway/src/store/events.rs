//! Event ingest and lookup.
//!
//! Ingest is one Lua script call per event: it checks the endpoint version the
//! caller matched against, honours the idempotency key, writes the event, one
//! delivery log per matched endpoint, their index entries and one ready job per
//! delivery, all in one atomic step. Either all of it is in Redis (and the API
//! answers 202) or none of it is. The calls that concurrent requests make at once
//! go to Redis as one batch ([`super::group_commit`]); each still stands alone.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::{AsyncCommands, Script};

use super::group_commit::{batched_script, ScriptCall};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::time::{now_ms, rfc3339};
use super::{Store, StoreError, StoreResult};
use crate::ids::{new_id, IdKind};
use crate::matching;
use crate::model::event::{EventAccepted, EventCreate, EventView};

/// The ingest script, batched: one call per event.
pub(super) static INGEST: LazyLock<Script> = LazyLock::new(|| batched_script(INGEST_LUA));

const INGEST_LUA: &str = r#"
-- KEYS: 1 endpoints version, 2 idempotency key, 3 event, 4 tenant log index, 5 job stream,
--       then per delivery: log hash, endpoint log index; last: this second's rate counter
-- An Idempotency-Key is remembered 24 h (86400 s), or the retention if shorter.
-- ARGV: 1 expected version, 2 use idempotency (0/1), 3 ttl secs, 4 event id, 5 tenant,
--       6 type, 7 channel, 8 target endpoint, 9 payload, 10 created ms, 11 delivery count,
--       then per delivery: msg id, endpoint id; last: events allowed per second (0: no limit)
local version = redis.call('GET', KEYS[1]) or '0'
if version ~= ARGV[1] then return {'stale'} end
if ARGV[2] == '1' then
  local seen = redis.call('GET', KEYS[2])
  if seen then return {'dup', seen} end
end
local limit = tonumber(ARGV[#ARGV])
if limit > 0 then
  local used = redis.call('INCR', KEYS[#KEYS])
  if used == 1 then redis.call('EXPIRE', KEYS[#KEYS], 2) end
  if used > limit then return {'limited'} end
end
local ttl = tonumber(ARGV[3])
local n = tonumber(ARGV[11])
local ids = {}
for i = 1, n do ids[i] = ARGV[10 + 2 * i] end
redis.call('HSET', KEYS[3], 'type', ARGV[6], 'channel', ARGV[7], 'endpoint_id', ARGV[8],
  'payload', ARGV[9], 'created_at_ms', ARGV[10], 'deliveries', table.concat(ids, ' '))
redis.call('EXPIRE', KEYS[3], ttl)
for i = 1, n do
  local msg = ARGV[10 + 2 * i]
  local endpoint = ARGV[11 + 2 * i]
  local log = KEYS[4 + 2 * i]
  redis.call('HSET', log, 'event_id', ARGV[4], 'endpoint_id', endpoint, 'event_type', ARGV[6],
    'created_at_ms', ARGV[10], 'status', 'pending', 'attempts', 0)
  redis.call('EXPIRE', log, ttl)
  redis.call('ZADD', KEYS[4], 0, msg)
  redis.call('ZADD', KEYS[5 + 2 * i], 0, msg)
  redis.call('XADD', KEYS[5], '*', 't', ARGV[5], 'm', msg, 'e', ARGV[4])
end
if ARGV[2] == '1' then
  redis.call('SET', KEYS[2], ARGV[4] .. ' ' .. n, 'EX', math.min(86400, ttl))
end
return {'ok'}
"#;

/// Hash of an idempotency key as it is stored.
fn idempotency_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Store {
    /// Stores an event and its deliveries; the returned id is durable once this returns.
    /// `rate_limit` caps the tenant's events per second across every gateway process.
    pub async fn ingest(
        &self,
        tenant: &str,
        event: &EventCreate,
        idempotency_key: Option<&str>,
        rate_limit: Option<u32>,
    ) -> StoreResult<EventAccepted> {
        let event_id = new_id(IdKind::Event);
        let payload = event.payload.get();
        let created = now_ms();
        let mut set = self.cached_endpoints(tenant).await?;
        for _ in 0..5 {
            let targets = matching::select(
                &set.endpoints,
                &event.event_type,
                event.channel.as_deref(),
                event.endpoint_id.as_deref(),
            );
            let idem_key = match idempotency_key {
                Some(k) => self.keys.idempotency(tenant, &idempotency_hash(k)),
                None => self.keys.event(tenant, &event_id),
            };
            let mut call = ScriptCall::new();
            call.key(self.keys.endpoints_version(tenant))
                .key(idem_key)
                .key(self.keys.event(tenant, &event_id))
                .key(self.keys.logs_index(tenant))
                .key(self.keys.jobs_for(tenant))
                .arg(set.version)
                .arg(if idempotency_key.is_some() { "1" } else { "0" })
                .arg(self.retention_secs)
                .arg(&event_id)
                .arg(tenant)
                .arg(&event.event_type)
                .arg(event.channel.as_deref().unwrap_or(""))
                .arg(event.endpoint_id.as_deref().unwrap_or(""))
                .arg(payload)
                .arg(created)
                .arg(targets.len());
            for endpoint in &targets {
                let msg = new_id(IdKind::Message);
                call.key(self.keys.log(tenant, &msg))
                    .key(self.keys.endpoint_logs_index(tenant, &endpoint.id))
                    .arg(msg)
                    .arg(&endpoint.id);
            }
            call.key(self.keys.rate_window(tenant, created / 1000))
                .arg(rate_limit.unwrap_or(0));
            let shard = self.keys.shard_of(tenant);
            let reply = self.ingests.shard(shard).call(call).await?;
            let reply: Vec<String> =
                redis::from_redis_value(reply).map_err(redis::RedisError::from)?;
            match reply.first().map(String::as_str) {
                Some("ok") => {
                    return Ok(EventAccepted {
                        id: event_id,
                        deliveries: targets.len(),
                    })
                }
                Some("dup") => {
                    let seen = reply.get(1).cloned().unwrap_or_default();
                    let mut parts = seen.splitn(2, ' ');
                    let id = parts.next().unwrap_or_default().to_string();
                    let deliveries = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                    return Ok(EventAccepted { id, deliveries });
                }
                Some("limited") => return Err(StoreError::RateLimited(1)),
                Some("stale") => set = self.load_endpoints(tenant).await?,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "ingest script answered {other:?}"
                    )))
                }
            }
        }
        Err(StoreError::Conflict(
            "endpoints kept changing during ingest; try again".into(),
        ))
    }

    /// One event of this tenant.
    pub async fn get_event(&self, tenant: &str, id: &str) -> StoreResult<EventView> {
        let mut conn = self.conn();
        let fields: HashMap<String, String> = conn.hgetall(self.keys.event(tenant, id)).await?;
        if fields.is_empty() {
            return Err(StoreError::NotFound);
        }
        let text = |k: &str| fields.get(k).cloned().unwrap_or_default();
        let optional = |k: &str| fields.get(k).filter(|v| !v.is_empty()).cloned();
        let payload: Value = serde_json::from_str(&text("payload"))?;
        Ok(EventView {
            id: id.to_string(),
            event_type: text("type"),
            channel: optional("channel"),
            endpoint_id: optional("endpoint_id"),
            payload,
            created_at: rfc3339(text("created_at_ms").parse().unwrap_or(0)),
            deliveries: text("deliveries")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    }
}
