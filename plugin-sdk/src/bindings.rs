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
        let event = crate::Event::from_parts(
            event.id,
            event.event_type,
            event.tenant,
            event.channel,
            event.created_at,
            &event.payload,
        );
        run_transform::<T>(event, request.into(), &config).map(wit::Action::from)
    }
}
