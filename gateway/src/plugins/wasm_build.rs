//! Builds a plugin crate to a WebAssembly component with a nested `cargo build`.
//!
//! Why a separate file: it is shared, by `#[path]`, between `gateway/build.rs`
//! (which embeds the built-in plugins) and [`super::testing`] (which builds the
//! hostile test guests), so both produce their wasm the same way. It uses only
//! `std` and `wit-component` and reports errors as `String`, because a build
//! script cannot name the library's error types.
//!
//! The child cargo gets its own `--target-dir` (so it never waits on the outer
//! build's lock), a clean environment (no inherited `RUSTFLAGS`, target dir or
//! build target), and a release profile tuned for call speed (`opt-level = 3`,
//! LTO, one codegen unit, no debug info, `panic = "abort"`).

// Each includer uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target plugins are built for: it imports nothing, unlike `wasm32-wasip2`.
pub const PLUGIN_TARGET: &str = "wasm32-unknown-unknown";

/// Runs `cargo build --release --target <target>` for the crate in `crate_dir`
/// with `target_dir` as its target directory, and returns the path of the
/// built `.wasm` (the crate must be a `cdylib`).
pub fn cargo_build_wasm(
    crate_dir: &Path,
    target: &str,
    target_dir: &Path,
) -> Result<PathBuf, String> {
    // Canonical, so cargo finds the crate's real workspace through symlinks.
    let manifest = crate_dir.join("Cargo.toml");
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let package = package_name(&manifest)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--lib")
        .arg("--target")
        .arg(target)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_PKG_NAME",
        "CARGO_LLVM_COV",
        "LLVM_PROFILE_FILE",
    ] {
        cmd.env_remove(var);
    }
    // opt-level 3, not "s": plugins run on every delivery and are compiled once.
    // Measured (benches/plugin_invoke.rs, compose-template): 45.0 → 37.6 µs per
    // call, fuel 338 k → 266 k; the component grows 169 → 197 KB.
    cmd.env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "3")
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_PANIC", "abort");
    if target == PLUGIN_TARGET {
        // A 128 KiB stack instead of rustc's 1 MiB default: a plugin's whole linear
        // memory is then a couple of hundred KiB, which the pooling allocator resets after
        // every call (a memset), so a smaller memory is a faster call. The worst case the
        // API lets through (the deepest payload, 126 levels, copied into the deepest
        // compose-template body template, 125 levels through `simulate`) needs 64-80 KiB of
        // it: measured by `plugins::tests::builtins_run_on_the_deepest_payload_ingest_accepts`,
        // which fails at 64 KiB and passes at 80 (80-96 KiB, for 121 levels, before
        // compose-template wrote its body straight to text). Against 256 KiB:
        // compose-template call p50 29.9-30.1 -> 27.4-28.2 us (benches/plugin_invoke.rs).
        cmd.env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS",
            "-C link-arg=-zstack-size=131072",
        );
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run cargo for {}: {e}", crate_dir.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            format!("\nhint: rustup target add {target}")
        } else {
            String::new()
        };
        return Err(format!(
            "building {} for {target} failed ({}):\n{stderr}{hint}",
            crate_dir.display(),
            out.status
        ));
    }
    let wasm = target_dir
        .join(target)
        .join("release")
        .join(format!("{}.wasm", package.replace('-', "_")));
    if wasm.is_file() {
        Ok(wasm)
    } else {
        Err(format!(
            "cargo succeeded but {} is missing (is the crate a cdylib?)",
            wasm.display()
        ))
    }
}

/// Turns a core module carrying wit-bindgen's `component-type` section into a
/// component (already-components are returned unchanged).
pub fn componentize(wasm: &[u8]) -> Result<Vec<u8>, String> {
    if is_component(wasm) {
        return Ok(wasm.to_vec());
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(wasm)
        .and_then(|mut enc| enc.encode())
        .map_err(|e| format!("componentizing failed: {e:#}"))
}

/// Whether `wasm` starts with the header of a component (layer 1) rather
/// than a core module (layer 0).
pub fn is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[6..8] == [1, 0]
}

/// Whether the Rust target `target` is installed (checked with `rustc
/// --print sysroot`), so a missing target gets a clear message.
pub fn target_installed(target: &str) -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return true; // cannot tell: let cargo report the problem
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(target)
        .is_dir()
}

/// Reads `package.name` from a manifest without a TOML parser (the first
/// `name = "..."` line after `[package]`).
fn package_name(manifest: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(rest) = line.strip_prefix("name") {
                if let Some(value) = rest.trim_start().strip_prefix('=') {
                    return Ok(value.trim().trim_matches('"').to_string());
                }
            }
        }
    }
    Err(format!("no package name in {}", manifest.display()))
}
