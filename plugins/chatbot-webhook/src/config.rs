//! The plugin's config: parsed and checked in one place, so that
//! `validate-config` and `transform` agree and every error names its field.

use plugin_sdk::{has_line_break, is_header_name};
use plugin_sdk::{Error, Event, Value};

use crate::chat;
use crate::nest::{self, Key};

/// HTTP methods the plugin may send.
const METHODS: &[&str] = &["POST", "GET", "PUT", "DELETE"];

/// Every field the config may have.
const KNOWN: &[&str] = &[
    "alias", "method", "url", "params", "auth", "headers", "body", "channels",
];

/// Where a field's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Literal text.
    Text(String),
    /// A variable path: [`Event::lookup`] paths, or `chat.*` for the
    /// default chatbot fields.
    Variable(String),
}

/// One `{key, value, type}` entry of `params`, `headers` or `body`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The key as written.
    pub key: String,
    /// Where the value comes from.
    pub source: Source,
}

/// How requests authenticate to the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// No authentication (the default).
    #[default]
    None,
    /// A key sent as a header or as a query parameter.
    ApiKey {
        /// Header or parameter name.
        key: String,
        /// Its value.
        value: String,
        /// Where it goes.
        place: ApiKeyIn,
    },
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
}

/// Where an API key goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyIn {
    /// As a header (the default).
    Header,
    /// As a query parameter.
    Query,
}

/// The checked config.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Name of the integration, used in drop reasons.
    pub alias: Option<String>,
    /// `POST` (the default), `GET`, `PUT` or `DELETE`.
    pub method: Option<String>,
    /// Receiver url; `None`: the endpoint's url.
    pub url: Option<String>,
    /// Query parameters, appended in order.
    pub params: Vec<Field>,
    /// Authentication.
    pub auth: Auth,
    /// Extra headers, set in order.
    pub headers: Vec<Field>,
    /// Body fields with their parsed keys; `None`: the default chatbot body.
    pub body: Option<Vec<(Key, Source)>>,
    /// Connections whose events pass; empty: every event passes.
    pub channels: Vec<String>,
}

impl Config {
    /// Parses and checks a config; `null` means all defaults.
    pub fn parse(config: &Value) -> Result<Self, Error> {
        let fields = match config {
            Value::Null => return Ok(Self::default()),
            Value::Object(fields) => fields,
            _ => return Err(Error::new("config: expected an object")),
        };
        if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Error::field(
                unknown,
                format!("unknown field (expected one of {})", KNOWN.join(", ")),
            ));
        }
        let headers = parse_fields("headers", fields.get("headers"))?;
        for (i, field) in headers.iter().enumerate() {
            check_header(&format!("headers[{i}]"), field)?;
        }
        Ok(Self {
            alias: opt_str("alias", fields.get("alias"))?.map(str::to_owned),
            method: parse_method(fields.get("method"))?,
            url: parse_url(fields.get("url"))?,
            params: parse_fields("params", fields.get("params"))?,
            auth: parse_auth(fields.get("auth"))?,
            headers,
            body: parse_body(fields.get("body"))?,
            channels: parse_channels(fields.get("channels"))?,
        })
    }
}

/// An optional string field; `null` counts as absent.
fn opt_str<'a>(field: &str, value: Option<&'a Value>) -> Result<Option<&'a str>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::field(field, "expected a string")),
    }
}

/// A required string field of an object.
fn req_str(field: &str, object: &Value, key: &str) -> Result<String, Error> {
    let path = format!("{field}.{key}");
    match opt_str(&path, object.get(key))? {
        Some(s) => Ok(s.to_owned()),
        None => Err(Error::field(path, "required")),
    }
}

fn parse_method(value: Option<&Value>) -> Result<Option<String>, Error> {
    let Some(method) = opt_str("method", value)? else {
        return Ok(None);
    };
    let method = method.trim().to_ascii_uppercase();
    if METHODS.contains(&method.as_str()) {
        Ok(Some(method))
    } else {
        Err(Error::field(
            "method",
            format!("expected one of {}", METHODS.join(", ")),
        ))
    }
}

fn parse_url(value: Option<&Value>) -> Result<Option<String>, Error> {
    let Some(url) = opt_str("url", value)? else {
        return Ok(None);
    };
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with(['/', '?', '#']) => {
            Ok(Some(url.to_owned()))
        }
        _ => Err(Error::field(
            "url",
            "expected an absolute http:// or https:// url",
        )),
    }
}

/// Parses a `[{key, value, type}]` list.
fn parse_fields(name: &str, value: Option<&Value>) -> Result<Vec<Field>, Error> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(Error::field(
                name,
                "expected a list of {\"key\", \"value\", \"type\"}",
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_field(&format!("{name}[{i}]"), item))
        .collect()
}

fn parse_field(field: &str, item: &Value) -> Result<Field, Error> {
    if !item.is_object() {
        return Err(Error::field(
            field,
            "expected an object {\"key\", \"value\", \"type\"}",
        ));
    }
    let key = req_str(field, item, "key")?;
    if key.trim().is_empty() {
        return Err(Error::field(format!("{field}.key"), "must not be empty"));
    }
    let value = match item.get("value") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(Error::field(format!("{field}.value"), "expected a string")),
    };
    let source = match opt_str(&format!("{field}.type"), item.get("type"))? {
        None | Some("text") => Source::Text(value),
        Some("variable") => {
            check_variable(&value).map_err(|e| e.in_field(format!("{field}.value")))?;
            Source::Variable(value.trim().to_owned())
        }
        Some(_) => {
            return Err(Error::field(
                format!("{field}.type"),
                r#"expected "text" or "variable""#,
            ))
        }
    };
    Ok(Field { key, source })
}

/// A variable is an [`Event::lookup`] path or one of the `chat.*` fields.
fn check_variable(path: &str) -> Result<(), Error> {
    let path = path.trim();
    match path.strip_prefix("chat.") {
        Some(name) if chat::FIELDS.contains(&name) => Ok(()),
        Some(_) => Err(Error::new(format!(
            "unknown variable `{path}`: chat fields are chat.{}",
            chat::FIELDS.join(", chat.")
        ))),
        None => Event::check_path(path),
    }
}

fn check_header(field: &str, header: &Field) -> Result<(), Error> {
    if !is_header_name(&header.key) {
        return Err(Error::field(
            format!("{field}.key"),
            "not a valid header name",
        ));
    }
    if let Source::Text(value) = &header.source {
        if has_line_break(value) {
            return Err(Error::field(
                format!("{field}.value"),
                "contains a line break",
            ));
        }
    }
    Ok(())
}

fn parse_auth(value: Option<&Value>) -> Result<Auth, Error> {
    let auth = match value {
        None | Some(Value::Null) => return Ok(Auth::None),
        Some(auth @ Value::Object(_)) => auth,
        Some(_) => return Err(Error::field("auth", "expected an object with a \"type\"")),
    };
    match req_str("auth", auth, "type")?.as_str() {
        "none" => Ok(Auth::None),
        "api_key" => {
            let key = req_str("auth", auth, "key")?;
            let value = req_str("auth", auth, "value")?;
            let place = match opt_str("auth.in", auth.get("in"))? {
                None | Some("header") => ApiKeyIn::Header,
                Some("query") => ApiKeyIn::Query,
                Some(_) => return Err(Error::field("auth.in", r#"expected "header" or "query""#)),
            };
            if place == ApiKeyIn::Header && !is_header_name(&key) {
                return Err(Error::field("auth.key", "not a valid header name"));
            }
            if place == ApiKeyIn::Header && has_line_break(&value) {
                return Err(Error::field("auth.value", "contains a line break"));
            }
            Ok(Auth::ApiKey { key, value, place })
        }
        "basic" => Ok(Auth::Basic {
            username: req_str("auth", auth, "username")?,
            password: req_str("auth", auth, "password")?,
        }),
        "bearer" => {
            let token = req_str("auth", auth, "token")?;
            if has_line_break(&token) {
                return Err(Error::field("auth.token", "contains a line break"));
            }
            Ok(Auth::Bearer { token })
        }
        _ => Err(Error::field(
            "auth.type",
            r#"expected "none", "api_key", "basic" or "bearer""#,
        )),
    }
}

/// Parses the body list, and builds it once with `null` values so that key
/// conflicts (`a` and `a.b`) are reported when the config is saved.
fn parse_body(value: Option<&Value>) -> Result<Option<Vec<(Key, Source)>>, Error> {
    if matches!(value, None | Some(Value::Null)) {
        return Ok(None);
    }
    let fields = parse_fields("body", value)?;
    let mut body = Vec::with_capacity(fields.len());
    let mut trial = Value::Object(Default::default());
    for (i, field) in fields.into_iter().enumerate() {
        let at = format!("body[{i}].key");
        let key = Key::parse(&field.key).map_err(|e| e.in_field(&at))?;
        nest::insert(&mut trial, &key, Value::Null).map_err(|e| e.in_field(&at))?;
        body.push((key, field.source));
    }
    Ok(Some(body))
}

fn parse_channels(value: Option<&Value>) -> Result<Vec<String>, Error> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(Error::field("channels", "expected a list of strings")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            _ => Err(Error::field(
                format!("channels[{i}]"),
                "expected a non-empty string",
            )),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(config: Value) -> String {
        Config::parse(&config).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        assert_eq!(Config::parse(&Value::Null).unwrap(), Config::default());
        assert_eq!(Config::parse(&json!({})).unwrap(), Config::default());
    }

    #[test]
    fn full_config_parses() {
        let config = Config::parse(&json!({
            "alias": "CRM",
            "method": "put",
            "url": "https://crm.example/hook",
            "params": [{"key": "src", "value": "gw"}, {"key": "c", "value": "payload.recipient.from", "type": "variable"}],
            "auth": {"type": "api_key", "key": "X-Api-Key", "value": "k", "in": "header"},
            "headers": [{"key": "X-Env", "value": "prod", "type": "text"}],
            "body": [{"key": "user.name", "value": "chat.contact", "type": "variable"}, {"key": "tags[]", "value": "a"}],
            "channels": ["whatsapp"]
        }))
        .unwrap();
        assert_eq!(config.method.as_deref(), Some("PUT"));
        assert_eq!(
            config.params[1].source,
            Source::Variable("payload.recipient.from".into())
        );
        assert_eq!(config.body.as_ref().map(Vec::len), Some(2));
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(err(json!("x")), "config: expected an object");
        assert_eq!(
            err(json!({"method": "PATCH"})),
            "method: expected one of POST, GET, PUT, DELETE"
        );
        assert_eq!(
            err(json!({"url": "ftp://x"})),
            "url: expected an absolute http:// or https:// url"
        );
        assert_eq!(
            err(json!({"url": "https:///x"})),
            "url: expected an absolute http:// or https:// url"
        );
        assert_eq!(err(json!({"alias": 1})), "alias: expected a string");
        assert_eq!(
            err(json!({"params": {}})),
            r#"params: expected a list of {"key", "value", "type"}"#
        );
        assert_eq!(
            err(json!({"params": [{"value": "v"}]})),
            "params[0].key: required"
        );
        assert_eq!(
            err(json!({"params": [{"key": " "}]})),
            "params[0].key: must not be empty"
        );
        assert_eq!(
            err(json!({"params": [{"key": "k", "value": "v", "type": "var"}]})),
            r#"params[0].type: expected "text" or "variable""#
        );
        assert!(
            err(json!({"params": [{"key": "k", "value": "payloads.x", "type": "variable"}]}))
                .starts_with("params[0].value: unknown variable `payloads.x`")
        );
        assert!(
            err(json!({"body": [{"key": "k", "value": "chat.nope", "type": "variable"}]}))
                .starts_with("body[0].value: unknown variable `chat.nope`")
        );
        assert_eq!(
            err(json!({"headers": [{"key": "X A", "value": "v"}]})),
            "headers[0].key: not a valid header name"
        );
        assert_eq!(
            err(json!({"headers": [{"key": "X-A", "value": "v\nw"}]})),
            "headers[0].value: contains a line break"
        );
        assert_eq!(
            err(json!({"auth": {"type": "oauth"}})),
            r#"auth.type: expected "none", "api_key", "basic" or "bearer""#
        );
        assert_eq!(
            err(json!({"auth": {"type": "bearer"}})),
            "auth.token: required"
        );
        assert_eq!(
            err(json!({"auth": {"type": "basic", "username": "u"}})),
            "auth.password: required"
        );
        assert_eq!(
            err(json!({"auth": {"type": "api_key", "key": "k", "value": "v", "in": "cookie"}})),
            r#"auth.in: expected "header" or "query""#
        );
        assert_eq!(
            err(json!({"channels": "whatsapp"})),
            "channels: expected a list of strings"
        );
        assert_eq!(
            err(json!({"channels": [""]})),
            "channels[0]: expected a non-empty string"
        );
        assert_eq!(
            err(json!({"body": [{"key": "a", "value": "1"}, {"key": "a.b", "value": "2"}]})),
            "body[1].key: `a` is already set to a value, it cannot also have fields"
        );
        assert_eq!(
            err(json!({"body": [{"key": "a[].b", "value": "1"}]})),
            "body[0].key: `[]` is only allowed at the end of a key"
        );
        assert!(err(json!({"secret": 1})).starts_with("secret: unknown field"));
    }
}
