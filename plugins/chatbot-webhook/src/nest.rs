//! Body keys in dot notation: `a.b` builds nested objects, a trailing `[]`
//! (`tags[]`, `a.list[]`) appends to an array.

use plugin_sdk::{Error, Value};

/// Most segments in a body key. The body is built, serialized and dropped by recursion on
/// the plugin's wasm stack (128 KiB), so its depth must stay bounded: 32 levels of keys
/// plus the deepest payload a variable can copy (126) is measured to fit, with room, by
/// the gateway's `builtins_run_on_the_deepest_payload_ingest_accepts` test.
pub const MAX_SEGMENTS: usize = 32;

/// A parsed body key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Object keys from the root to the field.
    segments: Vec<String>,
    /// Whether the last segment is an array to append to (`key[]`).
    append: bool,
}

impl Key {
    /// Parses `a.b.c` or `a.b[]`; empty segments and a `[]` anywhere but at
    /// the end are errors.
    pub fn parse(key: &str) -> Result<Self, Error> {
        let key = key.trim();
        let (path, append) = match key.strip_suffix("[]") {
            Some(path) => (path, true),
            None => (key, false),
        };
        if path.contains("[]") {
            return Err(Error::new("`[]` is only allowed at the end of a key"));
        }
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(Error::new(format!("`{key}` has an empty segment")));
        }
        if segments.len() > MAX_SEGMENTS {
            return Err(Error::new(format!(
                "`{key}` has {} segments; at most {MAX_SEGMENTS} are allowed",
                segments.len()
            )));
        }
        Ok(Self { segments, append })
    }
}

/// Puts `value` at `key` inside `root` (an object), creating objects and
/// arrays on the way. Setting a key twice, or giving fields to a key that
/// holds a value, is an error naming the key.
pub fn insert(root: &mut Value, key: &Key, value: Value) -> Result<(), Error> {
    let Some((last, parents)) = key.segments.split_last() else {
        return Err(Error::new("empty key"));
    };
    let mut current = root;
    let mut walked = String::new();
    for segment in parents {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(segment);
        let Value::Object(map) = current else {
            return Err(conflict(&walked));
        };
        current = map
            .entry(segment.clone())
            .or_insert_with(|| Value::Object(Default::default()));
        if !current.is_object() {
            return Err(conflict(&walked));
        }
    }
    let Value::Object(map) = current else {
        return Err(conflict(&walked));
    };
    let full = key.segments.join(".");
    if key.append {
        match map
            .entry(last.clone())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => items.push(value),
            _ => {
                return Err(Error::new(format!(
                    "`{full}` is already set and is not a list"
                )))
            }
        }
    } else if map.contains_key(last) {
        return Err(Error::new(format!("`{full}` is set twice")));
    } else {
        map.insert(last.clone(), value);
    }
    Ok(())
}

fn conflict(key: &str) -> Error {
    Error::new(format!(
        "`{key}` is already set to a value, it cannot also have fields"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn build(entries: &[(&str, Value)]) -> Result<Value, Error> {
        let mut root = json!({});
        for (key, value) in entries {
            insert(&mut root, &Key::parse(key)?, value.clone())?;
        }
        Ok(root)
    }

    #[test]
    fn dots_nest_and_brackets_append() {
        let body = build(&[
            ("chatId", json!("c1")),
            ("multimedia.url", json!("u")),
            ("multimedia.caption", json!("c")),
            ("tags[]", json!("a")),
            ("tags[]", json!("b")),
            ("user.phones[]", json!(1)),
            ("a.b.c", json!(null)),
        ])
        .unwrap();
        assert_eq!(
            body.to_string(),
            r#"{"chatId":"c1","multimedia":{"url":"u","caption":"c"},"tags":["a","b"],"user":{"phones":[1]},"a":{"b":{"c":null}}}"#
        );
    }

    #[test]
    fn conflicts_are_errors() {
        let err = |entries: &[(&str, Value)]| build(entries).unwrap_err().to_string();
        assert_eq!(err(&[("a", json!(1)), ("a", json!(2))]), "`a` is set twice");
        assert_eq!(
            err(&[("a", json!(1)), ("a.b", json!(2))]),
            "`a` is already set to a value, it cannot also have fields"
        );
        assert_eq!(
            err(&[("a.b", json!(1)), ("a[]", json!(2))]),
            "`a` is already set and is not a list"
        );
        assert_eq!(
            err(&[("a[]", json!(1)), ("a.b", json!(2))]),
            "`a` is already set to a value, it cannot also have fields"
        );
        assert_eq!(err(&[("a..b", json!(1))]), "`a..b` has an empty segment");
        assert_eq!(err(&[("[]", json!(1))]), "`[]` has an empty segment");
    }

    #[test]
    fn keys_are_at_most_32_segments_deep() {
        let deepest = vec!["k"; MAX_SEGMENTS].join(".");
        assert!(build(&[(&format!("{deepest}[]"), json!(1))]).is_ok());
        let too_deep = format!("{deepest}.k");
        assert_eq!(
            build(&[(&too_deep, json!(1))]).unwrap_err().to_string(),
            format!("`{too_deep}` has 33 segments; at most 32 are allowed")
        );
    }
}
