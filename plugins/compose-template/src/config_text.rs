//! Reading a [`Config`] straight from its JSON text, what a delivery does.
//!
//! Why: the plugin runs in a fresh instance per delivery, so it parses its
//! config every time. [`Config::parse`] reads a [`Value`] tree: every object a
//! hash map whose keys are copied, and then copied again into the template.
//! For the body, the bulk of a config, that was most of the config's cost.
//! Here the body template is built while the text is read, and the small
//! top-level fields go through the very checks [`Config::parse`] uses.
//!
//! Correctness by construction: this path takes only what it can read exactly
//! as [`Config::parse`] would, and hands everything else to it (a bad config, a
//! duplicate key, an unknown field), so both give the same config or the same
//! error message (tested on a corpus of good and bad configs).

use std::fmt;

use plugin_sdk::raw_event::ObjectKey;
use plugin_sdk::{parse_config, Error, Value};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::config::{
    parse_body_format, parse_headers, parse_method, parse_on_missing, parse_url, BodyTemplate,
    Config,
};
use crate::template::Template;

/// Keys of one body object checked for a duplicate by comparing each with
/// those before it as it is read; an object with more is checked once it has
/// been read, by sorting references to its keys.
const SCANNED_KEYS: usize = 32;

impl Config {
    /// Parses a config's JSON text: the same result as `Config::parse` on the
    /// parsed text, in less work when the text is a well-formed config.
    pub fn from_text(text: &str) -> Result<Self, Error> {
        match read(text) {
            Ok(config) => Ok(config),
            Err(_) => Self::parse(&parse_config(text)?),
        }
    }
}

/// Why the direct reading gave up; the caller goes the long way for the answer.
#[derive(Debug)]
pub(crate) struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not read directly")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<T: fmt::Display>(_: T) -> Self {
        GiveUp
    }
}

/// Reads a config straight from its text, or gives up.
pub(crate) fn read(text: &str) -> Result<Config, GiveUp> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    let mut reader = serde_json::Deserializer::from_str(text);
    let fields = (&mut reader)
        .deserialize_map(FieldsVisitor)
        .map_err(|_| GiveUp)?;
    reader.end().map_err(|_| GiveUp)?;
    check(fields).map_err(|_| GiveUp)
}

/// The checks `Config::parse` makes, on the fields read; any error is left to
/// it to word.
fn check(fields: Fields) -> Result<Config, Error> {
    Ok(Config {
        url: parse_url(fields.url.as_ref())?,
        method: parse_method(fields.method.as_ref())?,
        headers: parse_headers(fields.headers.as_ref())?,
        body_format: parse_body_format(fields.body_format.as_ref())?,
        body: fields.body.flatten(),
        on_missing: parse_on_missing(fields.on_missing.as_ref())?,
    })
}

/// The config's top-level fields: the small ones as values, the body as a template.
#[derive(Default)]
struct Fields {
    url: Option<Value>,
    method: Option<Value>,
    headers: Option<Value>,
    body_format: Option<Value>,
    /// `Some(None)`: the body was `null`.
    body: Option<Option<BodyTemplate>>,
    on_missing: Option<Value>,
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a config object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<ObjectKey<'de>>()? {
            let slot_taken = match key.0.as_ref() {
                "url" => fields.url.replace(map.next_value()?).is_some(),
                "method" => fields.method.replace(map.next_value()?).is_some(),
                "headers" => fields.headers.replace(map.next_value()?).is_some(),
                "body_format" => fields.body_format.replace(map.next_value()?).is_some(),
                "on_missing" => fields.on_missing.replace(map.next_value()?).is_some(),
                "body" => fields.body.replace(map.next_value_seed(Body)?).is_some(),
                // An unknown field: `Config::parse` words the error.
                _ => return Err(de::Error::custom(GiveUp)),
            };
            if slot_taken {
                return Err(de::Error::custom(GiveUp));
            }
        }
        Ok(fields)
    }
}

/// The config's `body`: `null` or an object template; anything else gives up.
struct Body;

impl<'de> DeserializeSeed<'de> for Body {
    type Value = Option<BodyTemplate>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Body {
    type Value = Option<BodyTemplate>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a body object or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Node.visit_map(map).map(Some)
    }
}

/// One node of a body template, as `config::body_template` builds it.
#[derive(Clone, Copy)]
struct Node;

impl<'de> DeserializeSeed<'de> for Node {
    type Value = BodyTemplate;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node {
    type Value = BodyTemplate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a body template value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<BodyTemplate, E> {
        // A bad template: `Config::parse` names its field.
        Template::parse(text)
            .map(BodyTemplate::Text)
            .map_err(|_| E::custom(GiveUp))
    }

    fn visit_bool<E>(self, v: bool) -> Result<BodyTemplate, E> {
        Ok(BodyTemplate::Literal(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<BodyTemplate, E> {
        Ok(BodyTemplate::Literal(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<BodyTemplate, E> {
        Ok(BodyTemplate::Literal(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<BodyTemplate, E> {
        Ok(BodyTemplate::Literal(Value::from(v)))
    }

    fn visit_unit<E>(self) -> Result<BodyTemplate, E> {
        Ok(BodyTemplate::Literal(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BodyTemplate, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Node)? {
            items.push(item);
        }
        Ok(BodyTemplate::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BodyTemplate, A::Error> {
        // A duplicate keeps the first one's place and the last one's value in a
        // parsed object; left to `Config::parse`.
        let mut fields: Vec<(String, BodyTemplate)> = Vec::new();
        while let Some(ObjectKey(key)) = map.next_key()? {
            if fields.len() < SCANNED_KEYS && fields.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(GiveUp));
            }
            fields.push((key.into_owned(), map.next_value_seed(Node)?));
        }
        if fields.len() > SCANNED_KEYS {
            let mut keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            if keys.windows(2).any(|pair| pair[0] == pair[1]) {
                return Err(de::Error::custom(GiveUp));
            }
        }
        Ok(BodyTemplate::Object(fields))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The long way: what `Config::from_text` must answer.
    fn parsed(text: &str) -> Result<Config, Error> {
        Config::parse(&parse_config(text)?)
    }

    /// Configs the direct reading takes: it must build exactly what `Config::parse` builds.
    const READ_DIRECTLY: &[&str] = &[
        "",
        "  ",
        "{}",
        r#"{"url": "https://r.example/ack?id=@{{payload.id}}", "method": "post",
            "headers": {"Authorization": "Bearer t", "X-Status": "@{{payload.status}}"},
            "body": {"id": "@{{payload.id}}", "items": "@{{payload.items}}", "n": [1, -2, 2.5, 1e3, true, null, "x @{{type}}"],
                     "deep": {"a": [{"b": {"c": "@{{payload.a.0}}"}}], "k\"q": "escaped key", "e\u0301": "\u00e9"}},
            "body_format": "json", "on_missing": "drop"}"#,
        r#"{"body_format": "form", "body": {"a": "@{{payload.a}}", "b": 18446744073709551615, "c": -9223372036854775808}}"#,
        r#"{"body": null, "url": null, "method": null, "headers": null, "body_format": null, "on_missing": null}"#,
        r#"{"body": {"same key in": {"x": 1}, "other objects": {"x": 2}}}"#,
        r#"{"body": {"empty": {}, "none": [], "s": ""}}"#,
        // The small fields are read as values: a duplicate there is a parsed map's.
        r#"{"headers": {"X-A": "1", "X-A": "2"}}"#,
    ];

    /// Configs the direct reading must hand to `Config::parse`, with the answer they get
    /// that way: bad ones (the error as the tenant reads it), and good ones it does not
    /// read exactly (`Ok`; what they hold is checked below).
    const GIVEN_UP: &[(&str, Result<(), &str>)] = &[
        ("null", Ok(())),
        ("[]", Err("config: expected an object")),
        ("3", Err("config: expected an object")),
        ("{", Err("config is not JSON: EOF while parsing an object at line 1 column 1")),
        (
            r#"{"url": "https://r.example/"} x"#,
            Err("config is not JSON: trailing characters at line 1 column 31"),
        ),
        (
            r#"{"bodyformat": "json"}"#,
            Err("bodyformat: unknown field (expected one of url, method, headers, body_format, body, on_missing)"),
        ),
        (r#"{"method": "PATCH"}"#, Err("method: expected one of GET, POST, PUT")),
        (r#"{"method": "GET", "method": "POST"}"#, Ok(())),
        (r#"{"url": 3}"#, Err("url: expected a string")),
        (r#"{"url": "ftp://x/"}"#, Err("url: expected an http:// or https:// url")),
        (
            r#"{"url": "https://@{{payload.host}}/x"}"#,
            Err("url: variable `payload.host` is in the scheme or host; variables are allowed only in the path, query or fragment"),
        ),
        (r#"{"headers": {"bad name": "v"}}"#, Err("headers.bad name: not a valid header name")),
        (r#"{"headers": {"X-A": 1}}"#, Err("headers.X-A: expected a string")),
        (r#"{"body_format": "xml"}"#, Err(r#"body_format: expected "json" or "form""#)),
        (r#"{"on_missing": "skip"}"#, Err(r#"on_missing: expected "empty", "drop" or "error""#)),
        (r#"{"body": "x"}"#, Err("body: expected an object")),
        (r#"{"body": [1]}"#, Err("body: expected an object")),
        (
            r#"{"body": {"a": [{"b": "@{{nope.x}}"}]}}"#,
            Err("body.a.0.b: unknown variable `nope.x`: it must start with one of id, type, event, tenant, channel, created_at, payload"),
        ),
        (r#"{"body": {"a": "@{{payload.x"}}"#, Err("body.a: unclosed `@{{` (expected `}}`)")),
        (r#"{"body": {"a": 1, "b": 2, "a": 3}}"#, Ok(())),
        (r#"{"body": {"x": {"a": 1, "a": {"b": 2}}}}"#, Ok(())),
        (r#"{"body": {}, "body": {"a": 1}}"#, Ok(())),
    ];

    #[test]
    fn what_is_read_directly_is_what_config_parse_builds() {
        for text in READ_DIRECTLY {
            let direct = read(text).unwrap_or_else(|_| panic!("gave up on {text}"));
            assert_eq!(Ok(direct), parsed(text), "{text}");
        }
    }

    #[test]
    fn given_up_configs_get_the_answer_config_parse_gives() {
        for (text, answer) in GIVEN_UP {
            assert!(read(text).is_err(), "read directly: {text}");
            let got = Config::from_text(text)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert_eq!(got, answer.map_err(str::to_owned), "{text}");
        }
        // The good ones hold what a parsed object holds: a repeated key's last value, in
        // its first place.
        let body = |text: &str| Config::from_text(text).unwrap().body;
        let object = |fields: Vec<(&str, BodyTemplate)>| {
            Some(BodyTemplate::Object(
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ))
        };
        let literal = |n: i32| BodyTemplate::Literal(n.into());
        assert_eq!(Config::from_text("null"), Config::from_text("{}"));
        assert_eq!(
            Config::from_text(r#"{"method": "GET", "method": "POST"}"#)
                .unwrap()
                .method
                .as_deref(),
            Some("POST")
        );
        assert_eq!(
            body(r#"{"body": {"a": 1, "b": 2, "a": 3}}"#),
            object(vec![("a", literal(3)), ("b", literal(2))])
        );
        assert_eq!(
            body(r#"{"body": {"x": {"a": 1, "a": {"b": 2}}}}"#),
            object(vec![(
                "x",
                object(vec![("a", object(vec![("b", literal(2))]).unwrap())]).unwrap()
            )])
        );
        assert_eq!(
            body(r#"{"body": {}, "body": {"a": 1}}"#),
            object(vec![("a", literal(1))])
        );
    }

    #[test]
    fn a_body_object_with_more_keys_than_scanned_is_read_directly_and_checked_for_duplicates() {
        // `n` keys `k0`.. with template values, then `extra` (a repeated key, written as given).
        let object = |n: usize, extra: Option<&str>| {
            let mut keys: Vec<String> = (0..n)
                .map(|i| format!(r#""k{i}": "@{{{{id}}}} {i}""#))
                .collect();
            keys.extend(extra.map(|key| format!(r#""{key}": "last""#)));
            format!(
                r#"{{"body": {{"nested": {{{}}}, "after": 1}}}}"#,
                keys.join(",")
            )
        };
        for n in [
            SCANNED_KEYS - 1,
            SCANNED_KEYS,
            SCANNED_KEYS + 1,
            3 * SCANNED_KEYS,
        ] {
            let text = object(n, None);
            let direct = read(&text).unwrap_or_else(|_| panic!("gave up on {n} keys"));
            assert_eq!(Ok(direct), parsed(&text), "{n} keys");
            // A key repeated after the others (found by the scan below `SCANNED_KEYS` keys,
            // by sorting the keys from there on): the first key, the last one, and the first one
            // spelled with an escape. Each is given up and read as a parsed object reads
            // it: the key keeps its first place and takes the last value.
            let last = format!("k{}", n - 1);
            for (repeated, place, spelled) in [
                ("k0", 0, "k0"),
                (last.as_str(), n - 1, last.as_str()),
                ("k0", 0, r"k\u0030"),
            ] {
                let text = object(n, Some(spelled));
                assert!(read(&text).is_err(), "{n} keys, {spelled} repeated");
                let config = Config::from_text(&text).unwrap();
                let Some(BodyTemplate::Object(body)) = config.body else {
                    panic!("no body")
                };
                let Some((_, BodyTemplate::Object(nested))) = body.first() else {
                    panic!("no nested object")
                };
                assert_eq!(nested.len(), n, "{n} keys, {spelled} repeated");
                assert_eq!(
                    nested[place],
                    (
                        repeated.to_owned(),
                        BodyTemplate::Text(Template::parse("last").unwrap())
                    ),
                    "{n} keys, {spelled} repeated"
                );
            }
        }
    }
}
