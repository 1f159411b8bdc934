//! Events as tenants send them and as the API returns them.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use utoipa::ToSchema;

use super::validation::{check_name, FieldError};
use crate::ids::{self, IdKind};

/// Most events in one batch call.
pub const MAX_BATCH: usize = 1000;

/// Body of `POST /v1/events` (and one item of a batch).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventCreate {
    /// Event type, e.g. `Message.received`; unknown types are accepted.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's data: a JSON object, kept as the text sent (stored and delivered
    /// byte for byte, never parsed into a tree on the way in).
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
    /// Channel the event came from (`whatsapp`, `sms`, ...), used for endpoint matching.
    pub channel: Option<String>,
    /// Deliver to this endpoint only.
    pub endpoint_id: Option<String>,
}

impl EventCreate {
    /// Checks the fields, naming the first bad one (`prefix` is prepended for batch items).
    pub fn validate(&self, prefix: &str) -> Result<(), FieldError> {
        check_name(&format!("{prefix}type"), &self.event_type, 256)?;
        if !self.payload.get().trim_start().starts_with('{') {
            return Err(FieldError::new(
                format!("{prefix}payload"),
                "must be a JSON object",
            ));
        }
        // Kept as text, so decoded here once: a lone surrogate escape or a number out of
        // range is valid JSON syntax that nothing downstream (the event API, plugins)
        // could read back.
        if let Err(e) = serde_json::from_str::<Readable>(self.payload.get()) {
            return Err(FieldError::new(
                format!("{prefix}payload"),
                format!("is JSON that cannot be read back: {e}"),
            ));
        }
        if let Some(channel) = &self.channel {
            check_name(&format!("{prefix}channel"), channel, 128)?;
        }
        if let Some(endpoint) = &self.endpoint_id {
            if !ids::is_valid(IdKind::Endpoint, endpoint) {
                return Err(FieldError::new(
                    format!("{prefix}endpoint_id"),
                    "not an endpoint id",
                ));
            }
        }
        Ok(())
    }
}

/// Any JSON value, read with serde_json's full decoding (strings unescaped, numbers
/// parsed) and nothing kept: reading it fails exactly where parsing into a tree would.
struct Readable;

impl<'de> Deserialize<'de> for Readable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ReadableVisitor)
    }
}

struct ReadableVisitor;

impl<'de> serde::de::Visitor<'de> for ReadableVisitor {
    type Value = Readable;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_str<E>(self, _: &str) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_unit<E>(self) -> Result<Readable, E> {
        Ok(Readable)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Readable, A::Error> {
        while seq.next_element::<Readable>()?.is_some() {}
        Ok(Readable)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Readable, A::Error> {
        while map.next_key::<Readable>()?.is_some() {
            map.next_value::<Readable>()?;
        }
        Ok(Readable)
    }
}

/// Body of `POST /v1/events/batch`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// Up to 1000 events.
    pub events: Vec<EventCreate>,
}

/// Answer to an accepted event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventAccepted {
    /// `evt_...`; the same for a repeated `Idempotency-Key`.
    pub id: String,
    /// Number of deliveries created.
    pub deliveries: usize,
}

/// Answer to a batch, one entry per event in the order sent: 202 when every event was
/// stored, 207 when some were not (each such entry carries `error` instead of `id`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchAccepted {
    /// One entry per event.
    pub data: Vec<BatchItem>,
}

/// The outcome of one event of a batch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchItem {
    /// `evt_...` when stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Deliveries created, when stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<usize>,
    /// `{code, message}` when this event was not stored (resend just these).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub error: Option<serde_json::Value>,
}

/// An event as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    /// `evt_...`.
    pub id: String,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Channel, if the event named one.
    pub channel: Option<String>,
    /// Target endpoint, if the event named one.
    pub endpoint_id: Option<String>,
    /// The payload.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// RFC 3339.
    pub created_at: String,
    /// Delivery log ids (`msg_...`), one per matched endpoint.
    pub deliveries: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Value) -> EventCreate {
        serde_json::from_str(&v.to_string()).unwrap()
    }

    #[test]
    fn payload_must_be_an_object() {
        let err = event(json!({"type": "Contact.created", "payload": [1]}))
            .validate("")
            .unwrap_err();
        assert_eq!(err.field, "payload");
        assert!(event(json!({"type": "Contact.created", "payload": {}}))
            .validate("")
            .is_ok());
    }

    #[test]
    fn the_payload_is_kept_as_the_text_sent() {
        let sent = r#"{"type": "a", "payload": {"z": 1.50, "a": [1, 2], "e": "\u00e9"} }"#;
        let event: EventCreate = serde_json::from_str(sent).unwrap();
        assert_eq!(
            event.payload.get(),
            r#"{"z": 1.50, "a": [1, 2], "e": "\u00e9"}"#
        );
        assert!(event.validate("").is_ok());
    }

    #[test]
    fn a_payload_that_cannot_be_read_back_is_refused() {
        for payload in [r#"{"s": "\ud800"}"#, r#"{"n": 1e400}"#, r#"{"\udfff": 1}"#] {
            let sent = format!(r#"{{"type": "a", "payload": {payload}}}"#);
            let event: EventCreate = serde_json::from_str(&sent).unwrap();
            let err = event.validate("").unwrap_err();
            assert_eq!(err.field, "payload", "{payload}");
        }
        let fine =
            r#"{"type": "a", "payload": {"s": "\ud83d\ude00", "n": -0.0, "a": [null, true]}}"#;
        let event: EventCreate = serde_json::from_str(fine).unwrap();
        assert!(event.validate("").is_ok());
    }

    #[test]
    fn batch_items_are_named_by_index() {
        let err = event(json!({"type": "", "payload": {}}))
            .validate("events[3].")
            .unwrap_err();
        assert_eq!(err.field, "events[3].type");
        let err = event(json!({"type": "a", "payload": {}, "endpoint_id": "nope"}))
            .validate("")
            .unwrap_err();
        assert_eq!(err.field, "endpoint_id");
    }
}
