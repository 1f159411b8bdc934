//! The [`Plugin`] trait, and the plain-Rust glue between it and the exports.
//!
//! The glue lives here, not in the generated bindings, so that everything the
//! exports do with their arguments (parse the config and payload, turn errors
//! into messages) is unit-tested natively.

use serde_json::Value;

use crate::{Action, Error, Event, RawEvent, Request};

/// A gateway plugin. Implement it on a unit struct and export it with
/// [`export_plugin!`](crate::export_plugin).
///
/// Both functions get the endpoint's config for this plugin already parsed
/// (`null` when the endpoint gave none). They must be pure: the same inputs
/// give the same output, and no clock, randomness, file or network is
/// available.
///
/// ```
/// use plugin_sdk::{Action, Error, Event, Plugin, Request};
/// use serde_json::Value;
///
/// struct Tag;
///
/// impl Plugin for Tag {
///     fn validate_config(config: &Value) -> Result<(), Error> {
///         match config.get("tag") {
///             Some(Value::String(_)) => Ok(()),
///             _ => Err(Error::field("tag", "expected a string")),
///         }
///     }
///
///     fn transform(event: Event, mut request: Request, config: &Value) -> Result<Action, Error> {
///         let tag = config["tag"].as_str().unwrap_or_default();
///         request.set_header("x-tag", format!("{tag}:{}", event.event_type));
///         Ok(Action::Deliver(request))
///     }
/// }
///
/// let config = serde_json::json!({"tag": "crm"});
/// assert!(Tag::validate_config(&config).is_ok());
/// let out = Tag::transform(
///     Event::new("order.paid", Value::Null),
///     Request::new("POST", "https://example.com/"),
///     &config,
/// )?;
/// let Action::Deliver(request) = out else { panic!("dropped") };
/// assert_eq!(request.header("x-tag"), Some("crm:order.paid"));
/// # Ok::<(), Error>(())
/// ```
pub trait Plugin {
    /// Checks an endpoint's config when the endpoint is created or updated.
    /// The error is shown to the tenant as-is, so name the field
    /// ([`Error::field`]). The default accepts any config.
    ///
    /// ```
    /// # use plugin_sdk::{Action, Error, Event, Plugin, Request};
    /// struct PassThrough;
    /// impl Plugin for PassThrough {
    ///     fn transform(_: Event, request: Request, _: &serde_json::Value) -> Result<Action, Error> {
    ///         Ok(Action::Deliver(request))
    ///     }
    /// }
    /// assert!(PassThrough::validate_config(&serde_json::json!({"any": 1})).is_ok());
    /// ```
    fn validate_config(config: &Value) -> Result<(), Error> {
        let _ = config;
        Ok(())
    }

    /// Transforms or filters one delivery: return [`Action::Deliver`] with
    /// the request to send (this one, changed or not) or [`Action::Drop`]
    /// with a reason. An error fails the delivery with its message.
    ///
    /// ```
    /// # use plugin_sdk::{Action, Error, Event, Plugin, Request};
    /// struct OnlySms;
    /// impl Plugin for OnlySms {
    ///     fn transform(event: Event, request: Request, _: &serde_json::Value) -> Result<Action, Error> {
    ///         Ok(match event.channel.as_deref() {
    ///             Some("sms") => Action::Deliver(request),
    ///             _ => Action::drop("not an sms event"),
    ///         })
    ///     }
    /// }
    /// let request = Request::new("POST", "https://example.com/");
    /// let event = Event::new("t", serde_json::Value::Null);
    /// assert_eq!(OnlySms::transform(event, request, &serde_json::Value::Null)?, Action::drop("not an sms event"));
    /// # Ok::<(), Error>(())
    /// ```
    fn transform(event: Event, request: Request, config: &Value) -> Result<Action, Error>;

    /// What the `transform` export calls: the event with its payload still JSON
    /// text, and the config's text. The default parses both and calls
    /// [`Plugin::transform`], which is what almost every plugin wants.
    ///
    /// Override it when parsing everything on every call is the cost that
    /// matters: a plugin that reads a few payload fields can read them through
    /// [`RawEvent::lazy`] instead (the built-in compose-template does). Keep it
    /// answering as `transform` does for the same input; the tests of such a
    /// plugin should say so.
    ///
    /// ```
    /// use plugin_sdk::{Action, Error, Event, Lookup, Plugin, RawEvent, Request, Value};
    ///
    /// struct StatusHeader;
    ///
    /// impl Plugin for StatusHeader {
    ///     fn transform(event: Event, request: Request, _: &Value) -> Result<Action, Error> {
    ///         Ok(Action::Deliver(tag(&event, request)))
    ///     }
    ///
    ///     fn transform_raw(event: RawEvent<'_>, request: Request, _: &str) -> Result<Action, Error> {
    ///         Ok(Action::Deliver(tag(&event.lazy()?, request)))
    ///     }
    /// }
    ///
    /// /// The plugin's logic, written once against [`Lookup`].
    /// fn tag(event: &impl Lookup, mut request: Request) -> Request {
    ///     request.set_header("x-status", event.lookup_text("payload.status").unwrap_or_default());
    ///     request
    /// }
    ///
    /// let raw = RawEvent { payload: r#"{"status":"read"}"#, ..RawEvent::default() };
    /// let request = Request::new("POST", "https://example.com/");
    /// let Action::Deliver(out) = StatusHeader::transform_raw(raw, request, "")? else { panic!() };
    /// assert_eq!(out.header("x-status"), Some("read"));
    /// # Ok::<(), Error>(())
    /// ```
    fn transform_raw(event: RawEvent<'_>, request: Request, config: &str) -> Result<Action, Error> {
        let event = event.parse()?;
        let config = parse_config(config)?;
        let action = Self::transform(event, request, &config);
        discard(config);
        action
    }
}

/// Drops a value that lives until the end of a plugin call. In a plugin the
/// instance and its whole memory are thrown away after the call, so there it
/// is forgotten instead (walking a parsed config's tree to free it is work for
/// nothing); natively it is dropped as usual.
///
/// ```
/// let config = plugin_sdk::parse_config(r#"{"a":[1,2,3]}"#)?;
/// plugin_sdk::discard(config);
/// # Ok::<(), plugin_sdk::Error>(())
/// ```
pub fn discard<T>(value: T) {
    #[cfg(target_arch = "wasm32")]
    std::mem::forget(value);
    #[cfg(not(target_arch = "wasm32"))]
    drop(value);
}

/// Parses a plugin config as the gateway passes it: JSON text, where empty
/// text means `null`. Invalid JSON is an error naming the problem.
///
/// ```
/// use plugin_sdk::parse_config;
///
/// assert_eq!(parse_config(r#"{"a":1}"#)?["a"], 1);
/// assert!(parse_config("").is_ok_and(|v| v.is_null()));
/// assert_eq!(
///     parse_config("{").unwrap_err().to_string(),
///     "config is not JSON: EOF while parsing an object at line 1 column 1"
/// );
/// # Ok::<(), plugin_sdk::Error>(())
/// ```
pub fn parse_config(text: &str) -> Result<Value, Error> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| Error::new(format!("config is not JSON: {e}")))
}

/// What the `validate-config` export does: parse, then ask the plugin.
pub(crate) fn run_validate<P: Plugin + ?Sized>(config: &str) -> Result<(), String> {
    let config = parse_config(config)?;
    P::validate_config(&config).map_err(String::from)
}

/// What the `transform` export does: ask the plugin, and turn its error into
/// the message the gateway records.
pub(crate) fn run_transform<P: Plugin + ?Sized>(
    event: RawEvent<'_>,
    request: Request,
    config: &str,
) -> Result<Action, String> {
    P::transform_raw(event, request, config).map_err(String::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct Echo;

    impl Plugin for Echo {
        fn validate_config(config: &Value) -> Result<(), Error> {
            if config.get("bad").is_some() {
                return Err(Error::field("bad", "not allowed"));
            }
            Ok(())
        }

        fn transform(event: Event, mut request: Request, config: &Value) -> Result<Action, Error> {
            if config.get("drop").is_some() {
                return Ok(Action::drop("asked to"));
            }
            request.set_json_body(&event.payload);
            Ok(Action::Deliver(request))
        }
    }

    fn request() -> Request {
        Request::new("POST", "https://example.com/")
    }

    fn raw(payload: &str) -> RawEvent<'_> {
        RawEvent {
            id: "e",
            event_type: "t",
            tenant: "ten",
            payload,
            ..RawEvent::default()
        }
    }

    #[test]
    fn validate_parses_then_delegates() {
        assert_eq!(run_validate::<Echo>(""), Ok(()));
        assert_eq!(run_validate::<Echo>("{}"), Ok(()));
        assert_eq!(
            run_validate::<Echo>(r#"{"bad":1}"#),
            Err("bad: not allowed".into())
        );
        let err = run_validate::<Echo>("{nope").unwrap_err();
        assert!(err.starts_with("config is not JSON:"), "{err}");
    }

    #[test]
    fn transform_reports_bad_payload_and_config() {
        let bad_payload = raw("{x");
        let err = run_transform::<Echo>(bad_payload, request(), "{}").unwrap_err();
        assert!(err.starts_with("event payload is not JSON:"), "{err}");

        let event = raw(r#"{"a":1}"#);
        let err = run_transform::<Echo>(event, request(), "[").unwrap_err();
        assert!(err.starts_with("config is not JSON:"), "{err}");

        let Action::Deliver(out) = run_transform::<Echo>(event, request(), "").unwrap() else {
            panic!("expected deliver");
        };
        assert_eq!(out.body, br#"{"a":1}"#);
        assert_eq!(
            run_transform::<Echo>(event, request(), r#"{"drop":true}"#),
            Ok(Action::drop("asked to"))
        );
    }
}
