//! Builds the built-in plugins (`plugins/compose-template`,
//! `plugins/chatbot-webhook`) to `wasm32-unknown-unknown`, componentizes them
//! with `wit-component` and writes `$OUT_DIR/builtin_plugins.rs`, which
//! `src/plugins/builtin.rs` includes.
//!
//! The nested cargo uses its own target dir (`<target>/plugin-wasm`), so it
//! never waits on the outer build's lock, and a clean environment; see
//! `src/plugins/wasm_build.rs`, shared with the test-guest builder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[path = "src/plugins/wasm_build.rs"]
mod wasm_build;

/// Built-in plugins: reserved name and crate directory under the workspace.
const BUILTINS: &[(&str, &str)] = &[
    ("compose-template", "plugins/compose-template"),
    ("chatbot-webhook", "plugins/chatbot-webhook"),
];

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env("OUT_DIR")?);
    let root = manifest_dir
        .parent()
        .ok_or("gateway/ has no parent directory")?
        .to_path_buf();

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/plugins/wasm_build.rs");
    for p in [
        "plugin-sdk/wit",
        "plugin-sdk/src",
        "plugin-sdk/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(p).display());
    }
    for (_, dir) in BUILTINS {
        for p in ["src", "Cargo.toml"] {
            println!(
                "cargo:rerun-if-changed={}",
                root.join(dir).join(p).display()
            );
        }
    }

    if !wasm_build::target_installed(wasm_build::PLUGIN_TARGET) {
        return Err(format!(
            "the built-in plugins need the {t} target: run `rustup target add {t}`",
            t = wasm_build::PLUGIN_TARGET
        ));
    }

    let target_dir = wasm_target_dir(&out_dir);
    let mut table = String::from("static BUILTINS: &[Builtin] = &[\n");
    for (name, dir) in BUILTINS {
        let crate_dir = root.join(dir);
        if !crate_dir.join("Cargo.toml").is_file() {
            println!(
                "cargo:warning=built-in plugin {name} not found at {}; skipped",
                crate_dir.display()
            );
            continue;
        }
        let wasm_path =
            wasm_build::cargo_build_wasm(&crate_dir, wasm_build::PLUGIN_TARGET, &target_dir)?;
        let core =
            std::fs::read(&wasm_path).map_err(|e| format!("read {}: {e}", wasm_path.display()))?;
        let component =
            wasm_build::componentize(&core).map_err(|e| format!("built-in plugin {name}: {e}"))?;
        let out = out_dir.join(format!("{name}.wasm"));
        std::fs::write(&out, component).map_err(|e| format!("write {}: {e}", out.display()))?;
        let _ = writeln!(
            table,
            "    Builtin {{ name: {name:?}, component: include_bytes!({:?}) }},",
            out.display().to_string()
        );
    }
    table.push_str("];\n");
    let gen = out_dir.join("builtin_plugins.rs");
    std::fs::write(&gen, table).map_err(|e| format!("write {}: {e}", gen.display()))
}

/// `<target>/plugin-wasm`, found from `OUT_DIR` (`<target>/[<triple>/]<profile>/build/<pkg>/out`),
/// so debug, release and clippy builds share one wasm build.
fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("plugin-wasm"))
        .unwrap_or_else(|| out_dir.join("plugin-wasm"))
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}
