//! What a worker reads to make one delivery: the log's state, the event and the
//! tenant's endpoint version, in a single round trip (for a whole read batch at once).

use std::collections::HashMap;

use super::event_record::{self, StoredEvent};
use super::time::rfc3339;
use super::{Store, StoreError, StoreResult};
use crate::plugins::PluginEvent;
use crate::queue::Job;

/// Everything stored that one delivery needs.
#[derive(Debug, Clone)]
pub struct DeliveryInput {
    /// The log's status (`pending` unless another worker already finished it).
    pub status: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The endpoint to deliver to.
    pub endpoint_id: String,
    /// Set when the delivery was re-queued by hand: it gets one attempt, no schedule.
    pub manual: bool,
    /// The event as plugins see it.
    pub event: PluginEvent,
    /// Unix ms the event was accepted.
    pub event_created_ms: u64,
    /// The tenant's endpoint version at read time.
    pub endpoints_version: u64,
}

impl Store {
    /// Reads each job's log, event and endpoint version, for a whole read batch in one round
    /// trip, in job order; `None` for a job whose log or event is gone. The outer error is
    /// the round trip's; an inner one belongs to that job alone (a key of the wrong type, an
    /// unreadable value), so one bad record cannot hold back the rest of its batch.
    pub async fn load_deliveries(
        &self,
        jobs: &[Job],
    ) -> StoreResult<Vec<StoreResult<Option<DeliveryInput>>>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        // The endpoint version once per tenant of the batch, then the jobs' logs and events.
        let mut tenants: Vec<&str> = jobs.iter().map(|job| job.tenant.as_str()).collect();
        tenants.sort_unstable();
        tenants.dedup();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for tenant in &tenants {
            pipe.get(self.keys.endpoints_version(tenant));
        }
        let event_keys: Vec<String> = jobs
            .iter()
            .map(|job| self.keys.event(&job.tenant, &job.event))
            .collect();
        for (job, event_key) in jobs.iter().zip(&event_keys) {
            // The log's state only, not the request a previous attempt stored.
            pipe.hmget(self.keys.log(&job.tenant, &job.msg), &LOG_FIELDS[..])
                .get(event_key);
        }
        let mut conn = self.conn();
        let replies: Vec<redis::RedisResult<redis::Value>> = pipe.query_async(&mut conn).await?;
        let expected = jobs.len() * 2 + tenants.len();
        if replies.len() != expected {
            return Err(StoreError::Corrupt(format!(
                "pipeline answered {} replies to {expected} commands",
                replies.len(),
            )));
        }
        let mut replies = replies.into_iter();
        let versions: Vec<_> = replies.by_ref().take(tenants.len()).collect();
        let (mut logs, mut events) = (
            Vec::with_capacity(jobs.len()),
            Vec::with_capacity(jobs.len()),
        );
        while let (Some(log), Some(event)) = (replies.next(), replies.next()) {
            logs.push(log);
            events.push(event);
        }
        let events = event_record::read_events(&mut conn, &event_keys, events).await?;
        Ok(jobs
            .iter()
            .zip(logs)
            .zip(events)
            .map(|((job, log), event)| {
                // `tenants` holds every job's tenant.
                let version = tenants
                    .binary_search(&job.tenant.as_str())
                    .map_or(Ok(redis::Value::Nil), |i| versions[i].clone());
                parse_delivery(job, log, event, version)
            })
            .collect())
    }
}

/// The log fields a delivery reads.
const LOG_FIELDS: [&str; 4] = ["status", "attempts", "endpoint_id", "manual"];

/// One job's three replies, each of which may be that job's own error.
fn parse_delivery(
    job: &Job,
    log: redis::RedisResult<redis::Value>,
    event: StoreResult<Option<StoredEvent>>,
    version: redis::RedisResult<redis::Value>,
) -> StoreResult<Option<DeliveryInput>> {
    let (log, event, version) = (log?, event?, version?);
    let log: Vec<Option<String>> = redis::from_redis_value(log).map_err(redis::RedisError::from)?;
    let log = super::logs::present_fields(&LOG_FIELDS, log);
    let version: Option<u64> = redis::from_redis_value(version).map_err(redis::RedisError::from)?;
    Ok(event.and_then(|event| delivery_input(job, log, event, version)))
}

fn delivery_input(
    job: &Job,
    log: HashMap<String, String>,
    event: StoredEvent,
    version: Option<u64>,
) -> Option<DeliveryInput> {
    if log.is_empty() {
        return None;
    }
    let text = |k: &str| log.get(k).cloned().unwrap_or_default();
    Some(DeliveryInput {
        status: text("status"),
        attempts: text("attempts").parse().unwrap_or(0),
        endpoint_id: text("endpoint_id"),
        manual: log.get("manual").is_some_and(|m| m == "1"),
        event: PluginEvent {
            id: job.event.clone(),
            event_type: event.event_type,
            tenant: job.tenant.clone(),
            channel: event.channel,
            created_at: rfc3339(event.created_at_ms),
            payload: event.payload,
        },
        event_created_ms: event.created_at_ms,
        endpoints_version: version.unwrap_or(0),
    })
}
