//! A JSON body extractor with the gateway's error contract: syntax errors
//! (and nesting deeper than serde_json's limit of 128) are 400 `malformed_json`,
//! a wrong shape is 422 naming the field, an oversized body is 413.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::body;
use super::error::ApiError;

/// A JSON request body of type `T`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body::read_limited(req).await?;
        parse(&bytes).map(ApiJson)
    }
}

/// An optional JSON request body of type `T`: an empty body is `T::default()`.
pub struct ApiJsonOrDefault<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for ApiJsonOrDefault<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body::read_limited(req).await?;
        parse_or_default(&bytes).map(ApiJsonOrDefault)
    }
}

/// [`parse`] for an optional body: an empty one is `T::default()`.
pub fn parse_or_default<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        Ok(T::default())
    } else {
        parse(bytes)
    }
}

/// Parses JSON text into `T` with the error contract above. `T` is read straight from the
/// text, with no intermediate `serde_json::Value` (an event payload kept as raw text is
/// never parsed into a tree); only when that fails on the shape is the text checked for
/// syntax as well, so a body that is both malformed and of the wrong shape is a 400.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let malformed =
        |e: &dyn std::fmt::Display| ApiError::MalformedJson(format!("body is not valid JSON: {e}"));
    // Raw parts (an event payload) are not parsed into a tree here, so serde_json's own
    // depth limit would not see them; whoever parses them later (the event API, plugins)
    // would. The whole body keeps the limit a tree parse has.
    if nesting_depth(bytes) >= MAX_DEPTH {
        return Err(malformed(&format!(
            "nested {MAX_DEPTH} levels deep or more"
        )));
    }
    let mut text = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut text) {
        Ok(value) => {
            text.end().map_err(|e| malformed(&e))?;
            Ok(value)
        }
        Err(e) if e.inner().classify() != serde_json::error::Category::Data => {
            Err(malformed(e.inner()))
        }
        Err(e) => {
            if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                return Err(malformed(&syntax));
            }
            let path = e.path().to_string();
            let field = if path == "." {
                "body".to_string()
            } else {
                path
            };
            Err(ApiError::invalid(field, e.into_inner().to_string()))
        }
    }
}

/// A body nested this deep is refused, as serde_json refuses to parse it into a tree
/// (its recursion limit): at most `MAX_DEPTH - 1` levels are accepted.
pub const MAX_DEPTH: usize = 128;

/// How deeply arrays and objects nest in `json` (valid JSON text; brackets inside strings
/// do not count).
fn nesting_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut at = 0;
    while let Some(&byte) = json.get(at) {
        at += 1;
        match byte {
            // A string's contents are skipped with a vectorized search for its end (an
            // event's payload is mostly strings): the next quote not escaped.
            b'"' => loop {
                match memchr::memchr2(b'"', b'\\', &json[at.min(json.len())..]) {
                    Some(i) if json[at + i] == b'\\' => at += i + 2,
                    Some(i) => {
                        at += i + 1;
                        break;
                    }
                    None => return deepest,
                }
            },
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::endpoint::EndpointCreate;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    struct Named {
        #[serde(default)]
        name: String,
    }

    /// An optional body: none at all, an empty one with `Content-Length: 0`, or one given.
    #[tokio::test]
    async fn an_empty_optional_body_is_the_default() {
        let request = |body: &'static str, length: Option<&str>| {
            let mut builder = axum::http::Request::builder().method("POST").uri("/x");
            if let Some(n) = length {
                builder = builder.header("content-length", n);
            }
            builder.body(axum::body::Body::from(body)).unwrap()
        };
        for (body, length, want) in [
            ("", None, Named::default()),
            ("", Some("0"), Named::default()),
            (r#"{"name":"n"}"#, Some("12"), Named { name: "n".into() }),
        ] {
            let ApiJsonOrDefault(got) =
                ApiJsonOrDefault::<Named>::from_request(request(body, length), &())
                    .await
                    .unwrap();
            assert_eq!(got, want, "{body:?} {length:?}");
        }
        let wrong = ApiJsonOrDefault::<Named>::from_request(request("{", None), &()).await;
        assert!(matches!(wrong, Err(ApiError::MalformedJson(_))));
    }

    #[test]
    fn strings_with_escapes_and_unclosed_ends_are_skipped_whole() {
        assert_eq!(nesting_depth(br#"["\\", ["\"[[", []]]"#), 3);
        assert_eq!(
            nesting_depth(br#"[["a\\\"[[[", "\\\\"], {"k": "\u005b"}]"#),
            2
        );
        // not valid JSON, but never a panic or a read past the end
        for text in [
            &br#"[""#[..],
            br#"["\"#,
            br#"["a\"#,
            br#"[["\\"#,
            b"\"",
            b"\"\\",
        ] {
            assert!(nesting_depth(text) <= 2, "{text:?}");
        }
    }

    /// The byte-at-a-time count `nesting_depth` replaced, kept as the reference.
    fn reference_depth(json: &[u8]) -> usize {
        let (mut depth, mut deepest) = (0usize, 0usize);
        let (mut in_string, mut escaped) = (false, false);
        for &byte in json {
            if in_string {
                match (escaped, byte) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        deepest
    }

    #[test]
    fn nesting_depth_agrees_with_the_byte_at_a_time_count() {
        // 20,000 texts of up to 40 bytes from the bytes that matter, from a fixed seed.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) as usize
        };
        for _ in 0..20_000 {
            let len = next() % 41;
            let text: Vec<u8> = (0..len).map(|_| b"[]{}\"\\a"[next() % 7]).collect();
            assert_eq!(nesting_depth(&text), reference_depth(&text), "{text:?}");
        }
    }

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        assert_eq!(
            nesting_depth(br#"{"a": [1, {"b": "[[[{{"}], "c": "\\"}"#),
            3
        );
        assert_eq!(nesting_depth(b"1"), 0);
        let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse::<serde_json::Value>(at_limit.as_bytes()).is_err());
        let under = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse::<serde_json::Value>(under.as_bytes()).is_ok());
        type Raw = std::collections::HashMap<String, Box<serde_json::value::RawValue>>;
        let raw =
            |levels: usize| format!(r#"{{"p": {}1{}}}"#, "[".repeat(levels), "]".repeat(levels));
        // a raw part is held to the same limit as a tree: 1 + 127 levels is one too many
        assert!(matches!(
            parse::<Raw>(raw(MAX_DEPTH - 1).as_bytes()),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(parse::<Raw>(raw(MAX_DEPTH - 2).as_bytes()).is_ok());
        let raw_payload = raw(200);
        assert!(matches!(
            parse::<std::collections::HashMap<String, Box<serde_json::value::RawValue>>>(
                raw_payload.as_bytes()
            ),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn a_body_both_malformed_and_misshapen_is_malformed() {
        // the shape error comes first in the text, the syntax error after it
        assert!(matches!(
            parse::<EndpointCreate>(br#"{"url": 5, "#),
            Err(ApiError::MalformedJson(_))
        ));
        assert!(matches!(
            parse::<EndpointCreate>(br#"{"url": "https://x.io"} trailing"#),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn syntax_errors_are_malformed() {
        assert!(matches!(
            parse::<EndpointCreate>(b"{nope"),
            Err(ApiError::MalformedJson(_))
        ));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            parse::<serde_json::Value>(deep.as_bytes()),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn shape_errors_name_the_field() {
        match parse::<EndpointCreate>(br#"{"url":"https://x.io","method":"BREW"}"#) {
            Err(ApiError::Invalid(e)) => assert_eq!(e.field, "method"),
            other => panic!("unexpected {:?}", other.err()),
        }
        match parse::<EndpointCreate>(br#"{"description":"no url"}"#) {
            Err(ApiError::Invalid(e)) => assert!(e.message.contains("url"), "{e}"),
            other => panic!("unexpected {:?}", other.err()),
        }
    }
}
