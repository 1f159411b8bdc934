//! What a plugin returns: an [`Action`], or an [`Error`].

use std::fmt;

use crate::Request;

/// What the plugin wants done with the event.
///
/// ```
/// use plugin_sdk::{Action, Request};
///
/// let deliver = Action::Deliver(Request::new("POST", "https://example.com/"));
/// let drop = Action::drop("status is read");
/// assert!(matches!(deliver, Action::Deliver(_)));
/// assert_eq!(drop, Action::Drop("status is read".to_string()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this request (the gateway signs it after the last plugin).
    Deliver(Request),
    /// Do not deliver; the delivery log is marked `dropped` with this reason.
    Drop(String),
}

impl Action {
    /// Shorthand for [`Action::Drop`].
    ///
    /// ```
    /// # use plugin_sdk::Action;
    /// assert_eq!(Action::drop("no"), Action::Drop("no".into()));
    /// ```
    pub fn drop(reason: impl Into<String>) -> Self {
        Self::Drop(reason.into())
    }
}

/// A plugin failure. The message is shown to the tenant as-is (in the
/// delivery log, or when a config is rejected), so make it say what is wrong
/// and where: [`Error::field`] prefixes the config field.
///
/// Anything that converts to a `String` converts to an `Error`, so `?` works
/// on `Result<_, String>` and `Err("...".into())` reads naturally.
///
/// ```
/// use plugin_sdk::Error;
///
/// let e = Error::field("body_format", r#"expected "json" or "form""#);
/// assert_eq!(e.to_string(), r#"body_format: expected "json" or "form""#);
/// let e: Error = "plain message".into();
/// assert_eq!(e.message(), "plain message");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with this message.
    ///
    /// ```
    /// # use plugin_sdk::Error;
    /// assert_eq!(Error::new("boom").to_string(), "boom");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// An error about one config field: `"<field>: <message>"`.
    ///
    /// ```
    /// # use plugin_sdk::Error;
    /// assert_eq!(Error::field("url", "required").to_string(), "url: required");
    /// ```
    pub fn field(field: impl fmt::Display, message: impl fmt::Display) -> Self {
        Self::new(format!("{field}: {message}"))
    }

    /// The same error, its message prefixed with a field or context.
    ///
    /// ```
    /// # use plugin_sdk::Error;
    /// let e = Error::new("expected a string").in_field("headers.X-Id");
    /// assert_eq!(e.to_string(), "headers.X-Id: expected a string");
    /// ```
    #[must_use]
    pub fn in_field(self, field: impl fmt::Display) -> Self {
        Self::field(field, self.message)
    }

    /// The message.
    ///
    /// ```
    /// # use plugin_sdk::Error;
    /// assert_eq!(Error::new("boom").message(), "boom");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Self::new(error.to_string())
    }
}

impl From<Error> for String {
    fn from(error: Error) -> Self {
        error.message
    }
}
