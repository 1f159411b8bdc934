//! `@{{path}}` templates: parsing, and rendering into a url, a header value,
//! text or JSON.
//!
//! A template is parsed once into literal text and variables; every variable
//! path is checked with [`Event::check_path`], so a config with a typo is
//! rejected when the endpoint is saved rather than at delivery time.

use std::borrow::Cow;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use plugin_sdk::{value_to_text, Error, Event, Lookup, Value};

use crate::config::OnMissing;

/// Opening and closing marks of a variable.
const OPEN: &str = "@{{";
const CLOSE: &str = "}}";

/// Bytes escaped in a substituted path segment: everything but RFC 3986
/// `pchar` (unreserved, sub-delims, `:` and `@`), so a value can never add a
/// `/`, `?` or `#`.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Bytes escaped in a substituted query value (or fragment): as for a path
/// segment, but `/` and `?` may stay while `&`, `=`, `+` and `;` must go, so
/// a value can never start another parameter or be read as a space.
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Literal text, copied as it is.
    Text(String),
    /// A variable: a path for [`Event::lookup`].
    Var(String),
}

/// A parsed `@{{path}}` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Why rendering stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// A variable was missing and `on_missing` is `drop`: drop the event.
    Drop(String),
    /// The delivery fails with this error.
    Fail(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Self::Fail(error)
    }
}

/// Where a variable sits in a url, which decides how its value is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UrlPart {
    /// Scheme or host: variables are refused there.
    Authority,
    Path,
    Query,
}

impl Template {
    /// Parses `text`; errors say what is wrong (the caller adds the field).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = find_mark(rest, OPEN) {
            if start > 0 {
                pieces.push(Piece::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + OPEN.len()..];
            let end = find_mark(after, CLOSE)
                .ok_or_else(|| Error::new(format!("unclosed `{OPEN}` (expected `{CLOSE}`)")))?;
            let path = after[..end].trim();
            Event::check_path(path)?;
            pieces.push(Piece::Var(path.to_owned()));
            rest = &after[end + CLOSE.len()..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { pieces })
    }

    /// The variable path when the template is exactly one variable and
    /// nothing else (`"@{{payload.total}}"`).
    pub fn single_var(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [Piece::Var(path)] => Some(path),
            _ => None,
        }
    }

    /// Whether the template has no variables at all.
    pub fn is_literal(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Text(_)))
    }

    /// Checks a url template: variables only in the path, query or fragment.
    pub fn check_url(&self) -> Result<(), Error> {
        let mut literal = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => literal.push_str(text),
                Piece::Var(path) if url_part(&literal) == UrlPart::Authority => {
                    return Err(Error::new(format!(
                        "variable `{path}` is in the scheme or host; variables are allowed only in the path, query or fragment"
                    )));
                }
                Piece::Var(_) => {}
            }
        }
        Ok(())
    }

    /// Renders as a url: each value is percent-encoded for where it sits.
    pub fn render_url(&self, vars: &Vars<'_>) -> Result<String, Stop> {
        let mut out = String::new();
        let mut literal = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => {
                    out.push_str(text);
                    literal.push_str(text);
                }
                Piece::Var(path) => {
                    let set = match url_part(&literal) {
                        UrlPart::Authority => {
                            return Err(Stop::Fail(Error::new(format!(
                                "variable `{path}` is in the scheme or host"
                            ))))
                        }
                        UrlPart::Path => PATH_SEGMENT,
                        UrlPart::Query => QUERY_VALUE,
                    };
                    let value = vars.text(path)?;
                    out.extend(utf8_percent_encode(&value, set));
                }
            }
        }
        Ok(out)
    }

    /// Renders as plain text (values as text, `null` as empty).
    pub fn render_text(&self, vars: &Vars<'_>) -> Result<String, Stop> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Var(path) => out.push_str(&vars.text(path)?),
            }
        }
        Ok(out)
    }

    /// Renders as a JSON value: a template that is exactly one variable takes
    /// the variable's JSON value; anything else is interpolated text.
    pub fn render_json(&self, vars: &Vars<'_>) -> Result<Value, Stop> {
        match self.single_var() {
            Some(path) => Ok(vars
                .value(path)?
                .map_or_else(|| Value::String(String::new()), Cow::into_owned)),
            None => self.render_text(vars).map(Value::String),
        }
    }

    /// Writes what [`Template::render_json`] gives as JSON text to `out`, without
    /// building the value: a variable's value is copied from the payload's text when
    /// the event keeps it as text (the sender's spelling, see `write_json_text`), else
    /// serialized from the event where it is.
    pub fn write_json(&self, vars: &Vars<'_>, out: &mut Vec<u8>) -> Result<(), Stop> {
        match self.single_var() {
            Some(path) if vars.write_json_text(path, out) => {}
            Some(path) => match vars.value(path)? {
                Some(value) => write_json_value(out, &value),
                None => write_json_str(out, ""),
            },
            None => write_json_str(out, &self.render_text(vars)?),
        }
        Ok(())
    }
}

/// Appends `value` as compact JSON (what `serde_json::to_vec` gives).
pub fn write_json_value(out: &mut Vec<u8>, value: &Value) {
    // Cannot fail: a `Value`'s keys are strings, and a `Vec` takes every byte.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Appends JSON text without the whitespace between its tokens; strings are
/// copied as they are, escapes included. `text` must be valid JSON (a closed
/// string is what ends a string here).
pub(crate) fn write_json_compact(out: &mut Vec<u8>, text: &str) {
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        let stop = rest
            .iter()
            .position(|&b| matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'"'))
            .unwrap_or(rest.len());
        out.extend_from_slice(&rest[..stop]);
        rest = &rest[stop..];
        match rest.first() {
            Some(b'"') => {
                let end = string_end(rest);
                out.extend_from_slice(&rest[..end]);
                rest = &rest[end..];
            }
            Some(_) => rest = &rest[1..],
            None => {}
        }
    }
}

/// Where the JSON string at the start of `text` ends (just past its closing
/// quote), or the end of `text` if it is not closed.
fn string_end(text: &[u8]) -> usize {
    let mut at = 1;
    while let Some(&b) = text.get(at) {
        match b {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    text.len()
}

/// Appends `text` as a JSON string.
pub fn write_json_str(out: &mut Vec<u8>, text: &str) {
    // Cannot fail, as above.
    if serde_json::to_writer(&mut *out, text).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Where `mark` first starts in `text`: a search for its first byte, then a compare (a
/// config is parsed on every plugin call; `str::find` with a `&str` sets up a two-way
/// searcher each time, which cost more than the search).
fn find_mark(text: &str, mark: &str) -> Option<usize> {
    let first = mark.as_bytes()[0];
    let mut from = 0;
    while let Some(at) = text.as_bytes()[from..].iter().position(|&b| b == first) {
        let at = from + at;
        if text.as_bytes()[at..].starts_with(mark.as_bytes()) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Which part of a url the text after `literal` is in.
fn url_part(literal: &str) -> UrlPart {
    if literal.contains('?') || literal.contains('#') {
        return UrlPart::Query;
    }
    match literal.find("://") {
        Some(at) if literal[at + 3..].contains('/') => UrlPart::Path,
        _ => UrlPart::Authority,
    }
}

/// Variable values for one event, with the `on_missing` policy applied.
pub struct Vars<'a> {
    event: &'a dyn Lookup,
    on_missing: OnMissing,
}

impl<'a> Vars<'a> {
    /// Variables of `event` (parsed, or read lazily); a missing one is handled as
    /// `on_missing` says.
    pub fn new(event: &'a dyn Lookup, on_missing: OnMissing) -> Self {
        Self { event, on_missing }
    }

    /// The value at `path`, borrowed from the event where it can be; `None` when
    /// missing and the policy is `empty`.
    fn value(&self, path: &str) -> Result<Option<Cow<'a, Value>>, Stop> {
        match self.event.lookup_ref(path) {
            Some(value) => Ok(Some(value)),
            None => match self.on_missing {
                OnMissing::Empty => Ok(None),
                OnMissing::Drop => Err(Stop::Drop(format!("variable `{path}` is missing"))),
                OnMissing::Error => Err(Stop::Fail(Error::new(format!(
                    "variable `{path}` is missing"
                )))),
            },
        }
    }

    /// Writes the value at `path` copied from the event's text, when the event
    /// keeps it as text ([`Lookup::lookup_json_text`]: the payload and its
    /// top-level fields, read lazily): nothing is parsed or built. The copy drops
    /// the spacing between tokens and keeps the rest as the sender wrote it:
    /// number spellings (`1.50`, integers of any size), string escapes, repeated
    /// keys. False, with nothing written, when there is no text (the value path
    /// decides then).
    fn write_json_text(&self, path: &str, out: &mut Vec<u8>) -> bool {
        let Some(text) = self.event.lookup_json_text(path) else {
            return false;
        };
        write_json_compact(out, text);
        true
    }

    /// The value at `path` as text (empty when missing under `empty`); a string
    /// value is borrowed, not copied.
    fn text(&self, path: &str) -> Result<Cow<'a, str>, Stop> {
        Ok(match self.value(path)? {
            Some(Cow::Borrowed(Value::String(text))) => Cow::Borrowed(text),
            Some(Cow::Owned(Value::String(text))) => Cow::Owned(text),
            Some(value) => Cow::Owned(value_to_text(&value)),
            None => Cow::Borrowed(""),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> Event {
        Event::new(
            "t",
            json!({"name": "a b/c?d&e=f#g+h;i", "n": 7, "o": {"k": [1, 2]}, "z": null}),
        )
        .with_id("evt_1")
    }

    fn url(template: &str) -> String {
        let vars_event = event();
        let vars = Vars::new(&vars_event, OnMissing::Empty);
        Template::parse(template)
            .unwrap()
            .render_url(&vars)
            .unwrap()
    }

    /// Compacting the pretty text of a value gives its compact serialization: only
    /// the spacing between tokens goes, never a byte inside a string.
    #[test]
    fn compacting_pretty_json_gives_the_compact_text() {
        let values = [
            json!({"a": [1, 2.5, {"b": null}], "s": "sp aces\t\"q\" back\\", "e": {}, "z": []}),
            json!(["\\", "\\\"", " ", "\n", "é 😀", {"k y": "v\r\n"}]),
            json!("just a string with  spaces"),
            json!(-1.5e300),
            json!(null),
        ];
        for value in values {
            let mut out = Vec::new();
            write_json_compact(&mut out, &serde_json::to_string_pretty(&value).unwrap());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&value).unwrap()
            );
        }
        let mut out = Vec::new();
        write_json_compact(&mut out, " [ 1 ,\r\n\t\"a b\\\\\" , \"c\" ] ");
        assert_eq!(String::from_utf8(out).unwrap(), r#"[1,"a b\\","c"]"#);
    }

    #[test]
    fn marks_are_found_where_str_find_finds_them() {
        for text in [
            "", "@", "@{", "@{{", "a@{{b", "@@{{", "@{@{{x}}", "}}", "}x}}", "é@{{",
        ] {
            for mark in [OPEN, CLOSE] {
                assert_eq!(find_mark(text, mark), text.find(mark), "{text:?} {mark:?}");
            }
        }
    }

    #[test]
    fn parse_pieces_and_errors() {
        let t = Template::parse("a@{{ payload.x }}b@{{id}}").unwrap();
        assert_eq!(
            t.pieces,
            vec![
                Piece::Text("a".into()),
                Piece::Var("payload.x".into()),
                Piece::Text("b".into()),
                Piece::Var("id".into()),
            ]
        );
        assert_eq!(Template::parse("@{{id}}").unwrap().single_var(), Some("id"));
        assert!(Template::parse("no vars {{x}}").unwrap().is_literal());
        let err = Template::parse("x@{{id").unwrap_err();
        assert_eq!(err.to_string(), "unclosed `@{{` (expected `}}`)");
        assert!(Template::parse("@{{nope}}").is_err());
        assert!(Template::parse("@{{}}").is_err());
    }

    #[test]
    fn url_values_are_encoded_for_their_position() {
        assert_eq!(
            url("https://h.example/p/@{{payload.name}}?q=@{{payload.name}}#@{{payload.n}}"),
            "https://h.example/p/a%20b%2Fc%3Fd&e=f%23g+h;i?q=a%20b/c?d%26e%3Df%23g%2Bh%3Bi#7"
        );
        assert_eq!(
            url("https://h.example/@{{payload.z}}x"),
            "https://h.example/x"
        );
        assert_eq!(
            url("https://h.example/o?v=@{{payload.o}}"),
            "https://h.example/o?v=%7B%22k%22:%5B1,2%5D%7D"
        );
        assert_eq!(
            url("https://h.example/é@{{id}}"),
            "https://h.example/éevt_1"
        );
    }

    #[test]
    fn url_rejects_variables_in_scheme_or_host() {
        for bad in [
            "@{{id}}://h/",
            "https://@{{id}}/",
            "https://h@{{id}}",
            "https://h.example",
        ] {
            let t = Template::parse(&format!("{bad}@{{{{id}}}}")).unwrap();
            assert!(t.check_url().is_err(), "{bad}");
        }
        assert!(Template::parse("https://h/@{{id}}")
            .unwrap()
            .check_url()
            .is_ok());
        assert!(Template::parse("https://h?@{{id}}")
            .unwrap()
            .check_url()
            .is_ok());
    }

    #[test]
    fn json_single_variable_keeps_type() {
        let e = event();
        let vars = Vars::new(&e, OnMissing::Empty);
        let render = |t: &str| Template::parse(t).unwrap().render_json(&vars).unwrap();
        assert_eq!(render("@{{payload.n}}"), json!(7));
        assert_eq!(render(" @{{payload.n}}"), json!(" 7"));
        assert_eq!(render("@{{payload.o}}"), json!({"k": [1, 2]}));
        assert_eq!(render("@{{payload.z}}"), json!(null));
        assert_eq!(
            render("n=@{{payload.n}} o=@{{payload.o}}"),
            json!(r#"n=7 o={"k":[1,2]}"#)
        );
        assert_eq!(render("@{{payload.missing}}"), json!(""));
    }

    #[test]
    fn missing_policy() {
        let e = event();
        let t = Template::parse("x@{{payload.missing}}").unwrap();
        let drop = Vars::new(&e, OnMissing::Drop);
        assert_eq!(
            t.render_text(&drop),
            Err(Stop::Drop("variable `payload.missing` is missing".into()))
        );
        let error = Vars::new(&e, OnMissing::Error);
        assert_eq!(
            t.render_text(&error),
            Err(Stop::Fail(Error::new(
                "variable `payload.missing` is missing"
            )))
        );
    }
}
