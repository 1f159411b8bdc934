//! The HTTP request a plugin receives and may rewrite.

use serde_json::Value;

use crate::Error;

/// An HTTP request, as the gateway would send it.
///
/// Header names compare case-insensitively in every helper; the gateway signs
/// the body exactly as the last plugin leaves it and computes
/// `Content-Length` itself.
///
/// ```
/// use plugin_sdk::Request;
///
/// let mut request = Request::new("POST", "https://example.com/hook");
/// request.set_header("X-Source", "gateway");
/// request.set_json_body(&serde_json::json!({"ok": true}));
/// assert_eq!(request.header("x-source"), Some("gateway"));
/// assert_eq!(request.header("content-type"), Some("application/json"));
/// assert_eq!(request.body, br#"{"ok":true}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// Absolute `http` or `https` url.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes; empty for none.
    pub body: Vec<u8>,
}

impl Request {
    /// A request with no headers and no body.
    ///
    /// ```
    /// # use plugin_sdk::Request;
    /// let request = Request::new("GET", "https://example.com/");
    /// assert!(request.headers.is_empty() && request.body.is_empty());
    /// ```
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The first value of a header, by case-insensitive name.
    ///
    /// ```
    /// # use plugin_sdk::Request;
    /// let mut request = Request::new("GET", "https://example.com/");
    /// request.append_header("Accept", "text/plain");
    /// assert_eq!(request.header("ACCEPT"), Some("text/plain"));
    /// assert_eq!(request.header("x-missing"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets a header, replacing every existing header of that name
    /// (case-insensitive). The new header takes the place of the first one
    /// replaced, or goes last.
    ///
    /// ```
    /// # use plugin_sdk::Request;
    /// let mut request = Request::new("GET", "https://example.com/");
    /// request.append_header("x-tag", "a");
    /// request.append_header("X-Tag", "b");
    /// request.set_header("X-TAG", "c");
    /// assert_eq!(request.headers, vec![("X-TAG".to_string(), "c".to_string())]);
    /// ```
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(first) => {
                let mut index = 0;
                self.headers.retain(|(n, _)| {
                    let keep = index <= first || !n.eq_ignore_ascii_case(&name);
                    index += 1;
                    keep
                });
                if let Some(slot) = self.headers.get_mut(first) {
                    *slot = (name, value);
                }
            }
            None => self.headers.push((name, value)),
        }
    }

    /// Adds a header after the existing ones, keeping any of the same name.
    ///
    /// ```
    /// # use plugin_sdk::Request;
    /// let mut request = Request::new("GET", "https://example.com/");
    /// request.append_header("x-tag", "a");
    /// request.append_header("x-tag", "b");
    /// assert_eq!(request.headers.len(), 2);
    /// ```
    pub fn append_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Removes every header of that name (case-insensitive); returns whether
    /// any was present.
    ///
    /// ```
    /// # use plugin_sdk::Request;
    /// let mut request = Request::new("GET", "https://example.com/");
    /// request.append_header("Authorization", "Bearer x");
    /// assert!(request.remove_header("authorization"));
    /// assert!(!request.remove_header("authorization"));
    /// ```
    pub fn remove_header(&mut self, name: &str) -> bool {
        let before = self.headers.len();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.len() != before
    }

    /// Replaces the body with compact JSON and sets
    /// `Content-Type: application/json`.
    ///
    /// ```
    /// # use plugin_sdk::Request;
    /// let mut request = Request::new("POST", "https://example.com/");
    /// request.set_json_body(&serde_json::json!({"b": 1, "a": [true]}));
    /// assert_eq!(request.body, br#"{"b":1,"a":[true]}"#);
    /// assert_eq!(request.header("Content-Type"), Some("application/json"));
    /// ```
    pub fn set_json_body(&mut self, body: &Value) {
        // `to_vec`, not `to_string`: the same bytes without going through
        // `fmt::Display`, which was a measurable part of a plugin call. A
        // `Value` always serializes (its keys are strings).
        self.body = serde_json::to_vec(body).unwrap_or_default();
        self.set_header("content-type", "application/json");
    }

    /// Replaces the body with `application/x-www-form-urlencoded` pairs and
    /// sets that content type.
    ///
    /// ```
    /// # use plugin_sdk::Request;
    /// let mut request = Request::new("POST", "https://example.com/");
    /// request.set_form_body([("name", "Ada Lovelace"), ("note", "a&b=c")]);
    /// assert_eq!(request.body, b"name=Ada+Lovelace&note=a%26b%3Dc");
    /// assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    /// ```
    pub fn set_form_body<I, K, V>(&mut self, pairs: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in pairs {
            form.append_pair(key.as_ref(), value.as_ref());
        }
        self.body = form.finish().into_bytes();
        self.set_header("content-type", "application/x-www-form-urlencoded");
    }

    /// Empties the body and removes `Content-Type` (a request without a body
    /// has no content type).
    ///
    /// ```
    /// # use plugin_sdk::Request;
    /// let mut request = Request::new("POST", "https://example.com/");
    /// request.set_json_body(&serde_json::json!({}));
    /// request.clear_body();
    /// assert!(request.body.is_empty());
    /// assert_eq!(request.header("content-type"), None);
    /// ```
    pub fn clear_body(&mut self) {
        self.body.clear();
        self.remove_header("content-type");
    }

    /// Appends query parameters to the url, form-urlencoded (`a b&c` becomes
    /// `a+b%26c`), after any existing query and before any `#fragment`.
    ///
    /// ```
    /// # use plugin_sdk::Request;
    /// let mut request = Request::new("GET", "https://example.com/hook?x=1#top");
    /// request.append_query([("q", "tea & cake"), ("lang", "en")]);
    /// assert_eq!(request.url, "https://example.com/hook?x=1&q=tea+%26+cake&lang=en#top");
    ///
    /// let mut request = Request::new("GET", "https://example.com/hook");
    /// request.append_query([("id", "évt/1")]);
    /// assert_eq!(request.url, "https://example.com/hook?id=%C3%A9vt%2F1");
    /// ```
    pub fn append_query<I, K, V>(&mut self, pairs: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (key, value) in pairs {
            form.append_pair(key.as_ref(), value.as_ref());
        }
        let query = form.finish();
        if query.is_empty() {
            return;
        }
        let (base, fragment) = match self.url.find('#') {
            Some(at) => self.url.split_at(at),
            None => (self.url.as_str(), ""),
        };
        let separator = match base.find('?') {
            None => "?",
            Some(at) if at + 1 == base.len() || base.ends_with('&') => "",
            Some(_) => "&",
        };
        self.url = format!("{base}{separator}{query}{fragment}");
    }

    /// Parses the body as JSON. An empty body is `null`; a body that is not
    /// JSON is an error.
    ///
    /// ```
    /// # use plugin_sdk::Request;
    /// let mut request = Request::new("POST", "https://example.com/");
    /// request.body = br#"{"a":1}"#.to_vec();
    /// assert_eq!(request.json_body()?["a"], 1);
    /// request.body = b"<xml/>".to_vec();
    /// assert!(request.json_body().is_err());
    /// # Ok::<(), plugin_sdk::Error>(())
    /// ```
    pub fn json_body(&self) -> Result<Value, Error> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::new(format!("request body is not JSON: {e}")))
    }
}

/// Whether `name` is a valid HTTP header name (an RFC 9110 token).
///
/// ```
/// assert!(plugin_sdk::is_header_name("X-Api-Key"));
/// assert!(!plugin_sdk::is_header_name("bad name"));
/// assert!(!plugin_sdk::is_header_name(""));
/// ```
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether a header value contains CR, LF or NUL, which would break the header
/// block (the gateway refuses such a request with `plugin_invalid_output`).
///
/// ```
/// assert!(plugin_sdk::has_line_break("a\r\nHost: evil"));
/// assert!(!plugin_sdk::has_line_break("Bearer abc"));
/// ```
pub fn has_line_break(value: &str) -> bool {
    value.contains(['\r', '\n', '\0'])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(request: &Request) -> Vec<(&str, &str)> {
        request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn set_header_keeps_position_of_first() {
        let mut request = Request::new("POST", "https://example.com/");
        request.append_header("a", "1");
        request.append_header("X-Tag", "2");
        request.append_header("b", "3");
        request.append_header("x-tag", "4");
        request.set_header("x-TAG", "5");
        assert_eq!(headers(&request), [("a", "1"), ("x-TAG", "5"), ("b", "3")]);
        request.set_header("c", "6");
        assert_eq!(headers(&request).last(), Some(&("c", "6")));
    }

    #[test]
    fn json_body_replaces_content_type() {
        let mut request = Request::new("POST", "https://example.com/");
        request.append_header("Content-Type", "text/plain");
        request.set_json_body(&serde_json::json!({"z": 1, "a": 2}));
        assert_eq!(headers(&request), [("content-type", "application/json")]);
        assert_eq!(request.body, br#"{"z":1,"a":2}"#);
        assert_eq!(request.json_body().unwrap()["z"], 1);
    }

    #[test]
    fn append_query_variants() {
        let mut request = Request::new("GET", "https://example.com/p?");
        request.append_query([("a", "1")]);
        assert_eq!(request.url, "https://example.com/p?a=1");
        request.append_query(Vec::<(&str, &str)>::new());
        assert_eq!(request.url, "https://example.com/p?a=1");
        request.append_query([("k y", "+/?#")]);
        assert_eq!(request.url, "https://example.com/p?a=1&k+y=%2B%2F%3F%23");
    }

    #[test]
    fn empty_body_is_null() {
        let request = Request::new("GET", "https://example.com/");
        assert_eq!(request.json_body().unwrap(), Value::Null);
    }
}
