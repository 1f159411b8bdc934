//! Event ingest and lookup.
//!
//! Ingest is one Lua script call per event: it checks the endpoint version the
//! caller matched against, honours the idempotency key, writes the event, one
//! delivery log per matched endpoint, their index entries and one ready job per
//! delivery, all in one atomic step. Either all of it is in Redis (and the API
//! answers 202) or none of it is. The calls that concurrent requests make at once
//! go to Redis as one batch ([`super::group_commit`]); each still stands alone.
//!
//! When the caller offers delivery slots of its own workers ([`HandoffSlots`]; it does so
//! only while its shard's stream is drained) and one is free for each delivery, the
//! script leases the new jobs to this process (in the shard's leases set, scored by the
//! lease's end by Redis' clock) instead of putting them on the stream, and the caller
//! delivers them at once from what it already holds ([`HandedOff`]): no stream read, no
//! reload of the event.

use std::sync::{Arc, LazyLock};

use redis::Script;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::group_commit::{batched_script, ScriptCall};
use sha2::{Digest, Sha256};

use super::time::{now_ms, rfc3339};
use super::{event_record, Store, StoreError, StoreResult};
use crate::ids::{new_id, IdKind};
use crate::matching;
use crate::model::event::{EventAccepted, EventCreate, EventView};

/// The ingest script, batched: one call per event.
pub(super) static INGEST: LazyLock<Script> = LazyLock::new(|| batched_script(INGEST_LUA));

const INGEST_LUA: &str = r#"
-- KEYS: 1 endpoints version, 2 idempotency key, 3 event, 4 tenant log index, 5 job stream,
--       6 leases zset, then per delivery: log hash, endpoint log index;
--       last: this second's rate counter
-- An Idempotency-Key is remembered 24 h (86400 s), or the retention if shorter.
-- ARGV: 1 expected version, 2 use idempotency (0/1), 3 ttl secs, 4 event id, 5 tenant,
--       6 type, 7 the event as stored (see event_record.rs), 8 created ms, 9 delivery count,
--       10 lease length ms when the caller delivers the jobs itself, else '' (jobs go on
--       the stream), 11 event format ('string', or 'hash': the hash older gateways read),
--       then per delivery: msg id, endpoint id;
--       last: events allowed per second (0: no limit)
local version = redis.call('GET', KEYS[1]) or '0'
if version ~= ARGV[1] then return {'stale'} end
if ARGV[2] == '1' then
  local seen = redis.call('GET', KEYS[2])
  if seen then return {'dup', seen} end
end
local limit = tonumber(ARGV[#ARGV])
if limit > 0 then
  local used = redis.call('INCR', KEYS[#KEYS])
  if used == 1 then redis.call('EXPIRE', KEYS[#KEYS], '2') end
  if used > limit then return {'limited'} end
end
local n = tonumber(ARGV[9])
-- a handed-off lease ends by Redis' clock, the one every mover compares with (read once
-- per batch: see batched_script)
local lease_end = nil
if ARGV[10] ~= '' then
  -- as text: a Lua number passed to redis.call would go through '%.14g'; '%.0f', not
  -- '%d', which casts to a C long (32 bits on 32-bit builds)
  lease_end = string.format('%.0f', batch_now_ms() + tonumber(ARGV[10]))
end
if ARGV[11] == 'hash' then
  -- the fields gateways before commit 2ae6182 read, taken from the header line
  local nl = string.find(ARGV[7], '\n', 1, true)
  local header = cjson.decode(string.sub(ARGV[7], 1, nl - 1))
  local function text(v) if type(v) == 'string' then return v end return '' end
  redis.call('HSET', KEYS[3], 'type', ARGV[6], 'channel', text(header.channel),
    'endpoint_id', text(header.endpoint_id), 'payload', string.sub(ARGV[7], nl + 1),
    'created_at_ms', ARGV[8], 'deliveries', table.concat(header.deliveries, ' '))
  redis.call('EXPIRE', KEYS[3], ARGV[3])
else
  redis.call('SET', KEYS[3], ARGV[7], 'EX', ARGV[3])
end
for i = 1, n do
  local msg = ARGV[10 + 2 * i]
  local endpoint = ARGV[11 + 2 * i]
  local log = KEYS[5 + 2 * i]
  redis.call('HSET', log, 'event_id', ARGV[4], 'endpoint_id', endpoint, 'event_type', ARGV[6],
    'created_at_ms', ARGV[8], 'status', 'pending', 'attempts', '0')
  redis.call('EXPIRE', log, ARGV[3])
  redis.call('ZADD', KEYS[4], '0', msg)
  redis.call('ZADD', KEYS[6 + 2 * i], '0', msg)
  if lease_end then
    redis.call('ZADD', KEYS[6], lease_end, ARGV[5] .. ' ' .. msg .. ' ' .. ARGV[4])
  else
    redis.call('XADD', KEYS[5], '*', 't', ARGV[5], 'm', msg, 'e', ARGV[4])
  end
end
if ARGV[2] == '1' then
  redis.call('SET', KEYS[2], ARGV[4] .. ' ' .. ARGV[9], 'EX', string.format('%d', math.min(86400, tonumber(ARGV[3]))))
end
return {'ok'}
"#;

/// Free delivery slots of this process's workers, which ingest may take to deliver the
/// jobs it stores itself.
#[derive(Clone)]
pub struct HandoffSlots {
    /// The worker pool's slots.
    pub slots: Arc<Semaphore>,
    /// Lease length in ms: a handed-off job not finished (or renewed) by then goes on the
    /// stream for any worker.
    pub lease_ms: u64,
}

impl HandoffSlots {
    /// `n` slots, or none when fewer than `n` are free.
    fn take(&self, n: usize) -> Option<Vec<OwnedSemaphorePermit>> {
        (0..n)
            .map(|_| self.slots.clone().try_acquire_owned().ok())
            .collect()
    }
}

/// Jobs stored as leased to this process: the caller delivers them (see [`HandoffSlots`]).
pub struct HandedOff {
    /// One worker slot per delivery, taken before the jobs were stored.
    pub permits: Vec<OwnedSemaphorePermit>,
    /// Per delivery: log id (`msg_...`) and endpoint id.
    pub deliveries: Vec<(String, String)>,
    /// The endpoint version the event was matched against.
    pub endpoints_version: u64,
    /// Unix ms the event was accepted.
    pub created_ms: u64,
}

/// What ingest stored.
pub struct Ingested {
    /// The answer for the API.
    pub accepted: EventAccepted,
    /// The jobs this process is to deliver itself, when slots were offered and free.
    pub handed_off: Option<HandedOff>,
}

/// Hash of an idempotency key as it is stored.
fn idempotency_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Store {
    /// Stores an event and its deliveries; the returned id is durable once this returns.
    /// `rate_limit` caps the tenant's events per second across every gateway process.
    /// With `handoff`, the deliveries are leased to the caller when it has a free slot for
    /// each (see [`HandoffSlots`]); otherwise they go on the stream.
    pub async fn ingest(
        &self,
        tenant: &str,
        event: &EventCreate,
        idempotency_key: Option<&str>,
        rate_limit: Option<u32>,
        handoff: Option<&HandoffSlots>,
    ) -> StoreResult<Ingested> {
        let event_id = new_id(IdKind::Event);
        let payload = event.payload.get();
        let created = now_ms();
        let idem_key = match idempotency_key {
            Some(k) => self.keys.idempotency(tenant, &idempotency_hash(k)),
            None => self.keys.event(tenant, &event_id),
        };
        let shard = self.keys.shard_of(tenant);
        let mut set = self.cached_endpoints(tenant).await?;
        for _ in 0..5 {
            let targets = matching::select(
                &set.endpoints,
                &event.event_type,
                event.channel.as_deref(),
                event.endpoint_id.as_deref(),
            );
            // Leased to the caller: the lease length and one slot per delivery.
            let lease = match handoff {
                Some(h) if !targets.is_empty() => h.take(targets.len()).map(|p| (h.lease_ms, p)),
                _ => None,
            };
            let deliveries: Vec<(String, String)> = targets
                .iter()
                .map(|endpoint| (new_id(IdKind::Message), endpoint.id.clone()))
                .collect();
            let msg_ids: Vec<&str> = deliveries.iter().map(|(msg, _)| msg.as_str()).collect();
            let record = event_record::RecordFields {
                event_type: &event.event_type,
                channel: event.channel.as_deref(),
                endpoint_id: event.endpoint_id.as_deref(),
                created_at_ms: created,
                deliveries: &msg_ids,
                payload,
            };
            let mut call = ScriptCall::with_capacity(record.len_hint());
            call.key(self.keys.endpoints_version(tenant))
                .key(&idem_key)
                .key(self.keys.event(tenant, &event_id))
                .key(self.keys.logs_index(tenant))
                .key(self.keys.jobs(shard))
                .key(self.keys.leases(shard))
                .arg(set.version)
                .arg(if idempotency_key.is_some() { "1" } else { "0" })
                .arg(self.retention_secs)
                .arg(&event_id)
                .arg(tenant)
                .arg(&event.event_type)
                .arg_written(|out| {
                    // The call's buffer is a Vec: writing cannot fail.
                    let _ = record.encode_into(out);
                })
                .arg(created)
                .arg(targets.len())
                .arg(
                    lease
                        .as_ref()
                        .map(|(ms, _)| ms.to_string())
                        .unwrap_or_default(),
                )
                .arg(self.event_format.as_arg());
            for (msg, endpoint) in &deliveries {
                call.key(self.keys.log(tenant, msg))
                    .key(self.keys.endpoint_logs_index(tenant, endpoint))
                    .arg(msg)
                    .arg(endpoint);
            }
            call.key(self.keys.rate_window(tenant, created / 1000))
                .arg(rate_limit.unwrap_or(0));
            let reply: Vec<String> = self.ingests.shard(shard).call_as(call).await?;
            match reply.first().map(String::as_str) {
                Some("ok") => {
                    let handed_off = lease.map(|(_, permits)| HandedOff {
                        permits,
                        deliveries,
                        endpoints_version: set.version,
                        created_ms: created,
                    });
                    return Ok(Ingested {
                        accepted: EventAccepted {
                            id: event_id,
                            deliveries: targets.len(),
                        },
                        handed_off,
                    });
                }
                Some("dup") => {
                    let seen = reply.get(1).cloned().unwrap_or_default();
                    let mut parts = seen.splitn(2, ' ');
                    let id = parts.next().unwrap_or_default().to_string();
                    let deliveries = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                    return Ok(Ingested {
                        accepted: EventAccepted { id, deliveries },
                        handed_off: None,
                    });
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
        let key = self.keys.event(tenant, id);
        let event = event_record::get_events(&mut conn, std::slice::from_ref(&key))
            .await?
            .pop()
            .unwrap_or(Ok(None))?
            .ok_or(StoreError::NotFound)?;
        Ok(EventView {
            id: id.to_string(),
            payload: serde_json::from_str(&event.payload)?,
            event_type: event.event_type,
            channel: event.channel,
            endpoint_id: event.endpoint_id,
            created_at: rfc3339(event.created_at_ms),
            deliveries: event.deliveries,
        })
    }
}
