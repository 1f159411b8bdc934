//! The event being delivered, and variable lookup by dotted path.

use std::borrow::Cow;

use serde_json::Value;

use crate::{Error, RawEvent};

/// Names that [`Event::lookup`] resolves at the top level of a path.
const ROOTS: &[&str] = &[
    "id",
    "type",
    "event",
    "tenant",
    "channel",
    "created_at",
    "payload",
];

/// The error for an event payload that is not JSON, however it is read.
pub(crate) fn payload_not_json(e: serde_json::Error) -> Error {
    Error::new(format!("event payload is not JSON: {e}"))
}

/// One event, as the gateway accepted it.
///
/// ```
/// use plugin_sdk::Event;
/// use serde_json::json;
///
/// let event = Event::new("whatsapp:message:status", json!({"status": "read"}))
///     .with_channel("whatsapp");
/// assert_eq!(event.event_type, "whatsapp:message:status");
/// assert_eq!(event.channel.as_deref(), Some("whatsapp"));
/// assert_eq!(event.payload["status"], "read");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event id given by the gateway (`evt_...`).
    pub id: String,
    /// Event type, e.g. `whatsapp:message:in` or `Message.received`.
    pub event_type: String,
    /// Tenant the event belongs to (`ten_...`).
    pub tenant: String,
    /// Channel the event came from (e.g. `whatsapp`), when the sender named one.
    pub channel: Option<String>,
    /// When the gateway accepted the event, RFC 3339 in UTC.
    pub created_at: String,
    /// The event payload (a JSON object).
    pub payload: Value,
}

impl Event {
    /// An event with the given type and payload; the other fields are empty.
    /// Handy in tests and examples.
    ///
    /// ```
    /// use plugin_sdk::Event;
    ///
    /// let event = Event::new("order.paid", serde_json::json!({"total": 12}));
    /// assert_eq!(event.id, "");
    /// assert_eq!(event.channel, None);
    /// ```
    pub fn new(event_type: impl Into<String>, payload: Value) -> Self {
        Self {
            id: String::new(),
            event_type: event_type.into(),
            tenant: String::new(),
            channel: None,
            created_at: String::new(),
            payload,
        }
    }

    /// Sets the event id (builder style).
    ///
    /// ```
    /// # use plugin_sdk::Event;
    /// let event = Event::new("t", serde_json::Value::Null).with_id("evt_1");
    /// assert_eq!(event.id, "evt_1");
    /// ```
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the channel (builder style).
    ///
    /// ```
    /// # use plugin_sdk::Event;
    /// let event = Event::new("t", serde_json::Value::Null).with_channel("sms");
    /// assert_eq!(event.channel.as_deref(), Some("sms"));
    /// ```
    #[must_use]
    pub fn with_channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = Some(channel.into());
        self
    }

    /// Sets the tenant (builder style).
    ///
    /// ```
    /// # use plugin_sdk::Event;
    /// let event = Event::new("t", serde_json::Value::Null).with_tenant("ten_1");
    /// assert_eq!(event.tenant, "ten_1");
    /// ```
    #[must_use]
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// Sets the acceptance time (builder style).
    ///
    /// ```
    /// # use plugin_sdk::Event;
    /// let event = Event::new("t", serde_json::Value::Null).with_created_at("2024-01-01T00:00:00Z");
    /// assert_eq!(event.created_at, "2024-01-01T00:00:00Z");
    /// ```
    #[must_use]
    pub fn with_created_at(mut self, created_at: impl Into<String>) -> Self {
        self.created_at = created_at.into();
        self
    }

    /// Builds an event from the fields the gateway passes, parsing the payload
    /// text. A payload that is not JSON is an error, not a panic; an empty
    /// payload is `null`.
    ///
    /// ```
    /// use plugin_sdk::Event;
    ///
    /// let event = Event::from_parts("evt_1", "t", "ten_1", None, "2024-01-01T00:00:00Z", r#"{"a":1}"#)?;
    /// assert_eq!(event.payload["a"], 1);
    /// assert!(Event::from_parts("evt_1", "t", "ten_1", None, "", "{not json").is_err());
    /// # Ok::<(), plugin_sdk::Error>(())
    /// ```
    pub fn from_parts(
        id: impl Into<String>,
        event_type: impl Into<String>,
        tenant: impl Into<String>,
        channel: Option<String>,
        created_at: impl Into<String>,
        payload: &str,
    ) -> Result<Self, Error> {
        let payload = if payload.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(payload).map_err(payload_not_json)?
        };
        Ok(Self {
            id: id.into(),
            event_type: event_type.into(),
            tenant: tenant.into(),
            channel,
            created_at: created_at.into(),
            payload,
        })
    }

    /// Resolves a dotted path against the event.
    ///
    /// Top-level names: `id`, `type` (alias `event`), `tenant`, `channel`,
    /// `created_at` and `payload`. Below `payload`, each segment is an object
    /// key, or an array index for arrays (`payload.items.0.name`). Surrounding
    /// whitespace is ignored. Returns `None` when any step is missing (and for
    /// `channel` when the event has none); a JSON `null` in the payload is
    /// returned as `Some(Value::Null)`.
    ///
    /// ```
    /// use plugin_sdk::Event;
    /// use serde_json::json;
    ///
    /// let event = Event::new("order.paid", json!({"items": [{"name": "tea"}], "total": 12}))
    ///     .with_id("evt_1");
    /// assert_eq!(event.lookup("id"), Some(json!("evt_1")));
    /// assert_eq!(event.lookup("type"), Some(json!("order.paid")));
    /// assert_eq!(event.lookup("payload.items.0.name"), Some(json!("tea")));
    /// assert_eq!(event.lookup("payload.total"), Some(json!(12)));
    /// assert_eq!(event.lookup("payload.missing"), None);
    /// assert_eq!(event.lookup("channel"), None);
    /// ```
    pub fn lookup(&self, path: &str) -> Option<Value> {
        self.lookup_ref(path).map(Cow::into_owned)
    }

    /// Like [`Event::lookup`], without copying what the payload holds: a payload
    /// value is borrowed (a template that copies a large array into the body reads
    /// it once, when it is written out); the other names are made into a string.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use plugin_sdk::Event;
    /// use serde_json::json;
    ///
    /// let event = Event::new("t", json!({"items": [1, 2]})).with_id("evt_1");
    /// assert!(matches!(event.lookup_ref("payload.items"), Some(Cow::Borrowed(v)) if v == &json!([1, 2])));
    /// assert_eq!(event.lookup_ref("id").as_deref(), Some(&json!("evt_1")));
    /// assert_eq!(event.lookup_ref("payload.nope"), None);
    /// ```
    pub fn lookup_ref(&self, path: &str) -> Option<Cow<'_, Value>> {
        // The names above the payload; the payload is read from `self.payload` below.
        let head = RawEvent {
            id: &self.id,
            event_type: &self.event_type,
            tenant: &self.tenant,
            channel: self.channel.as_deref(),
            created_at: &self.created_at,
            payload: "",
        };
        resolve_path(path, &head, |rest| {
            lookup_value(&self.payload, rest.unwrap_or_default()).map(Cow::Borrowed)
        })
    }

    /// Like [`Event::lookup`], rendered as text: strings as they are, `null`
    /// as the empty string, other values as their JSON text.
    ///
    /// ```
    /// use plugin_sdk::Event;
    /// use serde_json::json;
    ///
    /// let event = Event::new("t", json!({"n": 3, "s": "x", "o": {"k": true}, "z": null}));
    /// assert_eq!(event.lookup_text("payload.s").as_deref(), Some("x"));
    /// assert_eq!(event.lookup_text("payload.n").as_deref(), Some("3"));
    /// assert_eq!(event.lookup_text("payload.o").as_deref(), Some(r#"{"k":true}"#));
    /// assert_eq!(event.lookup_text("payload.z").as_deref(), Some(""));
    /// assert_eq!(event.lookup_text("payload.nope"), None);
    /// ```
    pub fn lookup_text(&self, path: &str) -> Option<String> {
        self.lookup_ref(path).map(|v| value_to_text(&v))
    }

    /// Checks that a path is one [`Event::lookup`] understands (a known
    /// top-level name, no empty segments), so configs can be rejected early.
    /// The error names what is wrong; prefix it with the config field.
    ///
    /// ```
    /// use plugin_sdk::Event;
    ///
    /// assert!(Event::check_path("payload.items.0.name").is_ok());
    /// assert!(Event::check_path("created_at").is_ok());
    /// assert!(Event::check_path("payload..x").is_err());
    /// assert!(Event::check_path("body.x").is_err());
    /// assert!(Event::check_path("id.x").is_err());
    /// ```
    pub fn check_path(path: &str) -> Result<(), Error> {
        let path = path.trim();
        if path.is_empty() {
            return Err(Error::new("empty variable path"));
        }
        let mut segments = path.split('.');
        let root = segments.next().unwrap_or_default();
        if !ROOTS.contains(&root) {
            return Err(Error::new(format!(
                "unknown variable `{path}`: it must start with one of {}",
                ROOTS.join(", ")
            )));
        }
        // Checked as they come, without collecting the segments: configs are parsed on
        // every plugin call.
        let mut rest = segments.peekable();
        if root != "payload" && rest.peek().is_some() {
            return Err(Error::new(format!(
                "unknown variable `{path}`: `{root}` has no fields"
            )));
        }
        if rest.any(str::is_empty) {
            return Err(Error::new(format!(
                "variable `{path}` has an empty segment"
            )));
        }
        Ok(())
    }
}

/// Splits a path into its top-level name and the rest after the first dot
/// (`None` without one), surrounding whitespace ignored.
pub(crate) fn split_root(path: &str) -> (&str, Option<&str>) {
    let path = path.trim();
    match path.split_once('.') {
        Some((root, rest)) => (root, Some(rest)),
        None => (path, None),
    }
}

/// Resolves a dotted path as [`Event::lookup_ref`] documents: the top-level
/// names from `head` (its payload text is not read), and everything under
/// `payload` from `payload`, which gets the rest of the path after `payload.`
/// (`None` for `payload` alone).
pub(crate) fn resolve_path<'e>(
    path: &str,
    head: &RawEvent<'e>,
    payload: impl FnOnce(Option<&str>) -> Option<Cow<'e, Value>>,
) -> Option<Cow<'e, Value>> {
    let (root, rest) = split_root(path);
    let text = |s: &str| (rest.is_none()).then(|| Cow::Owned(Value::String(s.to_owned())));
    match root {
        "id" => text(head.id),
        "type" | "event" => text(head.event_type),
        "tenant" => text(head.tenant),
        "created_at" => text(head.created_at),
        "channel" => head.channel.and_then(text),
        "payload" => payload(rest),
        _ => None,
    }
}

/// Follows a dotted path (`a.b.0.c`) inside a JSON value: object keys, and
/// array indexes for arrays.
///
/// ```
/// use plugin_sdk::lookup_value;
/// use serde_json::json;
///
/// let v = json!({"a": [{"b": 1}]});
/// assert_eq!(lookup_value(&v, "a.0.b"), Some(&json!(1)));
/// assert_eq!(lookup_value(&v, "a.1.b"), None);
/// assert_eq!(lookup_value(&v, ""), Some(&v));
/// ```
pub fn lookup_value<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(value);
    }
    follow_segments(value, path)
}

/// [`lookup_value`] without its reading of an empty path as "this value": every
/// segment, empty ones included, is a step (`a.` is key `a`, then key `""`).
pub(crate) fn follow_segments<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// Renders a JSON value as text: strings as they are, `null` as the empty
/// string, anything else as its compact JSON text.
///
/// ```
/// use plugin_sdk::value_to_text;
/// use serde_json::json;
///
/// assert_eq!(value_to_text(&json!("hi")), "hi");
/// assert_eq!(value_to_text(&json!(1.5)), "1.5");
/// assert_eq!(value_to_text(&json!([1, 2])), "[1,2]");
/// assert_eq!(value_to_text(&json!(null)), "");
/// ```
pub fn value_to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incoming() -> Event {
        Event::new(
            "whatsapp:message:in",
            json!({
                "id": "our-message-id",
                "channels": [{"name": "whatsapp", "to": "919019120xxx"}],
                "recipient": {"from": "91XXXXXX", "user": {"user_info": {"picture": "null"}}},
                "message": {"type": "text", "payload": {"text": "hi"}}
            }),
        )
        .with_id("evt_1")
        .with_tenant("ten_1")
        .with_created_at("2024-05-01T10:00:00Z")
    }

    #[test]
    fn lookup_top_level_fields() {
        let event = incoming();
        assert_eq!(event.lookup("id"), Some(json!("evt_1")));
        assert_eq!(event.lookup(" type "), Some(json!("whatsapp:message:in")));
        assert_eq!(event.lookup("event"), Some(json!("whatsapp:message:in")));
        assert_eq!(event.lookup("tenant"), Some(json!("ten_1")));
        assert_eq!(
            event.lookup("created_at"),
            Some(json!("2024-05-01T10:00:00Z"))
        );
        assert_eq!(event.lookup("channel"), None);
        assert_eq!(
            event.clone().with_channel("sms").lookup("channel"),
            Some(json!("sms"))
        );
        assert_eq!(event.lookup("id.x"), None);
        assert_eq!(event.lookup("nope"), None);
    }

    #[test]
    fn lookup_payload_paths() {
        let event = incoming();
        assert_eq!(
            event.lookup("payload.channels.0.to"),
            Some(json!("919019120xxx"))
        );
        assert_eq!(event.lookup("payload.channels.1.to"), None);
        assert_eq!(event.lookup("payload.channels.x"), None);
        assert_eq!(
            event.lookup("payload.message.payload.text"),
            Some(json!("hi"))
        );
        assert_eq!(event.lookup("payload.recipient.from.x"), None);
        assert_eq!(event.lookup("payload"), Some(event.payload.clone()));
    }

    #[test]
    fn from_parts_rejects_bad_payload() {
        let err = Event::from_parts("e", "t", "ten", None, "", "[1,").unwrap_err();
        assert!(
            err.to_string().starts_with("event payload is not JSON"),
            "{err}"
        );
        let ok = Event::from_parts("e", "t", "ten", Some("sms".into()), "", "  ").unwrap();
        assert_eq!(ok.payload, Value::Null);
    }
}
