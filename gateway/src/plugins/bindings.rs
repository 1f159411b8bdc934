//! Host bindings for the `gateway:plugin@0.1.0` world, generated from
//! `plugin-sdk/wit` — the single definition of the plugin contract.
//!
//! Why a module of its own: the generated names (`Plugin`, `PluginPre`, the
//! `types` records) stay out of the rest of the gateway; [`super::runtime`]
//! converts them to and from the plain [`super::PluginEvent`] types. The world
//! `use`s its records, so `Event`, `Request` and `Action` are at this level.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../plugin-sdk/wit",
    world: "plugin",
});
