//! Generated bindings for `wit/plugin.wit`, and the one impl that connects
//! them to [`Plugin`](crate::Plugin).
//!
//! Authors never see this module: [`export_plugin!`](crate::export_plugin)
//! expands to the generated `export!` macro with this module as the place
//! where the types live. The component-type custom section that wit-bindgen
//! embeds here is what lets the gateway turn the core module into a component.
#![allow(unsafe_code, missing_docs, clippy::all)]

wit_bindgen::generate!({
    world: "plugin",
    path: "wit",
    // The `export!` macro is used from the plugin's crate, which does not
    // depend on wit-bindgen: both paths go through this crate.
    pub_export_macro: true,
    export_macro_name: "__export_plugin_world",
    default_bindings_module: "::plugin_sdk::bindings",
    runtime_path: "::plugin_sdk::__private::wit_bindgen::rt",
});

// The generated code already brings the WIT `Event`, `Request` and `Action`
// into this module; the SDK's own types are named through `crate::`.
use gateway::plugin::types as wit;

use crate::plugin::{run_transform, run_validate};
use crate::Plugin;

impl From<wit::Request> for crate::Request {
    fn from(r: wit::Request) -> Self {
        Self {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<crate::Request> for wit::Request {
    fn from(r: crate::Request) -> Self {
        Self {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<crate::Action> for wit::Action {
    fn from(action: crate::Action) -> Self {
        match action {
            crate::Action::Deliver(request) => Self::Deliver(request.into()),
            crate::Action::Drop(reason) => Self::Drop(reason),
        }
    }
}

/// Every [`Plugin`] is a world implementation; the `export!` macro needs
/// nothing else.
impl<T: Plugin> Guest for T {
    fn validate_config(config: String) -> Result<(), String> {
        run_validate::<T>(&config)
    }

    fn transform(
        event: wit::Event,
        request: wit::Request,
        config: String,
    ) -> Result<wit::Action, String> {
        let event = crate::RawEvent {
            id: &event.id,
            event_type: &event.event_type,
            tenant: &event.tenant,
            channel: event.channel.as_deref(),
            created_at: &event.created_at,
            payload: &event.payload,
        };
        run_transform::<T>(event, request.into(), &config).map(wit::Action::from)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{Action as SdkAction, Error, Event as SdkEvent, Request as SdkRequest};
    use serde_json::Value;

    /// Copies the payload's `status` into a header, or drops on `"read"`.
    struct Status;

    impl Plugin for Status {
        fn transform(
            event: SdkEvent,
            mut request: SdkRequest,
            _: &Value,
        ) -> Result<SdkAction, Error> {
            let status = event.lookup_text("payload.status").unwrap_or_default();
            if status == "read" {
                return Ok(SdkAction::drop("read"));
            }
            request.set_header("x-status", status);
            Ok(SdkAction::Deliver(request))
        }
    }

    fn event(payload: &str) -> wit::Event {
        wit::Event {
            id: "evt_1".into(),
            event_type: "t".into(),
            tenant: "ten_1".into(),
            channel: Some("sms".into()),
            created_at: "2024-01-01T00:00:00Z".into(),
            payload: payload.into(),
        }
    }

    fn request() -> wit::Request {
        wit::Request {
            method: "POST".into(),
            url: "https://example.com/".into(),
            headers: vec![("a".into(), "1".into())],
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn guest_round_trips_through_the_wit_types() {
        let out = <Status as Guest>::transform(event(r#"{"status":"sent"}"#), request(), "".into());
        let Ok(wit::Action::Deliver(r)) = out else {
            panic!("expected deliver, got {out:?}");
        };
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://example.com/");
        assert_eq!(
            r.headers,
            vec![("a".into(), "1".into()), ("x-status".into(), "sent".into())]
        );
        assert_eq!(r.body, b"{}");

        let out =
            <Status as Guest>::transform(event(r#"{"status":"read"}"#), request(), "{}".into());
        assert!(matches!(out, Ok(wit::Action::Drop(reason)) if reason == "read"));
    }

    #[test]
    fn guest_errors_are_messages() {
        let out = <Status as Guest>::transform(event("{"), request(), "".into());
        assert!(matches!(out, Err(m) if m.starts_with("event payload is not JSON")));
        assert_eq!(<Status as Guest>::validate_config("".into()), Ok(()));
        assert!(<Status as Guest>::validate_config("[".into()).is_err());
    }
}
