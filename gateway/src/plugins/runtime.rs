//! Calling a plugin under limits, and checking what it returns.
//!
//! Why: a plugin call is untrusted code on the delivery path. Each call gets a
//! fresh `Store` (so no state leaks between events or tenants) with:
//! - a memory/table limiter ([`Limiter`]) that records when it refused growth,
//!   so the trap that usually follows (an allocator abort) is reported as
//!   [`PluginCallError::Memory`];
//! - `fuel` units of fuel and an epoch deadline of `timeout`;
//! - an output check ([`check_request`]): size, method, url form, header
//!   syntax and the headers a plugin may not set.
//!
//! The SSRF check of the url's address is not done here: the delivery client
//! applies it at connect time to every url, a plugin's included.

use std::time::Instant;

use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};

use super::bindings::{self, Plugin};
use super::engine::LoadedPlugin;
use super::{Invocation, PluginAction, PluginCallError, PluginEngine, PluginEvent, PluginRequest};

/// Methods a plugin may send.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Headers a plugin may not set (compared in lower case); `proxy-*` too.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

/// Longest plugin error or drop reason kept, in bytes; longer ones are cut.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Per-call store data.
pub struct HostState {
    limiter: Limiter,
}

/// Caps linear memory and table growth of one instance, remembering refusals.
struct Limiter {
    memory_bytes: usize,
    memory_refused: bool,
}

/// Most table elements per table (function tables of real plugins have
/// hundreds to a few thousand).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        8
    }

    fn tables(&self) -> usize {
        4
    }

    fn memories(&self) -> usize {
        1
    }
}

impl PluginEngine {
    /// Calls the plugin's `validate-config` with an endpoint's config (JSON
    /// text). `Err(Rejected(msg))` carries the plugin's message for the tenant.
    pub async fn validate_config(
        &self,
        plugin: &LoadedPlugin,
        config_json: &str,
    ) -> Result<(), PluginCallError> {
        let (mut store, instance) = self.instantiate(plugin).await?;
        let result = instance
            .func_validate_config()
            .call_async(&mut store, (config_json,))
            .await;
        match result {
            Ok((Ok(()),)) => Ok(()),
            Ok((Err(msg),)) => Err(PluginCallError::Rejected(truncate(msg))),
            Err(e) => Err(classify(&store, &e)),
        }
    }

    /// Runs the plugin's `transform` for one delivery: fresh instance, all
    /// limits, output checked.
    ///
    /// The call runs on the calling task (on a wasmtime fiber), not on a
    /// thread of its own: a plugin that runs long yields to the runtime at
    /// every epoch tick ([`super::engine::TICK`]) until its deadline, so it never holds a
    /// runtime thread for more than a tick at a time.
    pub async fn invoke(
        &self,
        plugin: &LoadedPlugin,
        event: &PluginEvent,
        request: PluginRequest,
        config_json: &str,
    ) -> Result<Invocation, PluginCallError> {
        let started = Instant::now();
        let wit_event = bindings::Event {
            id: event.id.clone(),
            event_type: event.event_type.clone(),
            tenant: event.tenant.clone(),
            channel: event.channel.clone(),
            created_at: event.created_at.clone(),
            payload: event.payload.clone(),
        };
        let wit_request = to_wit(request);
        let (mut store, instance) = self.instantiate(plugin).await?;
        let result = instance
            .func_transform()
            .call_async(&mut store, (&wit_event, &wit_request, config_json))
            .await
            .map(|(r,)| r);
        let fuel_used = self
            .limits()
            .fuel
            .saturating_sub(store.get_fuel().unwrap_or(0));
        let action = match result {
            Ok(Ok(bindings::Action::Deliver(r))) => PluginAction::Deliver(from_wit(r)),
            Ok(Ok(bindings::Action::Drop(reason))) => PluginAction::Drop(truncate(reason)),
            Ok(Err(msg)) => return Err(PluginCallError::Rejected(truncate(msg))),
            Err(e) => return Err(classify(&store, &e)),
        };
        drop(store); // return the instance slot before the checks
        if let PluginAction::Deliver(r) = &action {
            check_request(r, self.limits().max_output_bytes)
                .map_err(PluginCallError::InvalidOutput)?;
        }
        Ok(Invocation {
            action,
            fuel_used,
            duration: started.elapsed(),
        })
    }

    /// [`PluginEngine::invoke`] for callers outside an async runtime (tests,
    /// benchmarks): the same call, driven to completion on this thread.
    pub fn invoke_blocking(
        &self,
        plugin: &LoadedPlugin,
        event: &PluginEvent,
        request: PluginRequest,
        config_json: &str,
    ) -> Result<Invocation, PluginCallError> {
        futures::executor::block_on(self.invoke(plugin, event, request, config_json))
    }

    /// [`PluginEngine::validate_config`] driven to completion on this thread.
    pub fn validate_config_blocking(
        &self,
        plugin: &LoadedPlugin,
        config_json: &str,
    ) -> Result<(), PluginCallError> {
        futures::executor::block_on(self.validate_config(plugin, config_json))
    }

    /// A fresh store with every limit set, and an instance in it.
    async fn instantiate(
        &self,
        plugin: &LoadedPlugin,
    ) -> Result<(Store<HostState>, Plugin), PluginCallError> {
        let limits = self.limits();
        let state = HostState {
            limiter: Limiter {
                memory_bytes: limits.memory_bytes,
                memory_refused: false,
            },
        };
        let mut store = Store::new(self.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| PluginCallError::Trap(format!("cannot set fuel: {e}")))?;
        // Every tick the plugin yields to the async runtime, until the wall-clock
        // deadline: then the call traps with `Interrupt` (reported as a timeout).
        let deadline = Instant::now() + limits.timeout;
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        store.set_epoch_deadline(1);
        match plugin.pre.instantiate_async(&mut store).await {
            Ok(instance) => Ok((store, instance)),
            Err(e) => Err(classify(&store, &e)),
        }
    }
}

/// Instantiates `plugin` once without calling it (the upload check).
pub(super) fn instantiate_only(
    engine: &PluginEngine,
    plugin: &LoadedPlugin,
) -> Result<(), PluginCallError> {
    futures::executor::block_on(engine.instantiate(plugin)).map(|_| ())
}

/// Maps a wasmtime error from instantiation or a call to a typed error.
fn classify(store: &Store<HostState>, e: &wasmtime::Error) -> PluginCallError {
    let trap = e.downcast_ref::<Trap>();
    // Fuel and the deadline first: a refused growth the plugin recovered from (an
    // allocator that retries with a smaller request) must not relabel a later timeout.
    match trap {
        Some(Trap::OutOfFuel) => return PluginCallError::OutOfFuel,
        Some(Trap::Interrupt) => return PluginCallError::Timeout,
        _ => {}
    }
    if store.data().limiter.memory_refused {
        return PluginCallError::Memory;
    }
    match trap {
        Some(Trap::StackOverflow) => PluginCallError::Trap("stack overflow".into()),
        Some(Trap::UnreachableCodeReached) => {
            PluginCallError::Trap("`unreachable` executed (the plugin panicked or aborted)".into())
        }
        Some(trap) => PluginCallError::Trap(trap.to_string()),
        None if e.is::<wasmtime::PoolConcurrencyLimitError>() => {
            PluginCallError::Trap(format!("plugin instance pool exhausted: {e}"))
        }
        None => PluginCallError::Trap(format!("{e:#}")),
    }
}

fn to_wit(r: PluginRequest) -> bindings::Request {
    bindings::Request {
        method: r.method,
        url: r.url,
        headers: r.headers,
        body: r.body,
    }
}

fn from_wit(r: bindings::Request) -> PluginRequest {
    PluginRequest {
        method: r.method,
        url: r.url,
        headers: r.headers,
        body: r.body,
    }
}

/// Cuts `msg` to [`MAX_MESSAGE_BYTES`] on a character boundary.
fn truncate(mut msg: String) -> String {
    if msg.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        msg.truncate(end);
        msg.push('…');
    }
    msg
}

/// Checks a request returned by a plugin; the error names the problem.
pub fn check_request(r: &PluginRequest, max_output_bytes: usize) -> Result<(), String> {
    let size = r.method.len()
        + r.url.len()
        + r.headers
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>()
        + r.body.len();
    if size > max_output_bytes {
        return Err(format!(
            "output is {size} bytes; the limit is {max_output_bytes} bytes"
        ));
    }
    if !METHODS.contains(&r.method.as_str()) {
        return Err(format!(
            "method {:?} is not one of {}",
            r.method,
            METHODS.join(", ")
        ));
    }
    let url = url::Url::parse(&r.url)
        .map_err(|e| format!("url {:?} is not an absolute url: {e}", r.url))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "url scheme {:?} is not http or https",
            url.scheme()
        ));
    }
    if url.host().is_none() {
        return Err(format!("url {:?} has no host", r.url));
    }
    for (name, value) in &r.headers {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(format!("header name {name:?} is not a valid token"));
        }
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            return Err(format!("header {name:?} may not be set by a plugin"));
        }
        if let Some(b) = value
            .bytes()
            .find(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
        {
            return Err(format!(
                "header {name:?} has a control character (0x{b:02x}) in its value"
            ));
        }
    }
    Ok(())
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
