//! Field-level validation errors and the checks shared by several resources.

use std::fmt;

/// A field that failed validation: surfaces as a 422 naming `field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `retry.max_attempts` or `headers.X-Foo`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A new error about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Headers a tenant or plugin may not set: the transport owns them, or the signature does.
pub fn is_reserved_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "host"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "upgrade"
            | "te"
            | "trailer"
            | "expect"
    ) || name.starts_with("proxy-")
        || name.starts_with("webhook-")
}

/// Checks one header name and value for a tenant-supplied header.
pub fn check_header(field: &str, name: &str, value: &str) -> Result<(), FieldError> {
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(FieldError::new(
            field,
            format!("`{name}` is not a valid header name"),
        ));
    }
    if is_reserved_header(name) {
        return Err(FieldError::new(
            field,
            format!("`{name}` is set by the gateway and cannot be overridden"),
        ));
    }
    if value.len() > 8 * 1024 || http::HeaderValue::from_str(value).is_err() {
        return Err(FieldError::new(
            field,
            "header values must be visible ASCII text without CR/LF, at most 8 KiB",
        ));
    }
    Ok(())
}

/// Checks that `value` is a short, printable name (event type, channel, plugin name).
pub fn check_name(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.is_empty() || value.len() > max {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(FieldError::new(
            field,
            "must not contain spaces or control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_headers_are_refused() {
        assert!(check_header("headers", "Host", "x").is_err());
        assert!(check_header("headers", "webhook-signature", "x").is_err());
        assert!(check_header("headers", "Proxy-Authorization", "x").is_err());
        assert!(check_header("headers", "X-Api-Key", "abc").is_ok());
    }

    #[test]
    fn header_values_cannot_smuggle_lines() {
        let err = check_header("headers.X-A", "X-A", "a\r\nHost: evil").unwrap_err();
        assert_eq!(err.field, "headers.X-A");
        assert!(check_header("headers", "bad name", "x").is_err());
    }

    #[test]
    fn names_are_bounded() {
        assert!(check_name("type", "Message.received", 128).is_ok());
        assert!(check_name("type", "", 128).is_err());
        assert!(check_name("type", "a b", 128).is_err());
        assert!(check_name("type", &"x".repeat(129), 128).is_err());
    }
}
