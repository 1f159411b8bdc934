//! The plugin's config: parsed and checked in one place, so that
//! `validate-config` and `transform` agree and every error names its field.

use plugin_sdk::{has_line_break, is_header_name};
use plugin_sdk::{Error, Value};

use crate::template::Template;

/// HTTP methods the plugin may send.
const METHODS: &[&str] = &["GET", "POST", "PUT"];

/// What to do when a variable is not in the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnMissing {
    /// Substitute the empty string (the default).
    #[default]
    Empty,
    /// Drop the event, with the variable named in the reason.
    Drop,
    /// Fail the delivery.
    Error,
}

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyFormat {
    /// `application/json` (the default).
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

/// A body template: the config's `body` object with every string parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyTemplate {
    /// A string template.
    Text(Template),
    /// An array of templates.
    Array(Vec<BodyTemplate>),
    /// An object; keys are literal.
    Object(Vec<(String, BodyTemplate)>),
    /// A number, boolean or `null`, copied as it is.
    Literal(Value),
}

/// The checked config.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// Url template; `None`: the request's url.
    pub url: Option<Template>,
    /// `GET`, `POST` or `PUT`; `None`: the request's method.
    pub method: Option<String>,
    /// Header names and value templates, in config order.
    pub headers: Vec<(String, Template)>,
    /// Body encoding.
    pub body_format: BodyFormat,
    /// Body template (always an object); `None`: keep the request's body.
    pub body: Option<BodyTemplate>,
    /// Missing-variable policy.
    pub on_missing: OnMissing,
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
        Ok(Self {
            url: parse_url(fields.get("url"))?,
            method: parse_method(fields.get("method"))?,
            headers: parse_headers(fields.get("headers"))?,
            body_format: parse_body_format(fields.get("body_format"))?,
            body: parse_body(fields.get("body"))?,
            on_missing: parse_on_missing(fields.get("on_missing"))?,
        })
    }
}

/// Where a value sits in the config (`body.items.0`, `headers.X-Id`), for
/// error messages. Rendered only when an error is made: building the string
/// for every field on the success path was a measurable part of a plugin call.
#[derive(Debug, Clone, Copy)]
pub enum FieldPath<'a> {
    /// A top-level field.
    Root(&'a str),
    /// An object key below `parent`.
    Key(&'a FieldPath<'a>, &'a str),
    /// An array index below `parent`.
    Index(&'a FieldPath<'a>, usize),
}

impl std::fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Root(name) => f.write_str(name),
            Self::Key(parent, key) => write!(f, "{parent}.{key}"),
            Self::Index(parent, i) => write!(f, "{parent}.{i}"),
        }
    }
}

/// Every field the config may have.
const KNOWN: &[&str] = &[
    "url",
    "method",
    "headers",
    "body_format",
    "body",
    "on_missing",
];

/// An optional string field; `null` counts as absent.
fn opt_str<'a>(field: &str, value: Option<&'a Value>) -> Result<Option<&'a str>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Error::field(field, "expected a string")),
    }
}

/// One of [`Config::parse`]'s checks (also used by `config_text`).
pub(crate) fn parse_url(value: Option<&Value>) -> Result<Option<Template>, Error> {
    let Some(text) = opt_str("url", value)? else {
        return Ok(None);
    };
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(Error::field("url", "expected an http:// or https:// url"));
    }
    let template = Template::parse(text).map_err(|e| e.in_field("url"))?;
    template.check_url().map_err(|e| e.in_field("url"))?;
    Ok(Some(template))
}

/// One of [`Config::parse`]'s checks (also used by `config_text`).
pub(crate) fn parse_method(value: Option<&Value>) -> Result<Option<String>, Error> {
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

/// One of [`Config::parse`]'s checks (also used by `config_text`).
pub(crate) fn parse_headers(value: Option<&Value>) -> Result<Vec<(String, Template)>, Error> {
    let fields = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err(Error::field("headers", "expected an object of name: value")),
    };
    fields
        .iter()
        .map(|(name, value)| {
            let field = FieldPath::Key(&FieldPath::Root("headers"), name);
            if !is_header_name(name) {
                return Err(Error::field(field, "not a valid header name"));
            }
            let Value::String(text) = value else {
                return Err(Error::field(field, "expected a string"));
            };
            if has_line_break(text) {
                return Err(Error::field(field, "value contains a line break"));
            }
            let template = Template::parse(text).map_err(|e| e.in_field(field))?;
            Ok((name.clone(), template))
        })
        .collect()
}

/// One of [`Config::parse`]'s checks (also used by `config_text`).
pub(crate) fn parse_body_format(value: Option<&Value>) -> Result<BodyFormat, Error> {
    match opt_str("body_format", value)? {
        None | Some("json") => Ok(BodyFormat::Json),
        Some("form") => Ok(BodyFormat::Form),
        Some(_) => Err(Error::field("body_format", r#"expected "json" or "form""#)),
    }
}

/// One of [`Config::parse`]'s checks (also used by `config_text`).
pub(crate) fn parse_on_missing(value: Option<&Value>) -> Result<OnMissing, Error> {
    match opt_str("on_missing", value)? {
        None | Some("empty") => Ok(OnMissing::Empty),
        Some("drop") => Ok(OnMissing::Drop),
        Some("error") => Ok(OnMissing::Error),
        Some(_) => Err(Error::field(
            "on_missing",
            r#"expected "empty", "drop" or "error""#,
        )),
    }
}

fn parse_body(value: Option<&Value>) -> Result<Option<BodyTemplate>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(body @ Value::Object(_)) => body_template(FieldPath::Root("body"), body).map(Some),
        Some(_) => Err(Error::field("body", "expected an object")),
    }
}

/// Parses every string in a body template; `field` is the path so far
/// (`body.items.0`), used in errors.
fn body_template(field: FieldPath<'_>, value: &Value) -> Result<BodyTemplate, Error> {
    Ok(match value {
        Value::String(text) => {
            BodyTemplate::Text(Template::parse(text).map_err(|e| e.in_field(field))?)
        }
        Value::Array(items) => BodyTemplate::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| body_template(FieldPath::Index(&field, i), item))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => BodyTemplate::Object(
            fields
                .iter()
                .map(|(key, item)| {
                    Ok((
                        key.clone(),
                        body_template(FieldPath::Key(&field, key), item)?,
                    ))
                })
                .collect::<Result<_, Error>>()?,
        ),
        other => BodyTemplate::Literal(other.clone()),
    })
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
    fn errors_name_the_field() {
        assert_eq!(err(json!([])), "config: expected an object");
        assert_eq!(
            err(json!({"body_format": "xml"})),
            r#"body_format: expected "json" or "form""#
        );
        assert_eq!(
            err(json!({"method": "PATCH"})),
            "method: expected one of GET, POST, PUT"
        );
        assert_eq!(
            err(json!({"on_missing": "skip"})),
            r#"on_missing: expected "empty", "drop" or "error""#
        );
        assert_eq!(err(json!({"url": 3})), "url: expected a string");
        assert_eq!(
            err(json!({"url": "ftp://x/"})),
            "url: expected an http:// or https:// url"
        );
        assert!(err(json!({"url": "https://@{{payload.host}}/x"})).starts_with("url: variable"));
        assert_eq!(
            err(json!({"url": "https://h/@{{payload.x"})),
            "url: unclosed `@{{` (expected `}}`)"
        );
        assert_eq!(
            err(json!({"headers": {"X-A": 1}})),
            "headers.X-A: expected a string"
        );
        assert_eq!(
            err(json!({"headers": {"bad name": "v"}})),
            "headers.bad name: not a valid header name"
        );
        assert_eq!(
            err(json!({"headers": {"X-A": "a\r\nB: c"}})),
            "headers.X-A: value contains a line break"
        );
        assert_eq!(err(json!({"body": "x"})), "body: expected an object");
        assert!(err(json!({"body": {"a": [{"b": "@{{nope.x}}"}]}}))
            .starts_with("body.a.0.b: unknown variable `nope.x`"));
        assert!(err(json!({"bodyformat": "json"})).starts_with("bodyformat: unknown field"));
    }

    #[test]
    fn method_is_case_insensitive() {
        let config = Config::parse(&json!({"method": "put"})).unwrap();
        assert_eq!(config.method.as_deref(), Some("PUT"));
    }
}
