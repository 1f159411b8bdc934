//! The wasmtime host for tenant and built-in WebAssembly plugins.
//!
//! Why it exists: plugins are untrusted code that runs on every delivery. This
//! module is the only place that configures wasmtime, so every plugin call is
//! bounded the same way: a fresh `Store` and instance per call from a cached
//! `InstancePre`, a memory limit, fuel, an epoch (wall clock) deadline and an
//! output check. A trap or a breached limit is a [`PluginCallError`] for that
//! delivery, never a crash of the gateway. Plugins import nothing: no WASI, no
//! host functions; everything they see comes in the call's arguments.
//!
//! What it owns:
//! - [`engine`]: [`PluginEngine`], the wasmtime `Engine` configuration
//!   (component model, fuel, epochs, pooling allocator), the epoch ticker and
//!   the in-process cache of loaded plugins by content hash;
//! - [`upload`]: turning uploaded bytes into a [`PreparedPlugin`] (size cap,
//!   componentizing a core module, checking the world and the imports,
//!   compiling, serializing);
//! - [`runtime`]: calling `validate-config` and `transform` under limits and
//!   checking what a plugin returns;
//! - [`bindings`]: the host bindings generated from `plugin-sdk/wit`;
//! - [`builtin`]: the built-in plugins embedded at build time by `build.rs`;
//! - `testing` (feature `test-support`): builds guest crates such as
//!   `tests/guests/hostile` to components for tests.
//!
//! Storage: this module keeps nothing in Redis itself. Callers store the
//! component bytes under their sha256 and the serialized artifact under
//! `(sha256, `[`PluginEngine::artifact_key`]`)`; an artifact whose key differs
//! from the running engine's must be re-made with [`PluginEngine::prepare`].
//!
//! Calls are async and run on the calling task, on a wasmtime fiber: a call
//! yields to the runtime at every epoch tick until its
//! [`PluginLimits::timeout`], so a long plugin never holds a runtime thread
//! for more than a tick at a time, and a short one (the usual tens of
//! microseconds) pays no thread handoff. Keep the number of concurrent calls
//! at or below [`PluginLimits::pool_instances`]. `*_blocking` variants drive
//! the same call on the current thread, for code outside a runtime.

pub mod bindings;
pub mod builtin;
pub mod engine;
pub mod runtime;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod upload;
#[cfg(any(test, feature = "test-support"))]
mod wasm_build;

#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Deserialize;

pub use engine::{LoadedPlugin, PluginEngine};
pub use upload::PreparedPlugin;

/// Limits applied to every plugin upload and call; the `[plugins]` section of
/// the gateway configuration. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Largest linear memory a plugin instance may have, in bytes (32 MiB).
    pub memory_bytes: usize,
    /// Fuel (wasm instructions, roughly) per call, instantiation included.
    /// Default 1 000 000 000. Measured: compose-template on a 1.0 MiB event
    /// used 158 M (26 ms; 445 M and 123 ms before the built-ins were built
    /// with opt-level 3 and a bump allocator), on a ~0.8 KB event 0.18 M. At
    /// the 4-10 G fuel/s seen here it is 100-250 ms of CPU: the deterministic
    /// bound that normally ends a runaway plugin.
    pub fuel: u64,
    /// Wall-clock deadline per call, in milliseconds (500), enforced with
    /// epoch interruption at a 2 ms granularity. A backstop above the fuel
    /// bound: a 1 MiB transform took ~120 ms on an idle core (~26 ms with
    /// today's built-ins; a tenant plugin may be as slow as the old ones),
    /// more on a loaded host, and 200 ms would fail such events at random.
    #[serde(rename = "timeout_ms", deserialize_with = "de_millis")]
    pub timeout: Duration,
    /// Largest output a plugin may return (method, url, headers and body
    /// together), in bytes (2 MiB).
    pub max_output_bytes: usize,
    /// Largest plugin upload, in bytes (8 MiB).
    pub max_upload_bytes: usize,
    /// Instance slots in the pooling allocator: the most plugin calls that
    /// can run at once in this process (64). A call beyond it fails with a
    /// `plugin_trap` error saying the pool is exhausted.
    pub pool_instances: u32,
    /// How many loaded plugins to keep in the in-process cache (256).
    pub cache_entries: usize,
}

fn de_millis<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 32 << 20,
            fuel: 1_000_000_000,
            timeout: Duration::from_millis(500),
            max_output_bytes: 2 << 20,
            max_upload_bytes: 8 << 20,
            pool_instances: 64,
            cache_entries: 256,
        }
    }
}

/// The event a plugin sees (the WIT `event` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEvent {
    /// Event id (`evt_...`).
    pub id: String,
    /// Event type, e.g. `Message.received`.
    pub event_type: String,
    /// Tenant id (`ten_...`).
    pub tenant: String,
    /// Channel the event came from, when it names one.
    pub channel: Option<String>,
    /// When the gateway accepted the event, RFC 3339 in UTC.
    pub created_at: String,
    /// The event payload: a JSON object, as text.
    pub payload: String,
}

/// An HTTP request as the gateway would send it, before signing (the WIT
/// `request` record). Also what a plugin returns, after [`runtime`]'s checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRequest {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// Absolute `http` or `https` url.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// Raw body bytes; empty for none.
    pub body: Vec<u8>,
}

/// What a plugin asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginAction {
    /// Send this request (checked: method, url form, headers, size).
    Deliver(PluginRequest),
    /// Do not deliver; the reason goes to the delivery log.
    Drop(String),
}

/// The outcome of one successful plugin call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// What the plugin asked for.
    pub action: PluginAction,
    /// Fuel consumed, instantiation included.
    pub fuel_used: u64,
    /// Wall time of instantiation plus the call.
    pub duration: Duration,
}

/// Why a plugin call failed. Each variant has a stable [`code`](Self::code)
/// for the delivery log and metrics; messages are safe to show the tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginCallError {
    /// The call ran past the wall-clock deadline.
    #[error("plugin exceeded its time limit")]
    Timeout,
    /// The call used all its fuel.
    #[error("plugin exceeded its instruction (fuel) limit")]
    OutOfFuel,
    /// The plugin needed more memory than allowed.
    #[error("plugin exceeded its memory limit")]
    Memory,
    /// The plugin trapped (panic, stack overflow, bad memory access, ...), or
    /// could not be instantiated.
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The plugin returned something the gateway will not send.
    #[error("plugin returned an invalid request: {0}")]
    InvalidOutput(String),
    /// The plugin returned an error (its message, as given).
    #[error("plugin error: {0}")]
    Rejected(String),
}

impl PluginCallError {
    /// Stable machine-readable code for logs, metrics and API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout => "plugin_timeout",
            Self::OutOfFuel => "plugin_out_of_fuel",
            Self::Memory => "plugin_memory",
            Self::Trap(_) => "plugin_trap",
            Self::InvalidOutput(_) => "plugin_invalid_output",
            Self::Rejected(_) => "plugin_error",
        }
    }
}

/// Why an upload (or a stored artifact) was refused. Messages are meant for
/// the tenant; the API answers 413 for [`TooLarge`](Self::TooLarge) and 422
/// for the rest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// The upload is larger than [`PluginLimits::max_upload_bytes`].
    #[error("plugin is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Size of the upload.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The bytes are not a WebAssembly module or component.
    #[error("not a WebAssembly plugin: {0}")]
    NotWasm(String),
    /// The wasm does not implement exactly the `gateway:plugin/plugin` world.
    #[error("plugin does not implement the gateway:plugin@0.1.0 `plugin` world: {0}")]
    WrongWorld(String),
    /// The component imports something; plugins must import nothing.
    #[error("plugin imports {0}, but plugins get no host capabilities (no WASI); build it for wasm32-unknown-unknown with plugin-sdk")]
    ForbiddenImport(String),
    /// Compilation, instantiation under limits or artifact loading failed.
    #[error("plugin failed to compile: {0}")]
    Compile(String),
}

impl UploadError {
    /// Stable machine-readable code for API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "plugin_too_large",
            Self::NotWasm(_) => "plugin_not_wasm",
            Self::WrongWorld(_) => "plugin_wrong_world",
            Self::ForbiddenImport(_) => "plugin_forbidden_import",
            Self::Compile(_) => "plugin_compile_failed",
        }
    }
}
