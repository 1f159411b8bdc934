//! [`RawEvent`] and [`LazyEvent`]: the event as the gateway passes it, for
//! plugins that read a few payload fields and would rather not parse the whole
//! payload on every call.
//!
//! Why: a plugin runs in a fresh instance per delivery, so whatever it parses it
//! parses every time. Turning a 1 KB payload into a [`Value`] tree (every string
//! copied, every object a hash map) was about a third of compose-template's work
//! per call, though its templates read a handful of fields. [`LazyEvent`] checks
//! the payload's syntax in one pass that allocates nothing per value, keeps the
//! top-level fields as slices of the text, and parses a field only when a path
//! reads it (once: the value is kept for the next path).
//!
//! [`Plugin::transform_raw`](crate::Plugin::transform_raw) hands a plugin the
//! [`RawEvent`]; most plugins never see it (its default parses everything and
//! calls `transform`).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::event::{follow_segments, lookup_value, payload_not_json, resolve_path, split_root};
use crate::{Error, Event};

/// An event exactly as the gateway passed it: the payload is still JSON text.
///
/// ```
/// use plugin_sdk::{Lookup, RawEvent};
///
/// let raw = RawEvent { payload: r#"{"status":"read"}"#, ..RawEvent::default() };
/// assert_eq!(raw.parse()?.payload["status"], "read");
/// assert_eq!(raw.lazy()?.lookup_text("payload.status").as_deref(), Some("read"));
/// # Ok::<(), plugin_sdk::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawEvent<'a> {
    /// Event id given by the gateway (`evt_...`).
    pub id: &'a str,
    /// Event type, e.g. `whatsapp:message:in`.
    pub event_type: &'a str,
    /// Tenant the event belongs to (`ten_...`).
    pub tenant: &'a str,
    /// Channel the event came from, when the sender named one.
    pub channel: Option<&'a str>,
    /// When the gateway accepted the event, RFC 3339 in UTC.
    pub created_at: &'a str,
    /// The payload's JSON text (empty text means `null`).
    pub payload: &'a str,
}

impl<'a> RawEvent<'a> {
    /// Parses the payload: the [`Event`] that [`Plugin::transform`](crate::Plugin::transform)
    /// gets. A payload that is not JSON is an error naming the problem.
    pub fn parse(&self) -> Result<Event, Error> {
        Event::from_parts(
            self.id,
            self.event_type,
            self.tenant,
            self.channel.map(str::to_owned),
            self.created_at,
            self.payload,
        )
    }

    /// Checks the payload's syntax and indexes its top-level fields without
    /// parsing them. Malformed JSON is refused as [`RawEvent::parse`] refuses
    /// it, with the same message prefix (`event payload is not JSON: `; the
    /// rest may be worded differently); what the syntax check lets through and a
    /// parse does not is listed at [`LazyEvent`].
    pub fn lazy(&self) -> Result<LazyEvent<'a>, Error> {
        let text = self.payload.trim_start();
        let payload = if text.is_empty() {
            Payload::Parsed(Value::Null)
        } else if text.starts_with('{') {
            Payload::Object {
                fields: serde_json::from_str::<Fields<'a>>(self.payload)
                    .map_err(payload_not_json)?,
                whole: OnceCell::new(),
            }
        } else {
            Payload::Parsed(serde_json::from_str(self.payload).map_err(payload_not_json)?)
        };
        Ok(LazyEvent {
            raw: *self,
            payload,
        })
    }
}

/// An event whose payload is read where a path asks: its [`Lookup::lookup_ref`]
/// answers as [`Event::lookup_ref`] does for the parsed event.
///
/// A field's text passed the syntax check but is parsed only when read; text
/// that passes the check and still fails to parse reads as missing. Three kinds
/// do: an escaped lone UTF-16 surrogate, a number out of range (`1e400`), and
/// nesting deeper than 128 levels (the check has no depth limit; a parse stops
/// there). A full parse fails the whole call for any of them. The gateway's
/// ingest refuses all three, so a plugin it calls never sees them.
///
/// ```
/// use plugin_sdk::{Lookup, RawEvent};
/// use serde_json::json;
///
/// let raw = RawEvent {
///     event_type: "order.paid",
///     payload: r#"{"items": [{"name": "tea"}], "total": 12}"#,
///     ..RawEvent::default()
/// };
/// let event = raw.lazy()?;
/// assert_eq!(event.lookup("payload.items.0.name"), Some(json!("tea")));
/// assert_eq!(event.lookup("type"), Some(json!("order.paid")));
/// assert_eq!(event.lookup("payload.missing"), None);
/// # Ok::<(), plugin_sdk::Error>(())
/// ```
#[derive(Debug)]
pub struct LazyEvent<'a> {
    raw: RawEvent<'a>,
    payload: Payload<'a>,
}

/// The payload, indexed or parsed.
#[derive(Debug)]
enum Payload<'a> {
    /// An object: its fields' texts, and the whole value once something asked for it.
    Object {
        fields: Fields<'a>,
        whole: OnceCell<Option<Value>>,
    },
    /// Anything else (rare: the gateway accepts objects), parsed at once.
    Parsed(Value),
}

/// One top-level field of an object payload.
#[derive(Debug)]
struct Field<'a> {
    key: Cow<'a, str>,
    text: &'a RawValue,
    value: OnceCell<Option<Value>>,
}

impl Field<'_> {
    fn value(&self) -> Option<&Value> {
        self.value
            .get_or_init(|| serde_json::from_str(self.text.get()).ok())
            .as_ref()
    }
}

impl<'a> LazyEvent<'a> {
    /// The payload part of a lookup: `rest` is the path after `payload.`.
    fn payload_lookup(&self, rest: Option<&str>) -> Option<&Value> {
        let (fields, whole) = match &self.payload {
            Payload::Parsed(value) => return lookup_value(value, rest.unwrap_or_default()),
            Payload::Object { fields, whole } => (fields, whole),
        };
        let rest = match rest {
            Some(rest) if !rest.is_empty() => rest,
            // `payload` (and `payload.`, as `lookup_value` reads an empty path): all of it.
            _ => {
                return whole
                    .get_or_init(|| serde_json::from_str(self.raw.payload).ok())
                    .as_ref()
            }
        };
        let (key, below) = match rest.split_once('.') {
            Some((key, below)) => (key, Some(below)),
            None => (rest, None),
        };
        let value = fields.get(key)?.value()?;
        match below {
            None => Some(value),
            // `payload.a.` is key `a`, then key `""`, as in a parsed payload.
            Some(below) => follow_segments(value, below),
        }
    }
}

/// Reads variables by dotted path: what templates need from an event.
/// [`Event`] and [`LazyEvent`] answer alike; code written against this trait
/// works with either.
pub trait Lookup {
    /// The value at `path`, borrowed where it can be; see [`Event::lookup_ref`]
    /// for the paths.
    fn lookup_ref(&self, path: &str) -> Option<Cow<'_, Value>>;

    /// The value at `path`, owned; see [`Event::lookup`].
    fn lookup(&self, path: &str) -> Option<Value> {
        self.lookup_ref(path).map(Cow::into_owned)
    }

    /// The value at `path` as text; see [`Event::lookup_text`].
    fn lookup_text(&self, path: &str) -> Option<String> {
        self.lookup_ref(path).map(|v| crate::value_to_text(&v))
    }

    /// The JSON text of the value at `path` as the event holds it, when the
    /// reader keeps it as text: a [`LazyEvent`]'s whole payload (`payload`) and
    /// its top-level fields (`payload.status`), where `lookup_ref` finds a
    /// value. `None` for deeper paths, the other names, a payload that is not
    /// an object, and always for an [`Event`]: read the value with
    /// [`Lookup::lookup_ref`] then. The text is as the sender wrote it
    /// (whitespace, escapes, number spellings, repeated keys): valid JSON by the
    /// syntax check, and for the kinds listed at [`LazyEvent`] text where
    /// `lookup_ref` finds nothing.
    fn lookup_json_text(&self, path: &str) -> Option<&str> {
        let _ = path;
        None
    }
}

impl Lookup for Event {
    fn lookup_ref(&self, path: &str) -> Option<Cow<'_, Value>> {
        Event::lookup_ref(self, path)
    }
}

impl Lookup for LazyEvent<'_> {
    fn lookup_ref(&self, path: &str) -> Option<Cow<'_, Value>> {
        resolve_path(path, &self.raw, |rest| {
            self.payload_lookup(rest).map(Cow::Borrowed)
        })
    }

    fn lookup_json_text(&self, path: &str) -> Option<&str> {
        let Payload::Object { fields, .. } = &self.payload else {
            return None;
        };
        match split_root(path) {
            // `payload`, and `payload.` as `lookup_ref` reads it: all of it.
            ("payload", None | Some("")) => Some(self.raw.payload.trim()),
            // Top-level fields only: their text is in the index. Text deeper down would
            // be found by reading its parent's text again on every read (a body with
            // many variables into one large field would read it as many times); a
            // parsed field is read once and kept, so deeper paths are read as values.
            ("payload", Some(key)) if !key.contains('.') => Some(fields.get(key)?.text.get()),
            _ => None,
        }
    }
}

/// An object's fields as (key, text) pairs, in order: what [`RawEvent::lazy`]
/// reads the payload into. A few fields are searched one by one; past
/// [`HASHED_FROM`] a hash index is built, so a payload with many keys read by
/// many variables costs one hash per read, not a scan.
#[derive(Debug)]
struct Fields<'a> {
    list: Vec<Field<'a>>,
    /// Key → position of its last occurrence, for long lists.
    index: Option<HashMap<Cow<'a, str>, usize>>,
}

/// Field count from which [`Fields`] keeps a hash index.
const HASHED_FROM: usize = 32;

impl<'a> Fields<'a> {
    fn new(list: Vec<Field<'a>>) -> Self {
        let index = (list.len() >= HASHED_FROM).then(|| {
            // Later duplicates overwrite earlier ones: the last wins, as in a parsed object.
            list.iter()
                .enumerate()
                .map(|(at, field)| (field.key.clone(), at))
                .collect()
        });
        Self { list, index }
    }

    /// The field named `key`; of duplicates, the last, as in a parsed object.
    fn get(&self, key: &str) -> Option<&Field<'a>> {
        match &self.index {
            Some(index) => index.get(key).map(|&at| &self.list[at]),
            None => self.list.iter().rev().find(|f| f.key == key),
        }
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(ObjectKey(key)) = map.next_key()? {
            fields.push(Field {
                key,
                text: map.next_value()?,
                value: OnceCell::new(),
            });
        }
        Ok(Fields::new(fields))
    }
}

/// A JSON object key read with serde, borrowed from the text unless it has
/// escapes: for plugins that read JSON text with their own visitors.
///
/// ```
/// use plugin_sdk::raw_event::ObjectKey;
/// use std::borrow::Cow;
///
/// let ObjectKey(plain) = serde_json::from_str(r#""status""#).unwrap();
/// assert!(matches!(plain, Cow::Borrowed("status")));
/// let ObjectKey(escaped) = serde_json::from_str(r#""st\u0061tus""#).unwrap();
/// assert_eq!(escaped, "status");
/// ```
pub struct ObjectKey<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for ObjectKey<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = ObjectKey<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(ObjectKey(Cow::Borrowed(key)))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(ObjectKey(Cow::Owned(key.to_owned())))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn raw(payload: &str) -> RawEvent<'_> {
        RawEvent {
            id: "evt_1",
            event_type: "whatsapp:message:in",
            tenant: "ten_1",
            channel: Some("whatsapp"),
            created_at: "2024-05-01T10:00:00Z",
            payload,
        }
    }

    /// Payloads with what a lazy reader could get wrong: escaped and duplicate
    /// keys, nesting, arrays, escapes in values, numbers, `null`, whitespace.
    const PAYLOADS: &[&str] = &[
        r#"{"id":"m1","status":"read","n":1.50,"big":12345678901234567890,"e":1e2,"z":null,"t":true}"#,
        r#" { "a" : { "b" : [ 1 , { "c" : "d" } ] } , "s" : "x\ny\u00e9\"q" } "#,
        r#"{"k\u0065y":"escaped key","key":"later wins? no: escaped one is first"}"#,
        r#"{"dup":1,"other":2,"dup":{"x":3}}"#,
        r#"{"":"empty key","a.b":"dotted key","0":"zero"}"#,
        r#"{"items":[{"sku":"A","qty":1},{"sku":"B","qty":2}],"note":"éé"}"#,
        r#"{}"#,
        r#"{"a":{"":5},"":{"":6},"s":"x"}"#,
        r#"[1,{"a":2}]"#,
        r#""just a string""#,
        "12",
        "null",
        "",
        "   ",
    ];

    const PATHS: &[&str] = &[
        "payload",
        "payload.",
        "payload.id",
        " payload.status ",
        "payload.n",
        "payload.big",
        "payload.e",
        "payload.z",
        "payload.t",
        "payload.a",
        "payload.a.b",
        "payload.a.b.1.c",
        "payload.a.b.2",
        "payload.a.x",
        "payload.s",
        "payload.key",
        "payload.dup",
        "payload.dup.x",
        "payload.other",
        "payload.a.b.0.x",
        "payload.0",
        "payload.1.a",
        "payload.items.1.sku",
        "payload.note",
        "payload.missing",
        "payload.id.deeper",
        "payload.a.",
        "payload..",
        "payload.s.",
        "payload.dup.",
        "payload.a.b.",
        "id",
        "type",
        "event",
        "tenant",
        "channel",
        "created_at",
        "id.x",
        "nope",
    ];

    /// A payload with more fields than are searched one by one (hash-indexed),
    /// with repeated keys.
    fn many_fields() -> String {
        let mut fields: Vec<String> = (0..2 * HASHED_FROM)
            .map(|i| format!(r#""k{i}":{{"v":{i}}}"#))
            .collect();
        fields.push(r#""k3":"last k3""#.into());
        fields.insert(0, r#""dup":"first""#.into());
        fields.push(r#""dup":{"x":"last"}"#.into());
        format!("{{{}}}", fields.join(","))
    }

    /// [`PATHS`], and paths into [`many_fields`].
    fn all_paths() -> Vec<String> {
        let many = (0..2 * HASHED_FROM + 1).map(|i| format!("payload.k{i}.v"));
        PATHS
            .iter()
            .map(|path| path.to_string())
            .chain(many)
            .chain(["payload.k3".into(), "payload.dup.x".into()])
            .collect()
    }

    #[test]
    fn lazy_lookups_agree_with_the_parsed_event() {
        let many = many_fields();
        let paths = all_paths();
        for payload in PAYLOADS.iter().copied().chain([many.as_str()]) {
            let raw = raw(payload);
            let parsed = raw.parse().unwrap();
            let lazy = raw.lazy().unwrap();
            for path in &paths {
                // Twice: the second read comes from the kept value.
                for _ in 0..2 {
                    assert_eq!(
                        Lookup::lookup_ref(&lazy, path),
                        parsed.lookup_ref(path),
                        "payload {payload:?}, path {path:?}"
                    );
                }
            }
        }
    }

    /// The event's own fields, by literal expectation (the corpus test above compares the
    /// two readers, which share `resolve_path` for these roots).
    #[test]
    fn event_fields_are_found_by_both_readers() {
        let raw = raw(PAYLOADS[0]);
        let parsed = raw.parse().unwrap();
        let lazy = raw.lazy().unwrap();
        let text = |s: &str| Some(Value::String(s.to_owned()));
        for (path, want) in [
            ("id", text("evt_1")),
            ("type", text("whatsapp:message:in")),
            ("event", text("whatsapp:message:in")),
            ("tenant", text("ten_1")),
            ("channel", text("whatsapp")),
            ("created_at", text("2024-05-01T10:00:00Z")),
            ("payload.status", text("read")),
            ("id.x", None),
            ("channel.0", None),
            ("nope", None),
            ("", None),
        ] {
            assert_eq!(Lookup::lookup(&lazy, path), want, "lazy {path:?}");
            assert_eq!(parsed.lookup(path), want, "parsed {path:?}");
        }
        let no_channel = RawEvent {
            channel: None,
            ..raw
        };
        assert_eq!(Lookup::lookup(&no_channel.lazy().unwrap(), "channel"), None);
        assert_eq!(no_channel.parse().unwrap().lookup("channel"), None);
    }

    #[test]
    fn the_trait_answers_as_the_inherent_methods() {
        let raw = raw(PAYLOADS[1]);
        let parsed = raw.parse().unwrap();
        let lazy = raw.lazy().unwrap();
        for path in PATHS {
            assert_eq!(Lookup::lookup(&lazy, path), parsed.lookup(path), "{path}");
            assert_eq!(
                Lookup::lookup_text(&lazy, path),
                parsed.lookup_text(path),
                "{path}"
            );
        }
    }

    /// `lookup_json_text` finds what `lookup_ref` finds: the text parses to the
    /// very value, on every payload and path of the corpus.
    #[test]
    fn payload_text_is_the_text_of_the_value_a_lookup_finds() {
        let many = many_fields();
        let paths = all_paths();
        for payload in PAYLOADS.iter().copied().chain([many.as_str()]) {
            let raw = raw(payload);
            let parsed = raw.parse().unwrap();
            let lazy = raw.lazy().unwrap();
            let object = payload.trim_start().starts_with('{');
            for path in &paths {
                let text = lazy.lookup_json_text(path);
                let from_text = text.map(|t| serde_json::from_str::<Value>(t).unwrap());
                let found = parsed.lookup_ref(path).map(Cow::into_owned);
                let below = path.trim().strip_prefix("payload.").unwrap_or_default();
                let kept_as_text = path.trim() == "payload" || !below.contains('.');
                if object && path.trim().starts_with("payload") && kept_as_text {
                    assert_eq!(from_text, found, "payload {payload:?}, path {path:?}");
                } else {
                    assert_eq!(text, None, "payload {payload:?}, path {path:?}");
                }
            }
        }
    }

    #[test]
    fn payload_text_is_as_the_sender_wrote_it() {
        let payload = r#" { "a" : [ 1 , 2.50 ] , "s":"x\ny", "dup": 1, "dup": {"k": 2}, "o": {"b": [3, {"c": 1e2}]} } "#;
        let lazy = raw(payload).lazy().unwrap();
        assert_eq!(lazy.lookup_json_text("payload.a"), Some("[ 1 , 2.50 ]"));
        assert_eq!(lazy.lookup_json_text(" payload.s "), Some(r#""x\ny""#));
        assert_eq!(lazy.lookup_json_text("payload.dup"), Some(r#"{"k": 2}"#));
        assert_eq!(
            lazy.lookup_json_text("payload.o"),
            Some(r#"{"b": [3, {"c": 1e2}]}"#)
        );
        assert_eq!(lazy.lookup_json_text("payload"), Some(payload.trim()));
        assert_eq!(lazy.lookup_json_text("payload."), Some(payload.trim()));
        // Deeper paths are read as values; so are the other names.
        for path in [
            "payload.a.1",
            "payload.o.b",
            "payload.nope",
            "payloadx",
            "id",
            "type",
        ] {
            assert_eq!(lazy.lookup_json_text(path), None, "{path}");
        }
        assert_eq!(
            raw("[1]").lazy().unwrap().lookup_json_text("payload.0"),
            None
        );
        // Text a parse refuses is still offered as text.
        let lazy = raw(r#"{"bad":"\ud800"}"#).lazy().unwrap();
        assert_eq!(Lookup::lookup(&lazy, "payload.bad"), None);
        assert_eq!(lazy.lookup_json_text("payload.bad"), Some(r#""\ud800""#));
    }

    #[test]
    fn a_payload_read_lazily_is_borrowed_not_copied() {
        let raw = raw(PAYLOADS[5]);
        let lazy = raw.lazy().unwrap();
        assert!(matches!(
            Lookup::lookup_ref(&lazy, "payload.items"),
            Some(Cow::Borrowed(Value::Array(items))) if items.len() == 2
        ));
    }

    #[test]
    fn what_a_full_parse_rejects_the_lazy_check_rejects() {
        let bad = [
            "{",
            r#"{"a":1,}"#,
            r#"{"a":[1,2}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\q"}"#,
            r#"{"a":01}"#,
            "{\"a\":\"ctrl\u{1}char\"}",
            r#"{"a":1} x"#,
            r#"{"a":1}{"b":2}"#,
            r#"{a:1}"#,
            "[1,",
            "nul",
        ];
        for payload in bad {
            let full = raw(payload).parse().unwrap_err().to_string();
            let lazy = raw(payload).lazy().unwrap_err().to_string();
            assert!(full.starts_with("event payload is not JSON: "), "{full}");
            assert!(lazy.starts_with("event payload is not JSON: "), "{lazy}");
        }
    }

    #[test]
    fn a_field_that_passes_the_check_but_not_a_parse_reads_as_missing() {
        // A lone surrogate escape, numbers out of range, and nesting past serde_json's
        // 128 levels: the syntax check skips over them, a parse refuses them.
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let long = "9".repeat(400);
        for bad in [r#""\ud800""#, "1e400", &long, deep.as_str()] {
            let payload = format!(r#"{{"bad":{bad},"good":1}}"#);
            assert!(raw(&payload).parse().is_err());
            let lazy = raw(&payload).lazy().unwrap();
            assert_eq!(Lookup::lookup(&lazy, "payload.bad"), None);
            assert_eq!(Lookup::lookup(&lazy, "payload"), None);
            assert_eq!(Lookup::lookup(&lazy, "payload.good"), Some(1.into()));
        }
    }
}
