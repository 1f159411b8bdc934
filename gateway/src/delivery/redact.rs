//! Keeping secrets out of API responses and delivery logs (pure).
//!
//! Secrets are endpoint signing secrets and secret-looking plugin config values:
//! anything under an `auth` object (but its type, placement, header name and
//! username), and any value whose key names a password, token, secret or API key.
//! Stored requests have every occurrence of a secret replaced, and sensitive
//! headers masked outright.

use std::borrow::Cow;

use memchr::memmem::Finder;
use serde_json::Value;

use crate::model::log::SentRequest;

use super::client::Outgoing;

/// What replaces a secret.
pub const MASK: &str = "********";
/// Stored request bodies are cut to this many bytes.
pub const MAX_STORED_BODY: usize = 64 * 1024;

/// Keys under `auth` that name things rather than hold secrets.
const AUTH_PUBLIC_KEYS: &[&str] = &[
    "type",
    "in",
    "key",
    "name",
    "header",
    "username",
    "placement",
    "param",
];

/// Words that make a key (or header name) secret, compared in lower case with `-` and `_`
/// left out.
const SECRET_WORDS: &[&[u8]] = &[
    b"password",
    b"secret",
    b"token",
    b"apikey",
    b"credential",
    b"privatekey",
];

/// Whether `key` names a secret. Runs for every header of every delivery, so it normalizes
/// into a stack buffer instead of allocating (longer keys take the allocating path).
fn is_secret_key(key: &str) -> bool {
    let normalized = key
        .bytes()
        .filter(|b| *b != b'-' && *b != b'_')
        .map(|b| b.to_ascii_lowercase());
    let mut buf = [0u8; 128];
    let mut len = 0;
    for b in normalized.clone() {
        if len == buf.len() {
            return contains_secret_word(&normalized.collect::<Vec<u8>>());
        }
        buf[len] = b;
        len += 1;
    }
    contains_secret_word(&buf[..len])
}

fn contains_secret_word(key: &[u8]) -> bool {
    SECRET_WORDS
        .iter()
        .any(|word| key.windows(word.len()).any(|w| w == *word))
}

/// Headers whose values are masked whatever they contain.
pub fn is_sensitive_header(name: &str) -> bool {
    [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
        || is_secret_key(name)
        || name
            .len()
            .checked_sub(4)
            .is_some_and(|start| name.as_bytes()[start..].eq_ignore_ascii_case(b"-key"))
}

/// Every secret string in a plugin config.
pub fn config_secrets(config: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(config, false, &mut |value| found.push(value.to_string()));
    found.retain(|s| s.len() >= 4);
    found
}

/// A copy of a plugin config with its secrets masked, for API responses.
pub fn mask_config(config: &Value) -> Value {
    let mut copy = config.clone();
    mask_in_place(&mut copy, false);
    copy
}

/// Whether the value under `key` is secret, given whether its parent is: everything under
/// `auth` but names and placements, and anything whose key names a secret.
fn child_is_secret(key: &str, parent_secret: bool) -> bool {
    if key.eq_ignore_ascii_case("auth") {
        true
    } else if parent_secret {
        !AUTH_PUBLIC_KEYS.contains(&key.to_ascii_lowercase().as_str())
    } else {
        is_secret_key(key)
    }
}

fn walk(value: &Value, secret: bool, found: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) if secret => found(s),
        Value::Object(map) => {
            for (key, child) in map {
                let child_secret = child_is_secret(key, secret);
                walk(child, child_secret, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| walk(i, secret, found)),
        _ => {}
    }
}

fn mask_in_place(value: &mut Value, secret: bool) {
    match value {
        Value::String(s) if secret && !s.is_empty() => *s = MASK.to_string(),
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let child_secret = child_is_secret(key, secret);
                mask_in_place(child, child_secret);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| mask_in_place(i, secret)),
        _ => {}
    }
}

/// Puts `old`'s values back wherever `new` holds the mask at the same place, so a client
/// that sends back what the API showed it does not overwrite secrets with the mask.
pub fn unmask(new: &mut Value, old: &Value) {
    match (new, old) {
        (Value::String(s), Value::String(original)) if s == MASK => *s = original.clone(),
        (Value::Object(map), Value::Object(old_map)) => {
            for (key, child) in map.iter_mut() {
                if let Some(old_child) = old_map.get(key) {
                    unmask(child, old_child);
                }
            }
        }
        (Value::Array(items), Value::Array(old_items)) => {
            for (child, old_child) in items.iter_mut().zip(old_items) {
                unmask(child, old_child);
            }
        }
        _ => {}
    }
}

/// The secrets to mask in one delivery's record, each also as it appears percent-encoded
/// in a query string and escaped in a JSON string, longest first (a secret that contains another is masked whole).
/// Built once per attempt: every header, the url, the body and the answer are scrubbed
/// against it.
///
/// Each pattern is held as a prepared `memchr::memmem` searcher: `str::contains` and
/// `str::replace` run the Two-Way search for a needle this long, which took from a few
/// thousand to 55k instructions per delivery, depending on the secret's bytes, to scrub a
/// 1 KB request against one signing secret (up to a fifth of the gateway's work on a
/// delivery). Its `Debug` shows how many patterns it holds, never them.
#[derive(Clone, Default)]
pub struct Secrets(Vec<Finder<'static>>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("patterns", &self.0.len())
            .finish()
    }
}

impl Secrets {
    /// The masking patterns of `secrets` (empty strings are ignored).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        Self(
            patterns(secrets)
                .iter()
                .map(|p| Finder::new(p.as_bytes()).into_owned())
                .collect(),
        )
    }

    /// A cut of `bytes` at or before `cut` that no secret straddles and that falls on a
    /// character boundary: moved back to the start of any occurrence that crosses it,
    /// also of one only partly in `bytes` (its visible part is a prefix of the secret:
    /// `bytes` may be the start of something longer), until none does.
    fn safe_cut(&self, bytes: &[u8], mut cut: usize) -> usize {
        loop {
            while cut > 0 && cut < bytes.len() && (bytes[cut] as i8) < -0x40 {
                cut -= 1; // a UTF-8 continuation byte: back to its character's start
            }
            let before = cut;
            for finder in &self.0 {
                let needle = finder.needle();
                let crossing = (cut.saturating_sub(needle.len() - 1)..cut).find(|&start| {
                    let seen = &bytes[start..bytes.len().min(start + needle.len())];
                    needle.starts_with(seen)
                });
                if let Some(start) = crossing {
                    cut = start;
                }
            }
            if cut == before {
                return cut;
            }
        }
    }
}

/// Each non-empty secret and, where they differ, its percent-encoded form (a query
/// string) and its JSON-escaped form as serde_json writes it (a JSON body: a plugin may
/// put a token with a `"` or a `\` into one; other escapers' `\/` or `\u00e9` forms
/// are not covered), longest first (ties in byte order), without repeats: the order
/// [`scrub`] masks them in.
fn patterns(secrets: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut patterns = Vec::new();
    for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        if encoded != secret {
            patterns.push(encoded);
        }
        // serde_json escapes only `"`, `\` and control characters: most secrets have none
        // (this runs on every delivery attempt).
        if secret.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            let quoted = serde_json::Value::String(secret.clone()).to_string();
            patterns.push(quoted[1..quoted.len() - 1].to_string());
        }
        patterns.push(secret);
    }
    patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    patterns.dedup();
    patterns
}

/// Replaces every occurrence of each secret in `text`, pattern after pattern, as
/// `str::replace` would (non-overlapping, left to right).
pub fn scrub(text: &str, secrets: &Secrets) -> String {
    let mut out = Cow::Borrowed(text);
    for finder in &secrets.0 {
        if let Some(first) = finder.find(out.as_bytes()) {
            out = Cow::Owned(replace_all(&out, finder, first));
        }
    }
    out.into_owned()
}

/// `text` with every occurrence `finder` finds from `first` (its first one) on replaced by
/// [`MASK`]. A needle made from a `String` found in a `str` starts and ends on character
/// boundaries (UTF-8 is self-synchronizing), so the slices below are whole characters.
fn replace_all(text: &str, finder: &Finder<'_>, first: usize) -> String {
    let len = finder.needle().len();
    debug_assert!(len > 0, "Secrets::new leaves out empty patterns");
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..first]);
    out.push_str(MASK);
    let rest = first + len;
    let mut copied = rest;
    for start in finder.find_iter(&text.as_bytes()[rest..]) {
        let start = rest + start;
        out.push_str(&text[copied..start]);
        out.push_str(MASK);
        copied = start + len;
    }
    out.push_str(&text[copied..]);
    out
}

/// The stored copy of `bytes` (a request body, or the start of an answer): text of at
/// most `max` bytes, secrets masked. The cut is chosen on the raw bytes before anything is
/// scrubbed ([`Secrets::safe_cut`]), so the kept part holds only whole secrets, all of
/// them masked, and none is stored in part; masking can lengthen the text (a mask is
/// longer than a short secret), which is then cut again.
pub fn stored_text(bytes: &[u8], max: usize, secrets: &Secrets) -> String {
    let cut = if bytes.len() > max {
        secrets.safe_cut(bytes, max)
    } else {
        bytes.len()
    };
    let mut text = scrub(&text_of(&bytes[..cut]), secrets);
    floor_truncate(&mut text, max);
    text
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn floor_truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// The request as it will be stored in the delivery log: secrets masked, body capped.
pub fn sent_request(request: &Outgoing, secrets: &Secrets) -> SentRequest {
    let headers = request
        .headers
        .iter()
        .map(|(name, value)| {
            let value = if is_sensitive_header(name) {
                MASK.to_string()
            } else {
                scrub(value, secrets)
            };
            (name.clone(), value)
        })
        .collect();
    SentRequest {
        method: request.method.clone(),
        url: scrub(&request.url, secrets),
        headers,
        body: stored_text(&request.body, MAX_STORED_BODY, secrets),
    }
}

/// `bytes` as text, with U+FFFD for what is not UTF-8. Valid UTF-8 (the usual body) is
/// checked by `str::from_utf8`, which skips ASCII a word at a time, and borrowed;
/// `String::from_utf8_lossy` walks byte by byte (~6k instructions for a 1 KB body).
fn text_of(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_values_are_secrets_but_not_their_names() {
        let config = json!({
            "url": "https://example.com",
            "auth": {"type": "api_key", "key": "X-Api-Key", "value": "sk_live_123", "in": "header"},
            "headers": [{"key": "X-Token", "value": "abc"}],
            "bot_token": "t0ken-value"
        });
        let mut secrets = config_secrets(&config);
        secrets.sort();
        assert_eq!(
            secrets,
            vec!["sk_live_123".to_string(), "t0ken-value".to_string()]
        );
        let masked = mask_config(&config);
        assert_eq!(masked["auth"]["value"], MASK);
        assert_eq!(masked["auth"]["key"], "X-Api-Key");
        assert_eq!(masked["bot_token"], MASK);
        assert_eq!(masked["url"], "https://example.com");
    }

    #[test]
    fn masks_sent_back_restore_the_stored_secrets() {
        let stored = json!({"auth": {"type": "bearer", "token": "t0ken-value"}, "list": [{"password": "pw-1234"}]});
        let mut sent_back = mask_config(&stored);
        sent_back["url"] = json!("https://new.example");
        unmask(&mut sent_back, &stored);
        assert_eq!(sent_back["auth"]["token"], "t0ken-value");
        assert_eq!(sent_back["list"][0]["password"], "pw-1234");
        assert_eq!(sent_back["url"], "https://new.example");
        let mut changed = json!({"auth": {"type": "bearer", "token": "new-token"}});
        unmask(&mut changed, &stored);
        assert_eq!(changed["auth"]["token"], "new-token", "a new value is kept");
    }

    #[test]
    fn basic_auth_password_is_masked_username_kept() {
        let config = json!({"auth": {"type": "basic", "username": "bob", "password": "hunter22"}});
        assert_eq!(config_secrets(&config), vec!["hunter22".to_string()]);
    }

    #[test]
    fn stored_requests_carry_no_secrets() {
        let request = Outgoing {
            method: "POST".into(),
            url: "https://example.com/hook?api_key=s3cr%2Bt&x=1".into(),
            headers: vec![
                ("Authorization".into(), "Bearer abc".into()),
                ("X-Custom".into(), "prefix-s3cr+t".into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: bytes::Bytes::from_static(br#"{"pw":"s3cr+t"}"#),
        };
        let sent = sent_request(&request, &Secrets::new(["s3cr+t".to_string()]));
        let all = serde_json::to_string(&sent).unwrap();
        assert!(!all.contains("s3cr"), "{all}");
        assert!(!all.contains("Bearer abc"));
        assert!(all.contains("application/json"));
    }

    #[test]
    fn a_secret_escaped_in_a_json_body_is_masked() {
        let secret = "to\"k\\en\u{1}x";
        let body = format!(
            r#"{{"token":{},"note":"ok"}}"#,
            serde_json::Value::String(secret.into())
        );
        assert!(
            !body.contains(secret),
            "the body holds the escaped form only"
        );
        let request = Outgoing {
            method: "POST".into(),
            url: "https://example.com/hook".into(),
            headers: vec![],
            body: bytes::Bytes::from(body),
        };
        let sent = sent_request(&request, &Secrets::new([secret.to_string()]));
        assert_eq!(
            sent.body,
            format!(r#"{{"token":"{MASK}","note":"ok"}}"#),
            "{sent:?}"
        );
    }

    #[test]
    fn a_body_that_is_not_utf8_is_stored_with_replacement_characters() {
        let request = |body: &'static [u8]| Outgoing {
            method: "POST".into(),
            url: "https://example.com/hook".into(),
            headers: Vec::new(),
            body: bytes::Bytes::from_static(body),
        };
        let secrets = Secrets::new(["s3cr3t".to_string()]);
        let sent = sent_request(&request(b"ok \xff\xfe s3cr3t \xc3"), &secrets);
        assert_eq!(sent.body, format!("ok \u{FFFD}\u{FFFD} {MASK} \u{FFFD}"));
        let sent = sent_request(&request("é s3cr3t".as_bytes()), &secrets);
        assert_eq!(sent.body, format!("é {MASK}"));
    }

    /// A secret across the cut of a stored text leaves none of itself behind, whichever
    /// byte the cut falls on, also when a shorter secret inside it is masked first or the
    /// text is the start of something longer; the stored text is cut on a character
    /// boundary, at most `max` bytes.
    #[test]
    fn a_secret_across_the_cut_is_masked_or_left_out_whole() {
        let secret = "whsec_0123456789abcdefghij";
        let inner = "6789"; // a shorter secret inside it (masked to 8 bytes: longer)
        let leaks = |stored: &str| {
            stored.contains("whsec") || (1..secret.len()).any(|k| stored.ends_with(&secret[..k]))
        };
        for secrets in [
            Secrets::new([secret.to_string()]),
            Secrets::new([secret.to_string(), inner.to_string()]),
        ] {
            for max in [MAX_STORED_BODY, 64] {
                for start in max - secret.len()..=max + 1 {
                    let mut body = format!("{secret} ");
                    body.push_str(&"x".repeat(start - body.len().min(start)));
                    body.push_str(secret);
                    // What a reader that stopped half way through the secret has (as the
                    // client keeps only the start of an answer).
                    let half_seen = (start + secret.len() / 2).max(max + 1);
                    let cut_short = body[..half_seen.min(body.len())].to_owned();
                    body.push_str(&"é".repeat(100));
                    for bytes in [body.as_bytes(), cut_short.as_bytes()] {
                        let stored = stored_text(bytes, max, &secrets);
                        assert!(stored.len() <= max, "{start}/{max}");
                        assert!(
                            !leaks(&stored),
                            "a piece of the secret is stored ({start}/{max}): {stored:?}"
                        );
                        assert!(stored.starts_with(MASK), "{start}/{max}");
                    }
                }
            }
        }
        // A body within the limit is scrubbed whole and kept whole.
        let secrets = Secrets::new([secret.to_string()]);
        assert_eq!(
            stored_text(format!("a {secret} b").as_bytes(), 64, &secrets),
            format!("a {MASK} b")
        );
        // The cut falls on a character boundary: no U+FFFD for a halved character.
        let text = "é".repeat(40);
        assert_eq!(stored_text(text.as_bytes(), 9, &Secrets::default()), "éééé");
        assert_eq!(format!("{secrets:?}"), "Secrets { patterns: 1 }");
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        let secrets = Secrets::new(["abcd".to_string(), "xxabcdyy".to_string(), String::new()]);
        assert_eq!(
            scrub("1 xxabcdyy 2 abcd 3", &secrets),
            format!("1 {MASK} 2 {MASK} 3")
        );
        assert_eq!(scrub("nothing here", &Secrets::default()), "nothing here");
    }

    /// `scrub` masks exactly what replacing each pattern in turn with `str::replace` masks:
    /// repeated, adjacent and overlapping occurrences, patterns inside one another, text
    /// around multi-byte characters, percent-encoded forms.
    #[test]
    fn scrub_replaces_as_str_replace_does() {
        let reference = |text: &str, secrets: &[&str]| {
            patterns(secrets.iter().map(|s| (*s).to_owned()))
                .iter()
                .fold(text.to_owned(), |out, p| out.replace(p.as_str(), MASK))
        };
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+/==";
        let cases: &[(&str, &[&str])] = &[
            ("", &[secret]),
            ("no secret here", &[secret]),
            (secret, &[secret]),
            (&format!("a{secret}{secret}b{secret}"), &[secret]),
            ("aaaa", &["aa"]),
            ("aaaaa", &["aa", "aaa"]),
            ("abababab", &["aba"]),
            ("é€x-s3cr+tü s3cr%2Bt é", &["s3cr+t"]),
            ("1 xxabcdyy 2 abcd 3 xxabcd", &["abcd", "xxabcdyy"]),
            ("tok tok-tok", &["tok", "tok-tok", ""]),
            ("***** masks", &["**"]),
        ];
        for (text, patterns) in cases {
            let secrets = Secrets::new(patterns.iter().map(|p| (*p).to_owned()));
            assert_eq!(
                scrub(text, &secrets),
                reference(text, patterns),
                "{text:?} / {patterns:?}"
            );
        }
        let long_body = format!("{{\"pad\":\"{}\",\"k\":\"{secret}\"}}", "é".repeat(600));
        let scrubbed = scrub(&long_body, &Secrets::new([secret.to_owned()]));
        assert_eq!(scrubbed, long_body.replace(secret, MASK));
        assert!(!scrubbed.contains("whsec_"));
    }

    #[test]
    fn secret_keys_and_sensitive_headers_whatever_their_case_and_separators() {
        for key in [
            "password",
            "X-Api-Key",
            "API_KEY",
            "clientSecret",
            "refresh-TOKEN",
            "private_key",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["url", "method", "headers", "tokenless"] {
            assert_eq!(is_secret_key(key), key == "tokenless", "{key}");
        }
        let long = format!("{}secret", "a-".repeat(200));
        assert!(is_secret_key(&long), "a key longer than the stack buffer");
        assert!(!is_secret_key(&"a-".repeat(200)));
        assert!(is_secret_key("pässwörd-token"), "non-ASCII around a word");
        for name in [
            "Authorization",
            "COOKIE",
            "set-cookie",
            "X-Signing-KEY",
            "x-auth-token",
        ] {
            assert!(is_sensitive_header(name), "{name}");
        }
        for name in ["content-type", "key", "x-keys", "user-agent"] {
            assert!(!is_sensitive_header(name), "{name}");
        }
    }
}
