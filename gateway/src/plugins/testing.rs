//! Builds guest crates (the hostile plugin in `tests/guests/hostile`, the
//! built-ins, any plugin crate) to real components for tests.
//!
//! Why: limits are only worth what the tests against real wasm show. Enabled
//! for the gateway's own unit tests and, for other crates, by the cargo
//! feature `test-support` (`gateway = { path = "../gateway", features =
//! ["test-support"] }` in `tests/Cargo.toml`'s dev-dependencies).
//!
//! Guests are built with a nested `cargo build --release` into
//! `$GATEWAY_GUEST_TARGET_DIR`, else `$CARGO_TARGET_DIR/plugin-guests`, else
//! `<workspace>/target/plugin-guests`; results are cached per process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::wasm_build;

/// `<workspace>/tests/guests/<name>`, e.g. `guest_dir("hostile")`.
pub fn guest_dir(name: &str) -> PathBuf {
    workspace_root().join("tests").join("guests").join(name)
}

/// The workspace root (the parent of `gateway/`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Builds the crate in `crate_dir` for `wasm32-unknown-unknown` and returns
/// its component bytes (componentized with wit-component). Cached per process.
pub fn build_component(crate_dir: &Path) -> Result<Vec<u8>, String> {
    let core = build_raw(crate_dir, wasm_build::PLUGIN_TARGET)?;
    wasm_build::componentize(&core)
}

/// Builds the crate in `crate_dir` for `target` and returns the raw output:
/// a core module for `wasm32-unknown-unknown` (with the embedded
/// `component-type` section), a component for `wasm32-wasip2`. Cached per
/// process.
pub fn build_raw(crate_dir: &Path, target: &str) -> Result<Vec<u8>, String> {
    type Builds = HashMap<(PathBuf, String), Vec<u8>>;
    static CACHE: OnceLock<Mutex<Builds>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    // Held during the build: concurrent tests wait for one build.
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    let key = (crate_dir.to_path_buf(), target.to_string());
    if let Some(bytes) = cache.get(&key) {
        return Ok(bytes.clone());
    }
    let path = wasm_build::cargo_build_wasm(crate_dir, target, &target_dir())?;
    let bytes = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
    cache.insert(key, bytes.clone());
    Ok(bytes)
}

/// Where guest builds go (see the module docs).
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GATEWAY_GUEST_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("plugin-guests");
    }
    workspace_root().join("target").join("plugin-guests")
}
