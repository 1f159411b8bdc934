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
