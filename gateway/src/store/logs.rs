//! Delivery logs: listing with filters and cursors, and one log with its attempts.
//!
//! Log ids are ULIDs, so the per-tenant and per-endpoint indexes are zsets with
//! every score 0 and lexicographic order equal to creation order: time ranges
//! and cursors are plain `ZREVRANGEBYLEX` bounds. Status and type filters are
//! applied while scanning, with a bounded amount of work per page.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use redis::AsyncCommands;
use serde_json::Value;

use super::event_record::{self, StoredEvent};
use super::time::rfc3339;
use super::{Store, StoreError, StoreResult};
use crate::ids::{self, IdKind};
use crate::model::log::{Attempt, LogDetail, LogEntry, LogPage, LogStatus, SentRequest};

/// Filters of `GET /v1/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only logs in this status.
    pub status: Option<LogStatus>,
    /// Only logs of this event type.
    pub event_type: Option<String>,
    /// Only logs of this endpoint.
    pub endpoint_id: Option<String>,
    /// Created at or after (Unix ms).
    pub since_ms: Option<u64>,
    /// Created at or before (Unix ms).
    pub until_ms: Option<u64>,
    /// Page size (1..=250).
    pub limit: usize,
    /// Continue after this log id.
    pub cursor: Option<String>,
}

/// Index entries examined per page at most, whatever the filters.
const SCAN_BUDGET: usize = 2_000;

impl Store {
    /// A page of this tenant's logs, newest first.
    pub async fn list_logs(&self, tenant: &str, query: &LogQuery) -> StoreResult<LogPage> {
        let index = match &query.endpoint_id {
            Some(endpoint) => self.keys.endpoint_logs_index(tenant, endpoint),
            None => self.keys.logs_index(tenant),
        };
        let mut max = match (&query.cursor, query.until_ms) {
            (Some(cursor), _) => format!("({cursor}"),
            (None, Some(until)) => format!(
                "[{}",
                ids::upper_bound(IdKind::Message, UNIX_EPOCH + Duration::from_millis(until))
            ),
            (None, None) => "+".to_string(),
        };
        let min = match query.since_ms {
            Some(since) => format!(
                "[{}",
                ids::lower_bound(IdKind::Message, UNIX_EPOCH + Duration::from_millis(since))
            ),
            None => "-".to_string(),
        };
        let batch = (query.limit * 2).clamp(50, 500);
        let mut data = Vec::new();
        let mut scanned = 0;
        let mut conn = self.conn();
        loop {
            let ids: Vec<String> = conn
                .zrevrangebylex_limit(&index, &max, &min, 0, batch as isize)
                .await?;
            scanned += ids.len();
            let exhausted = ids.len() < batch;
            for (id, entry) in ids.iter().zip(self.load_entries(tenant, &ids).await?) {
                max = format!("({id}");
                let Some(entry) = entry else { continue };
                let status_ok = query.status.is_none_or(|s| s == entry.status);
                let type_ok = query
                    .event_type
                    .as_ref()
                    .is_none_or(|t| *t == entry.event_type);
                if status_ok && type_ok {
                    data.push(entry);
                    if data.len() == query.limit {
                        let next = Some(id.clone())
                            .filter(|_| !exhausted || id != ids.last().unwrap_or(id));
                        return Ok(LogPage {
                            data,
                            next_cursor: next,
                        });
                    }
                }
            }
            if exhausted {
                return Ok(LogPage {
                    data,
                    next_cursor: None,
                });
            }
            if scanned >= SCAN_BUDGET {
                // Filters matched little: hand back what we have and where to go on.
                let next = max.strip_prefix('(').map(str::to_owned);
                return Ok(LogPage {
                    data,
                    next_cursor: next,
                });
            }
        }
    }

    /// Loads log summaries (with their event payloads) for `ids`; `None` where a log has expired.
    async fn load_entries(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> StoreResult<Vec<Option<LogEntry>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        let mut pipe = redis::pipe();
        for id in ids {
            // The summary fields only: not the request as sent (up to 64 KiB a log).
            pipe.hmget(self.keys.log(tenant, id), &SUMMARY_FIELDS[..]);
        }
        let logs: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
        let logs: Vec<HashMap<String, String>> = logs
            .into_iter()
            .map(|values| present_fields(&SUMMARY_FIELDS, values))
            .collect();
        let event_keys: Vec<String> = logs
            .iter()
            .map(|fields| {
                let event = fields.get("event_id").map_or("", String::as_str);
                self.keys.event(tenant, event)
            })
            .collect();
        let events = event_record::get_events(&mut conn, &event_keys).await?;
        Ok(ids
            .iter()
            .zip(logs)
            .zip(events)
            .map(|((id, fields), event)| entry_from(id, &fields, payload_of(event).as_deref()))
            .collect())
    }

    /// One log with its attempts and the request as sent: the whole log hash read once.
    pub async fn get_log(&self, tenant: &str, id: &str) -> StoreResult<LogDetail> {
        if !ids::is_valid(IdKind::Message, id) {
            return Err(StoreError::NotFound);
        }
        let mut conn = self.conn();
        let (legacy, mut fields): (Vec<String>, HashMap<String, String>) = redis::pipe()
            .lrange(self.keys.attempts(tenant, id), 0, -1)
            .hgetall(self.keys.log(tenant, id))
            .query_async(&mut conn)
            .await?;
        if fields.is_empty() {
            return Err(StoreError::NotFound);
        }
        let event = fields.get("event_id").map_or("", String::as_str);
        let event = event_record::get_events(&mut conn, &[self.keys.event(tenant, event)])
            .await?
            .pop();
        let payload = event.and_then(payload_of);
        let entry = entry_from(id, &fields, payload.as_deref()).ok_or(StoreError::NotFound)?;
        let attempt_details = attempt_records(legacy, &mut fields)
            .iter()
            .map(|a| serde_json::from_str::<Attempt>(a))
            .collect::<Result<Vec<_>, _>>()?;
        let request = match fields.remove("request").filter(|r| !r.is_empty()) {
            Some(raw) => Some(serde_json::from_str::<SentRequest>(&raw)?),
            None => None,
        };
        Ok(LogDetail {
            entry,
            attempt_details,
            request,
        })
    }
}

/// A log's attempt records, oldest first: those in the attempts list (written by
/// gateways before 2026-11-21), then the log's `a:<n>` fields in attempt order, taken
/// out of `fields` (moved, not copied: a log holds up to 100).
fn attempt_records(legacy: Vec<String>, fields: &mut HashMap<String, String>) -> Vec<String> {
    // The field names are copied (a few bytes each), the records moved.
    let names: Vec<(u64, String)> = fields
        .keys()
        .filter_map(|name| Some((attempt_number(name)?, name.clone())))
        .collect();
    let mut numbered: Vec<(u64, String)> = names
        .into_iter()
        .filter_map(|(n, name)| Some((n, fields.remove(&name)?)))
        .collect();
    numbered.sort_unstable_by_key(|(n, _)| *n);
    let mut records = legacy;
    records.extend(numbered.into_iter().map(|(_, record)| record));
    records
}

/// `n` of a log field `a:<n>`.
fn attempt_number(field: &str) -> Option<u64> {
    field.strip_prefix("a:")?.parse().ok()
}

/// The payload of an event read for a log; a log whose event is gone or unreadable shows
/// a null payload rather than failing the page.
fn payload_of(event: StoreResult<Option<StoredEvent>>) -> Option<String> {
    match event {
        Ok(event) => event.map(|event| event.payload),
        Err(e) => {
            tracing::warn!(error = %e, "a log's event could not be read; shown without payload");
            None
        }
    }
}

/// The log fields a summary shows (HMGET: never the stored request).
const SUMMARY_FIELDS: [&str; 8] = [
    "event_id",
    "event_type",
    "endpoint_id",
    "created_at_ms",
    "status",
    "attempts",
    "next_attempt_at_ms",
    "last_error",
];

/// The fields an HMGET found, by name (empty when the hash does not exist).
pub(super) fn present_fields(
    names: &[&str],
    values: Vec<Option<String>>,
) -> HashMap<String, String> {
    names
        .iter()
        .zip(values)
        .filter_map(|(name, value)| value.map(|v| ((*name).to_string(), v)))
        .collect()
}

fn entry_from(
    id: &str,
    fields: &HashMap<String, String>,
    payload: Option<&str>,
) -> Option<LogEntry> {
    if fields.is_empty() {
        return None;
    }
    let text = |k: &str| fields.get(k).cloned().unwrap_or_default();
    let number = |k: &str| fields.get(k).and_then(|v| v.parse::<u64>().ok());
    Some(LogEntry {
        id: id.to_string(),
        event_id: text("event_id"),
        event_type: text("event_type"),
        endpoint_id: text("endpoint_id"),
        created_at: rfc3339(number("created_at_ms").unwrap_or(0)),
        status: text("status").parse().unwrap_or(LogStatus::Pending),
        attempts: number("attempts")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        next_attempt_at: number("next_attempt_at_ms").map(rfc3339),
        last_error: fields.get("last_error").filter(|e| !e.is_empty()).cloned(),
        payload: payload
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_come_oldest_first_listed_ones_before_numbered_ones() {
        let fields: HashMap<String, String> = [
            ("a:10", "ten"),
            ("a:9", "nine"),
            ("a:11", "eleven"),
            ("status", "pending"),
            ("attempts", "11"),
            ("a:x", "not an attempt"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut fields = fields;
        let records = attempt_records(vec!["one".into(), "two".into()], &mut fields);
        assert_eq!(records, ["one", "two", "nine", "ten", "eleven"]);
        let mut left: Vec<&str> = fields.keys().map(String::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["a:x", "attempts", "status"]);
    }
}
