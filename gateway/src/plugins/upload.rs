//! Upload checks: uploaded bytes → [`PreparedPlugin`] (component, sha256,
//! serialized artifact), or an [`UploadError`] the tenant can act on.
//!
//! Why here and not at call time: everything that can be decided about a
//! plugin once is decided at upload — size, format, the world it implements,
//! what it imports, that it compiles and instantiates under the limits — so a
//! delivery only ever meets a plugin that loads.
//!
//! Accepted input: a component, or a core module carrying wit-bindgen's
//! embedded `component-type` section (a `wasm32-unknown-unknown` build), which
//! is componentized with `wit-component` (0.254, the wasm-tools release whose
//! `wasmparser` wasmtime 48 uses). The component must export exactly
//! `validate-config` and `transform` of `gateway:plugin@0.1.0` and import
//! nothing but the type-only `gateway:plugin/types@0.1.0` interface.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmparser::{Parser, Payload};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::Component;

use super::engine::{LoadedPlugin, TYPES_INTERFACE};
use super::runtime;
use super::{PluginEngine, UploadError};

/// The exports a plugin must have, and the only ones it may have.
const EXPORTS: &[&str] = &["validate-config", "transform"];

/// A plugin checked and compiled at upload, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedPlugin {
    /// Hex sha256 of `component`: the plugin's content hash and version.
    pub sha256: String,
    /// The component as stored (componentized if a core module was uploaded).
    pub component: Vec<u8>,
    /// `Component::serialize` output, loadable by [`PluginEngine::load`] on any
    /// engine with the same [`PluginEngine::artifact_key`].
    pub artifact: Vec<u8>,
}

impl PluginEngine {
    /// Checks and compiles an upload. See the [module docs](self) for what is
    /// accepted. Compiling takes milliseconds to seconds: call it from a
    /// blocking thread.
    pub fn prepare(&self, bytes: &[u8]) -> Result<PreparedPlugin, UploadError> {
        self.prepare_and_load(bytes).map(|(prepared, _)| prepared)
    }

    /// [`prepare`](Self::prepare), and also load the result into the cache
    /// without deserializing the artifact again (for built-ins at startup and
    /// for uploads that are used at once).
    pub fn prepare_and_load(
        &self,
        bytes: &[u8],
    ) -> Result<(PreparedPlugin, Arc<LoadedPlugin>), UploadError> {
        let limit = self.limits().max_upload_bytes;
        if bytes.len() > limit {
            return Err(UploadError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let component_bytes = to_component(bytes)?;
        let sha256 = hex::encode(Sha256::digest(&component_bytes));
        if let Some(plugin) = self.loaded(&sha256) {
            // Same content already checked and compiled in this process.
            let artifact = serialize(&plugin)?;
            return Ok((
                PreparedPlugin {
                    sha256,
                    component: component_bytes,
                    artifact,
                },
                plugin,
            ));
        }
        let component =
            Component::new(self.engine(), &component_bytes).map_err(|e| compile_error(&e))?;
        check_world(self, &component)?;
        let plugin = Arc::new(self.pre_instantiate(sha256.clone(), component)?);
        // Instantiate once (nothing is called), so a plugin whose memories or
        // tables cannot fit the limits is refused now rather than on delivery.
        runtime::instantiate_only(self, &plugin).map_err(|e| {
            UploadError::Compile(format!("cannot instantiate within the plugin limits: {e}"))
        })?;
        let artifact = serialize(&plugin)?;
        self.cache_insert(plugin.clone());
        Ok((
            PreparedPlugin {
                sha256,
                component: component_bytes,
                artifact,
            },
            plugin,
        ))
    }
}

/// Components pass through; core modules with an embedded world are
/// componentized; anything else is refused with the reason.
fn to_component(bytes: &[u8]) -> Result<Vec<u8>, UploadError> {
    if bytes.len() < 8 || bytes[..4] != *b"\0asm" {
        return Err(UploadError::NotWasm(
            "the file does not start with the WebAssembly magic bytes `\\0asm`".into(),
        ));
    }
    if Parser::is_component(bytes) {
        return Ok(bytes.to_vec());
    }
    if !Parser::is_core_wasm(bytes) {
        return Err(UploadError::NotWasm(
            "unknown WebAssembly version or layer".into(),
        ));
    }
    let module = scan_core_module(bytes)?;
    if let Some(import) = module.wasi_import {
        return Err(UploadError::ForbiddenImport(format!("`{import}`")));
    }
    if !module.has_component_type {
        return Err(UploadError::WrongWorld(
            "this is a core wasm module without an embedded component type; build the plugin with \
             plugin-sdk (wit-bindgen) for wasm32-unknown-unknown, or upload a component"
                .into(),
        ));
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(bytes)
        .and_then(|mut encoder| encoder.encode())
        .map_err(|e| {
            UploadError::WrongWorld(format!("cannot make a component of this module: {e:#}"))
        })
}

struct CoreModuleInfo {
    has_component_type: bool,
    wasi_import: Option<String>,
}

fn scan_core_module(bytes: &[u8]) -> Result<CoreModuleInfo, UploadError> {
    let mut info = CoreModuleInfo {
        has_component_type: false,
        wasi_import: None,
    };
    for payload in Parser::new(0).parse_all(bytes) {
        let payload =
            payload.map_err(|e| UploadError::NotWasm(format!("malformed module: {e}")))?;
        match payload {
            Payload::CustomSection(s) if s.name().starts_with("component-type") => {
                info.has_component_type = true
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import
                        .map_err(|e| UploadError::NotWasm(format!("malformed import: {e}")))?;
                    if info.wasi_import.is_none() && import.module.starts_with("wasi") {
                        info.wasi_import = Some(format!("{}::{}", import.module, import.name));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(info)
}

/// No imports at all; exactly the world's exports (their types are checked by
/// `PluginPre::new` when the plugin is installed).
fn check_world(engine: &PluginEngine, component: &Component) -> Result<(), UploadError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty
        .imports(engine.engine())
        .filter(|(name, item)| !is_types_interface(engine, name, &item.ty))
        .map(|(name, _)| format!("`{name}`"))
        .collect();
    if !imports.is_empty() {
        return Err(UploadError::ForbiddenImport(imports.join(", ")));
    }
    let exports: Vec<&str> = ty.exports(engine.engine()).map(|(name, _)| name).collect();
    if let Some(extra) = exports.iter().find(|e| !EXPORTS.contains(e)) {
        return Err(UploadError::WrongWorld(format!(
            "unexpected export `{extra}`; a plugin exports only `validate-config` and `transform`"
        )));
    }
    if let Some(missing) = EXPORTS.iter().find(|e| !exports.contains(e)) {
        return Err(UploadError::WrongWorld(format!(
            "missing export `{missing}`"
        )));
    }
    Ok(())
}

/// The world `use`s the records of [`TYPES_INTERFACE`], so a plugin imports
/// that interface; it carries type definitions only (no functions, no
/// resources), so it grants nothing. Anything else is a forbidden import.
fn is_types_interface(engine: &PluginEngine, name: &str, item: &ComponentItem) -> bool {
    match item {
        ComponentItem::ComponentInstance(instance) if name == TYPES_INTERFACE => instance
            .exports(engine.engine())
            .all(|(_, export)| matches!(export.ty, ComponentItem::Type(_))),
        _ => false,
    }
}

fn serialize(plugin: &LoadedPlugin) -> Result<Vec<u8>, UploadError> {
    plugin
        .component
        .serialize()
        .map_err(|e| UploadError::Compile(format!("cannot serialize: {e:#}")))
}

fn compile_error(e: &wasmtime::Error) -> UploadError {
    UploadError::Compile(format!("{e:#}"))
}
