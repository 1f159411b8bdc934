//! Write webhook-gateway plugins in plain Rust.
//!
//! A plugin is a pure function: it gets the [`Event`] being delivered, the
//! [`Request`] the gateway would send and the endpoint's config for it, and
//! returns an [`Action`]: deliver a (possibly rewritten) request, or drop the
//! event with a reason. Implement [`Plugin`] and export it with
//! [`export_plugin!`]; build with `cargo build --release --target
//! wasm32-unknown-unknown` and upload the `.wasm` as it is.
//!
//! ```
//! use plugin_sdk::{Action, Error, Event, Plugin, Request};
//! use serde_json::Value;
//!
//! pub struct AddEventType;
//!
//! impl Plugin for AddEventType {
//!     fn transform(event: Event, mut request: Request, _config: &Value) -> Result<Action, Error> {
//!         request.set_header("x-event-type", event.event_type);
//!         Ok(Action::Deliver(request))
//!     }
//! }
//!
//! plugin_sdk::export_plugin!(AddEventType);
//! # fn main() {}
//! ```
//!
//! Map of the crate:
//! - [`event`]: [`Event`] and variable lookup by dotted path ([`Event::lookup`]);
//! - [`request`]: [`Request`] and its header, body and query helpers;
//! - [`action`]: [`Action`] and [`Error`];
//! - [`plugin`]: the [`Plugin`] trait and config parsing;
//! - [`raw_event`]: [`RawEvent`] and [`LazyEvent`], for plugins that read a few
//!   payload fields without parsing the whole payload ([`Plugin::transform_raw`]);
//! - `bindings` (hidden): the code wit-bindgen generates from
//!   `wit/plugin.wit`, the only definition of the contract.
//!
//! Everything except the export glue compiles and runs natively, so plugins
//! are unit-tested with plain `cargo test`.

// Lets the generated bindings name this crate the same way from inside it
// and from a plugin's crate, where the export macro expands.
extern crate self as plugin_sdk;

pub mod action;
#[cfg(all(target_arch = "wasm32", feature = "bump-allocator"))]
mod arena;
#[doc(hidden)]
pub mod bindings;
pub mod event;
pub mod plugin;
pub mod raw_event;
pub mod request;

pub use action::{Action, Error};
pub use event::{lookup_value, value_to_text, Event};
pub use plugin::{discard, parse_config, Plugin};
pub use raw_event::{LazyEvent, Lookup, RawEvent};
pub use request::{has_line_break, is_header_name, Request};
/// The JSON type configs and payloads use, re-exported so that a plugin's
/// version always matches the SDK's.
///
/// ```
/// let v: plugin_sdk::Value = serde_json::json!({"a": 1});
/// assert_eq!(v["a"], 1);
/// ```
pub use serde_json::Value;

/// Exports a [`Plugin`] as the wasm module's `validate-config` and
/// `transform` functions. Use it once, at the top level of a `cdylib`
/// crate's `lib.rs`, naming the type by a plain identifier (`use` it first
/// if it lives elsewhere).
///
/// On non-wasm targets it expands to nothing, so the same crate builds as an
/// `rlib` and is unit-tested natively without exporting clashing symbols.
///
/// ```
/// use plugin_sdk::{Action, Error, Event, Plugin, Request, Value};
///
/// pub struct PassThrough;
///
/// impl Plugin for PassThrough {
///     fn transform(_event: Event, request: Request, _config: &Value) -> Result<Action, Error> {
///         Ok(Action::Deliver(request))
///     }
/// }
///
/// plugin_sdk::export_plugin!(PassThrough);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_plugin_world!($plugin with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}
