//! [`PluginEngine`]: the one place that configures wasmtime, plus the epoch
//! ticker and the in-process cache of loaded plugins.
//!
//! Why this shape (STYLE §7): compiling is slow (milliseconds to seconds) and
//! done once per content hash at upload; loading a serialized artifact and
//! pre-instantiating it takes well under a millisecond and is cached here by
//! sha256; a call then only creates a `Store` and an instance from the pooling
//! allocator (tens of microseconds).
//!
//! Engine settings and why:
//! - component model on, everything else at wasmtime's defaults, so plugins
//!   built by plugin-sdk load;
//! - fuel: a deterministic instruction bound per call;
//! - epoch interruption: a wall-clock bound per call; one ticker thread bumps
//!   the epoch every [`TICK`] and stops when the last engine clone is dropped;
//!   at each tick a running call yields to the async runtime, and traps once
//!   past its deadline;
//! - what the two bounds cost (`benches/plugin_invoke.rs`, each switched off in
//!   a build of this engine, 2026-11-22): compose-template's call 13.0 µs with
//!   both, 11.4 µs without fuel, 11.9-12.1 µs without the epoch check; both
//!   stay: the design asks for both limits on every call (fuel the deterministic
//!   bound on a plugin's work, the epoch the wall-clock one);
//! - fiber stacks are reused without zeroing (`async_stack_zeroing` off, the
//!   default): zeroing measured +1.7 µs per call (near-empty call 4.8 → 6.5 µs),
//!   and a previous call's frames are readable only through a compiler bug;
//! - async calls (wasmtime's `async` feature): a call runs on a fiber of the
//!   calling task instead of a blocking-pool thread; with 64 tasks calling at
//!   once on 2 runtime threads that is 11.9 µs of wall time per call against
//!   22.2 µs via `spawn_blocking` (the thread handoff cost more than the call;
//!   7.4 against 12.8 µs on 2026-11-22);
//! - pooling allocator with `pool_instances` slots, memory slots capped at
//!   `memory_bytes` and the first [`KEEP_RESIDENT`] bytes of each memory kept
//!   resident between calls (reset with `memset`, not `madvise`), which is
//!   what makes a fresh instance per event cheap (4.0-4.2 µs for a near-empty
//!   call, 13 µs for compose-template on a ~0.8 KB event on 2026-11-22, see
//!   `benches/plugin_invoke.rs`);
//! - `PoolingAllocationConfig::pagemap_scan` stays off (wasmtime's default).
//!   It would reset a slot by rewriting only the pages a call dirtied: under
//!   end-to-end load the reset's `memset` fell from 3.4 % to 0.3 % of gateway
//!   CPU. But wasmtime 48's scan asks for dirty pages that are also resident,
//!   so on a host with swap a dirtied page swapped out between calls could be
//!   left as it was, for the next instance in that slot (another tenant's
//!   delivery, for a built-in plugin) to read. Not worth 3 %.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::PluginPre;
use super::runtime::HostState;
use super::{PluginLimits, UploadError};

/// The interface whose records the world uses: the one import allowed.
pub const TYPES_INTERFACE: &str = "gateway:plugin/types@0.1.0";

/// Epoch tick: the granularity of the wall-clock deadline, and how long a running plugin
/// call keeps a runtime thread before it yields. 2 ms: with many CPU-heavy calls at once,
/// other tasks on the runtime threads (API handlers, Redis replies) wait about
/// `calls in flight × TICK / threads` per turn; the ticker thread's 500 wake-ups a second
/// cost next to nothing, and a typical 20 µs call is rarely cut by a tick.
pub const TICK: Duration = Duration::from_millis(2);

/// Bytes of each linear memory (and, /16, table) kept resident in a pool slot.
///
/// Measured with `benches/plugin_invoke.rs` (Linux 6.18, 2 cores, loaded
/// machine), fresh instance + near-empty call, p50: 0 → 22 µs, 1 MiB → 35 µs,
/// 4 MiB → 25 µs, when plugins were built with rustc's 1 MiB wasm stack. A
/// Rust plugin's memory starts at its stack plus data (the built-ins: 192 KiB,
/// 128 KiB stack, and with plugin-sdk's `bump-allocator` they do not grow it
/// during a call on a 1 KB event: near-empty call 4.4 µs); tenant plugins built with
/// the defaults start at ~1.1 MiB. A value below a plugin's memory splits it
/// between `memset` and `madvise` and pays for both; 4 MiB covers a typical
/// plugin's whole working set. Only pages a plugin touched stay resident.
pub const KEEP_RESIDENT: usize = 4 << 20;

/// Cheap-to-clone handle on the plugin host: engine, limits, cache and ticker.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostState>,
    limits: PluginLimits,
    artifact_key: String,
    cache: Mutex<Cache>,
    /// Dropping this (with the last engine clone) stops the ticker thread.
    _ticker_stop: mpsc::Sender<()>,
}

/// A plugin ready to run: its compiled component and pre-instantiated handle.
pub struct LoadedPlugin {
    sha256: String,
    pub(super) component: Component,
    pub(super) pre: PluginPre<HostState>,
}

impl LoadedPlugin {
    /// Hex sha256 of the component bytes this plugin was made from.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PluginEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginEngine")
            .field("limits", &self.inner.limits)
            .field("artifact_key", &self.inner.artifact_key)
            .finish_non_exhaustive()
    }
}

/// Least-recently-used by count; a linear scan on eviction is fine at the
/// sizes configured (hundreds).
struct Cache {
    entries: HashMap<String, (Arc<LoadedPlugin>, u64)>,
    clock: u64,
    capacity: usize,
}

impl Cache {
    fn get(&mut self, sha256: &str) -> Option<Arc<LoadedPlugin>> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(sha256).map(|(p, used)| {
            *used = clock;
            p.clone()
        })
    }

    fn insert(&mut self, plugin: Arc<LoadedPlugin>) {
        self.clock += 1;
        while self.entries.len() >= self.capacity.max(1)
            && !self.entries.contains_key(&plugin.sha256)
        {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.entries.remove(&k),
                None => break,
            };
        }
        self.entries
            .insert(plugin.sha256.clone(), (plugin, self.clock));
    }
}

impl PluginEngine {
    /// Configures the engine for `limits` and starts the epoch ticker thread.
    pub fn new(limits: PluginLimits) -> Result<Self, anyhow::Error> {
        anyhow::ensure!(
            limits.memory_bytes >= 64 << 10,
            "plugins.memory_bytes must be at least 64 KiB"
        );
        anyhow::ensure!(
            limits.pool_instances >= 1,
            "plugins.pool_instances must be at least 1"
        );
        anyhow::ensure!(limits.fuel >= 1, "plugins.fuel must be at least 1");
        anyhow::ensure!(
            !limits.timeout.is_zero(),
            "plugins.timeout_ms must be at least 1"
        );

        let n = limits.pool_instances;
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(4))
            .total_memories(n)
            .total_tables(n.saturating_mul(4))
            .max_core_instances_per_component(8)
            .max_memories_per_component(1)
            .max_tables_per_component(4)
            .max_memory_size(limits.memory_bytes)
            // One fiber stack per call in flight (calls are async, see runtime.rs);
            // reused without zeroing, so a call costs no stack syscalls.
            .total_stacks(n)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT / 16);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        // No host functions on purpose. The only import a plugin may have is
        // the type-only `types` interface, satisfied by an empty instance.
        let mut linker = Linker::new(&engine);
        linker
            .instance(TYPES_INTERFACE)
            .map_err(anyhow::Error::from)?;
        let artifact_key = compute_artifact_key(&engine);

        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                // Ends when the sender (held by the last engine clone) is dropped.
                while let Err(RecvTimeoutError::Timeout) = stop_rx.recv_timeout(TICK) {
                    ticking.increment_epoch();
                }
            })?;

        let capacity = limits.cache_entries;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                linker,
                limits,
                artifact_key,
                cache: Mutex::new(Cache {
                    entries: HashMap::new(),
                    clock: 0,
                    capacity,
                }),
                _ticker_stop: stop_tx,
            }),
        })
    }

    /// The limits this engine enforces.
    pub fn limits(&self) -> &PluginLimits {
        &self.inner.limits
    }

    pub(super) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// A stable string identifying which serialized artifacts this engine can
    /// load (wasmtime version and every setting that affects compiled code).
    /// Store artifacts under `sha256` + this key.
    pub fn artifact_key(&self) -> &str {
        &self.inner.artifact_key
    }

    /// Loads a serialized artifact made by [`prepare`](Self::prepare) (on
    /// this or a compatible engine), pre-instantiates it and caches it under
    /// `sha256`. Returns the cached plugin if already loaded.
    ///
    /// An artifact from an incompatible engine is an [`UploadError::Compile`];
    /// re-make it from the component bytes with `prepare`.
    pub fn load(&self, sha256: &str, artifact: &[u8]) -> Result<Arc<LoadedPlugin>, UploadError> {
        if let Some(p) = self.loaded(sha256) {
            return Ok(p);
        }
        // SAFETY: `Component::deserialize` trusts that the bytes are a wasmtime
        // artifact it produced, as native code is mapped from them unchecked.
        // Artifacts only ever come from `prepare` in a gateway process, stored
        // in our own Redis under the engine's `artifact_key`; tenants never
        // supply them (uploads go through `prepare`, which compiles from
        // validated wasm). Wasmtime still checks the header and the engine
        // compatibility hash, so a stale artifact is an error, not UB.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(self.engine(), artifact) }
            .map_err(|e| UploadError::Compile(format!("cannot load stored artifact: {e:#}")))?;
        self.install(sha256.to_string(), component)
    }

    /// The plugin cached under `sha256`, if loaded.
    pub fn loaded(&self, sha256: &str) -> Option<Arc<LoadedPlugin>> {
        self.lock_cache().get(sha256)
    }

    /// Pre-instantiates `component` and caches it under `sha256`.
    fn install(
        &self,
        sha256: String,
        component: Component,
    ) -> Result<Arc<LoadedPlugin>, UploadError> {
        let plugin = Arc::new(self.pre_instantiate(sha256, component)?);
        self.cache_insert(plugin.clone());
        Ok(plugin)
    }

    /// Pre-instantiates `component`, checking that it needs no imports and
    /// that its exports have the world's types.
    pub(super) fn pre_instantiate(
        &self,
        sha256: String,
        component: Component,
    ) -> Result<LoadedPlugin, UploadError> {
        let instance_pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| UploadError::ForbiddenImport(format!("{e:#}")))?;
        let pre =
            PluginPre::new(instance_pre).map_err(|e| UploadError::WrongWorld(format!("{e:#}")))?;
        Ok(LoadedPlugin {
            sha256,
            component,
            pre,
        })
    }

    pub(super) fn cache_insert(&self, plugin: Arc<LoadedPlugin>) {
        self.lock_cache().insert(plugin);
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.inner
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `wasmtime48-<16 hex>`: sha256 over wasmtime's compatibility hash.
fn compute_artifact_key(engine: &Engine) -> String {
    use std::hash::Hash;
    struct ShaHasher(Sha256);
    impl std::hash::Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            0 // unused: the digest is read below
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    let digest = h.0.finalize();
    format!("wasmtime48-{}", hex::encode(&digest[..8]))
}
