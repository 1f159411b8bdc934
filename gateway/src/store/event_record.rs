//! How an event is stored: one Redis string, a JSON header line and then the payload
//! exactly as it was received.
//!
//! Why a string and not a hash: a ~1 KB payload turns a Redis hash into a hashtable (six
//! allocated fields), and its TTL is one more command; a string is one allocation, written
//! with its TTL by one `SET ... EX`. Measured with the benchmark: see the README's
//! Performance section.
//!
//! Gateways before commit 2ae6182 stored events as hashes (fields `type`, `channel`,
//! `endpoint_id`, `payload`, `created_at_ms`, `deliveries`). Every reader here accepts both:
//! a `GET` that meets a hash answers `WRONGTYPE`, and [`read_events`] reads those with
//! `HGETALL` instead.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use redis::{RedisResult, Value};
use serde::{Deserialize, Serialize};

use super::{StoreError, StoreResult};

/// Which form ingest writes events in (`GATEWAY_EVENT_FORMAT`). Both are always read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventFormat {
    /// One string per event (this module's format).
    #[default]
    String,
    /// The hash that gateways before commit 2ae6182 wrote and read: for a rolling upgrade of a
    /// fleet that still runs such gateways (they cannot read the string form), or before a
    /// rollback to one. Switch to `string` once every process reads both.
    Hash,
}

impl EventFormat {
    /// The ingest script's argument for this format.
    pub fn as_arg(self) -> &'static str {
        match self {
            EventFormat::String => "string",
            EventFormat::Hash => "hash",
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Event type.
    pub event_type: String,
    /// Channel, if the event named one.
    pub channel: Option<String>,
    /// Target endpoint, if the event named one.
    pub endpoint_id: Option<String>,
    /// Unix ms the event was accepted.
    pub created_at_ms: u64,
    /// Delivery log ids (`msg_...`), one per matched endpoint.
    pub deliveries: Vec<String>,
    /// The payload as received (JSON text).
    pub payload: String,
}

/// The header line: everything but the payload. serde_json escapes every newline inside a
/// string, so the first `\n` of a record ends the header.
#[derive(Serialize, Deserialize)]
struct Header<'a> {
    #[serde(rename = "type", borrow)]
    event_type: std::borrow::Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    channel: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none", borrow)]
    endpoint_id: Option<std::borrow::Cow<'a, str>>,
    created_at_ms: u64,
    #[serde(default, borrow)]
    deliveries: Vec<std::borrow::Cow<'a, str>>,
}

/// What a new event's record holds.
pub struct RecordFields<'a> {
    /// Event type.
    pub event_type: &'a str,
    /// Channel, when the event names one.
    pub channel: Option<&'a str>,
    /// The one endpoint the event was sent to, when it named one.
    pub endpoint_id: Option<&'a str>,
    /// When the gateway accepted it (Unix ms).
    pub created_at_ms: u64,
    /// Its deliveries' log ids.
    pub deliveries: &'a [&'a str],
    /// The payload as received.
    pub payload: &'a str,
}

impl RecordFields<'_> {
    /// The stored bytes of the event: header line, `\n`, payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len_hint());
        // Writing into a Vec cannot fail.
        let _ = self.encode_into(&mut out);
        out
    }

    /// About how many bytes [`RecordFields::encode`] writes (more for a long type or many
    /// deliveries).
    pub fn len_hint(&self) -> usize {
        128 + self.payload.len()
    }

    /// [`RecordFields::encode`] into `out` (ingest writes the record straight into its
    /// script call).
    pub fn encode_into(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let header = Header {
            event_type: self.event_type.into(),
            channel: self.channel.map(Into::into),
            endpoint_id: self.endpoint_id.map(Into::into),
            created_at_ms: self.created_at_ms,
            deliveries: self.deliveries.iter().map(|d| (*d).into()).collect(),
        };
        serde_json::to_writer(&mut *out, &header)?;
        out.write_all(b"\n")?;
        out.write_all(self.payload.as_bytes())
    }
}

/// An event from its stored bytes.
pub fn decode(bytes: &[u8]) -> StoreResult<StoredEvent> {
    let split = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| StoreError::Corrupt("event record has no header line".into()))?;
    let header: Header<'_> = serde_json::from_slice(&bytes[..split])?;
    let payload = std::str::from_utf8(&bytes[split + 1..])
        .map_err(|e| StoreError::Corrupt(format!("event payload is not UTF-8: {e}")))?;
    Ok(StoredEvent {
        event_type: header.event_type.into_owned(),
        channel: header
            .channel
            .map(|c| c.into_owned())
            .filter(|c| !c.is_empty()),
        endpoint_id: header
            .endpoint_id
            .map(|e| e.into_owned())
            .filter(|e| !e.is_empty()),
        created_at_ms: header.created_at_ms,
        deliveries: header
            .deliveries
            .into_iter()
            .map(|d| d.into_owned())
            .collect(),
        payload: payload.to_string(),
    })
}

/// An event a gateway before commit 2ae6182 stored as a hash; `None` when the hash is empty
/// (no such key).
pub fn from_legacy_hash(mut fields: HashMap<String, String>) -> Option<StoredEvent> {
    if fields.is_empty() {
        return None;
    }
    let mut take = |k: &str| fields.remove(k).unwrap_or_default();
    let optional = |v: String| Some(v).filter(|v| !v.is_empty());
    Some(StoredEvent {
        event_type: take("type"),
        channel: optional(take("channel")),
        endpoint_id: optional(take("endpoint_id")),
        created_at_ms: take("created_at_ms").parse().unwrap_or(0),
        deliveries: take("deliveries")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        payload: take("payload"),
    })
}

/// One event's `GET` reply: the event, `None` when there is no such key, or the error
/// (`WRONGTYPE` for an event stored as a hash).
pub fn from_get_reply(reply: RedisResult<Value>) -> RedisResult<StoreResult<Option<StoredEvent>>> {
    let bytes: Option<Vec<u8>> =
        redis::from_redis_value(reply?).map_err(redis::RedisError::from)?;
    Ok(bytes.as_deref().map(decode).transpose())
}

/// Whether an error is Redis answering `WRONGTYPE`: the key holds a legacy hash event.
fn is_wrong_type(e: &redis::RedisError) -> bool {
    e.code() == Some("WRONGTYPE")
}

/// Finishes reading events from their `GET` replies (one per key, in order): a reply that
/// met a legacy hash is read again with `HGETALL`, all of those in one round trip. Each
/// result is that event's own: one unreadable record does not fail the others.
pub async fn read_events(
    conn: &mut ConnectionManager,
    keys: &[String],
    replies: Vec<RedisResult<Value>>,
) -> StoreResult<Vec<StoreResult<Option<StoredEvent>>>> {
    let mut out = Vec::with_capacity(replies.len());
    let mut legacy = Vec::new();
    for (i, reply) in replies.into_iter().enumerate() {
        match from_get_reply(reply) {
            Ok(event) => out.push(event),
            Err(e) if is_wrong_type(&e) => {
                legacy.push(i);
                out.push(Ok(None));
            }
            Err(e) => out.push(Err(e.into())),
        }
    }
    if legacy.is_empty() {
        return Ok(out);
    }
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for &i in &legacy {
        pipe.hgetall(&keys[i]);
    }
    let hashes: Vec<RedisResult<Value>> = pipe.query_async(conn).await?;
    for (&i, hash) in legacy.iter().zip(hashes) {
        out[i] = hash
            .and_then(|v| {
                redis::from_redis_value::<HashMap<String, String>>(v)
                    .map_err(redis::RedisError::from)
            })
            .map(from_legacy_hash)
            .map_err(StoreError::from);
    }
    Ok(out)
}

/// Reads events by key, either format, in one round trip (two when some are legacy hashes).
pub async fn get_events(
    conn: &mut ConnectionManager,
    keys: &[String],
) -> StoreResult<Vec<StoreResult<Option<StoredEvent>>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for key in keys {
        pipe.get(key);
    }
    let replies: Vec<RedisResult<Value>> = pipe.query_async(conn).await?;
    read_events(conn, keys, replies).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_with_its_payload_byte_for_byte() {
        let payload = "{\"a\": 1.50,\n \"b\":\"line\\nbreak\", \"a\": 2}";
        let bytes = RecordFields {
            event_type: "Message.received",
            channel: Some("whatsapp"),
            endpoint_id: None,
            created_at_ms: 1_763_700_000_123,
            deliveries: &["msg_1", "msg_2"],
            payload,
        }
        .encode();
        let event = decode(&bytes).unwrap();
        assert_eq!(event.event_type, "Message.received");
        assert_eq!(event.channel.as_deref(), Some("whatsapp"));
        assert_eq!(event.endpoint_id, None);
        assert_eq!(event.created_at_ms, 1_763_700_000_123);
        assert_eq!(event.deliveries, ["msg_1", "msg_2"]);
        assert_eq!(event.payload, payload);
    }

    #[test]
    fn a_type_with_a_newline_stays_in_the_header() {
        let bytes = RecordFields {
            event_type: "a\nb",
            channel: None,
            endpoint_id: Some("ep_1"),
            created_at_ms: 1,
            deliveries: &[],
            payload: "{}",
        }
        .encode();
        let event = decode(&bytes).unwrap();
        assert_eq!(event.event_type, "a\nb");
        assert_eq!(event.endpoint_id.as_deref(), Some("ep_1"));
        assert_eq!(event.payload, "{}");
    }

    #[test]
    fn a_record_without_a_header_line_is_corrupt() {
        assert!(matches!(decode(b"{}"), Err(StoreError::Corrupt(_))));
        assert!(matches!(
            decode(b"not json\n{}"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn a_legacy_hash_reads_as_the_same_event() {
        let fields: HashMap<String, String> = [
            ("type", "Contact.created"),
            ("channel", ""),
            ("endpoint_id", "ep_9"),
            ("payload", "{\"x\":1}"),
            ("created_at_ms", "42"),
            ("deliveries", "msg_a msg_b"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let event = from_legacy_hash(fields).unwrap();
        assert_eq!(
            event,
            StoredEvent {
                event_type: "Contact.created".into(),
                channel: None,
                endpoint_id: Some("ep_9".into()),
                created_at_ms: 42,
                deliveries: vec!["msg_a".into(), "msg_b".into()],
                payload: "{\"x\":1}".into(),
            }
        );
        assert_eq!(from_legacy_hash(HashMap::new()), None);
    }
}
