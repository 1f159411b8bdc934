//! Tests against real wasm: the hostile guest (`tests/guests/hostile`), a
//! component of another world (`tests/guests/other-world`), the hostile guest
//! built for `wasm32-wasip2` (imports WASI), and hand-made core modules.
//! Guests are built on first use (see [`super::testing`]); the first run
//! takes a minute.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::testing::{build_component, build_raw, guest_dir};
use super::*;

fn test_limits() -> PluginLimits {
    PluginLimits {
        pool_instances: 8,
        ..PluginLimits::default()
    }
}

fn engine() -> &'static PluginEngine {
    static ENGINE: OnceLock<PluginEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PluginEngine::new(test_limits()).unwrap())
}

fn hostile_component() -> Vec<u8> {
    build_component(&guest_dir("hostile")).unwrap()
}

fn hostile() -> Arc<LoadedPlugin> {
    static PLUGIN: OnceLock<Arc<LoadedPlugin>> = OnceLock::new();
    PLUGIN
        .get_or_init(|| engine().prepare_and_load(&hostile_component()).unwrap().1)
        .clone()
}

fn event(payload: &str) -> PluginEvent {
    PluginEvent {
        id: "evt_1".into(),
        event_type: "Message.received".into(),
        tenant: "ten_1".into(),
        channel: Some("whatsapp".into()),
        created_at: "2025-01-01T00:00:00Z".into(),
        payload: payload.into(),
    }
}

fn request() -> PluginRequest {
    PluginRequest {
        method: "POST".into(),
        url: "https://example.com/hook".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"a":1}"#.to_vec(),
    }
}

fn run(
    engine: &PluginEngine,
    plugin: &LoadedPlugin,
    config: &str,
) -> Result<Invocation, PluginCallError> {
    engine.invoke_blocking(plugin, &event(r#"{"drop":false}"#), request(), config)
}

/// After any failure the engine still runs a well-behaved call.
fn assert_still_works(engine: &PluginEngine, plugin: &LoadedPlugin) {
    let ok = run(engine, plugin, r#"{"mode":"echo"}"#).unwrap();
    assert_eq!(ok.action, PluginAction::Deliver(request()));
}

fn expect_err(config: &str, code: &str) -> PluginCallError {
    let err = expect_err_any(config);
    assert_eq!(err.code(), code, "{config}: {err}");
    err
}

fn expect_err_any(config: &str) -> PluginCallError {
    let plugin = hostile();
    let err = run(engine(), &plugin, config).unwrap_err();
    assert_still_works(engine(), &plugin);
    err
}

#[test]
fn echo_and_drop_if() {
    let plugin = hostile();
    let out = run(engine(), &plugin, r#"{"mode":"echo"}"#).unwrap();
    assert_eq!(out.action, PluginAction::Deliver(request()));
    assert!(out.fuel_used > 0);

    let e = event(r#"{"drop":true}"#);
    let out = engine()
        .invoke_blocking(&plugin, &e, request(), r#"{"mode":"drop_if"}"#)
        .unwrap();
    assert_eq!(
        out.action,
        PluginAction::Drop("payload.drop is true".into())
    );
    let out = run(engine(), &plugin, r#"{"mode":"drop_if"}"#).unwrap();
    assert!(matches!(out.action, PluginAction::Deliver(_)));
}

#[test]
fn plugin_error_is_rejected_with_its_message() {
    let err = expect_err(r#"{"mode":"error"}"#, "plugin_error");
    assert_eq!(err, PluginCallError::Rejected("asked to fail".into()));
}

#[test]
fn validate_config_passes_the_plugin_verdict() {
    let plugin = hostile();
    engine()
        .validate_config_blocking(&plugin, r#"{"mode":"echo"}"#)
        .unwrap();
    let err = engine()
        .validate_config_blocking(&plugin, r#"{"mode":"nope"}"#)
        .unwrap_err();
    assert_eq!(
        err,
        PluginCallError::Rejected("mode: unknown mode `nope`".into())
    );
}

/// A fresh engine and the hostile plugin loaded in it.
fn engine_with(limits: PluginLimits) -> (PluginEngine, Arc<LoadedPlugin>) {
    let engine = PluginEngine::new(limits).unwrap();
    let (_, plugin) = engine.prepare_and_load(&hostile_component()).unwrap();
    (engine, plugin)
}

#[test]
fn infinite_loop_times_out() {
    // Fuel out of the way, so the wall clock is the limit that ends it.
    let limits = PluginLimits {
        fuel: u64::MAX / 4,
        timeout: Duration::from_millis(50),
        ..test_limits()
    };
    let (engine, plugin) = engine_with(limits);
    let err = run(&engine, &plugin, r#"{"mode":"loop"}"#).unwrap_err();
    assert_eq!(err, PluginCallError::Timeout);
    assert_still_works(&engine, &plugin);
}

#[test]
fn a_refused_growth_the_plugin_handled_does_not_relabel_its_timeout() {
    let limits = PluginLimits {
        fuel: u64::MAX / 4,
        timeout: Duration::from_millis(50),
        ..test_limits()
    };
    let (engine, plugin) = engine_with(limits);
    let err = run(&engine, &plugin, r#"{"mode":"refused_then_loop"}"#).unwrap_err();
    assert_eq!(err, PluginCallError::Timeout);
}

/// A plugin that loops does not hold the runtime thread it runs on: on a
/// single-threaded runtime, another task keeps running while the call is in
/// progress (the call yields at every epoch tick), and the call still ends at
/// its deadline.
#[test]
fn infinite_loop_yields_to_other_tasks_until_its_deadline() {
    let limits = PluginLimits {
        fuel: u64::MAX / 4,
        timeout: Duration::from_millis(200),
        ..test_limits()
    };
    let (engine, plugin) = engine_with(limits);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (result, turns) = runtime.block_on(async {
        let calling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let turns = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let other = tokio::spawn({
            let (calling, turns) = (calling.clone(), turns.clone());
            async move {
                while calling.load(std::sync::atomic::Ordering::SeqCst) {
                    turns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            }
        });
        // Let the other task start before the call.
        tokio::task::yield_now().await;
        let before = turns.load(std::sync::atomic::Ordering::SeqCst);
        let result = engine
            .invoke(&plugin, &event("{}"), request(), r#"{"mode":"loop"}"#)
            .await;
        let during = turns.load(std::sync::atomic::Ordering::SeqCst) - before;
        calling.store(false, std::sync::atomic::Ordering::SeqCst);
        other.await.unwrap();
        (result, during)
    });
    assert_eq!(result.unwrap_err(), PluginCallError::Timeout);
    // 200 ms at a 2 ms tick: about 100 yields; a call that never yielded gives 0.
    assert!(
        turns >= 5,
        "the other task ran {turns} times during the call"
    );
}

#[test]
fn infinite_loop_runs_out_of_fuel_when_fuel_is_the_tighter_limit() {
    let limits = PluginLimits {
        fuel: 20_000_000,
        timeout: Duration::from_secs(30),
        ..test_limits()
    };
    let (engine, plugin) = engine_with(limits);
    let err = run(&engine, &plugin, r#"{"mode":"loop"}"#).unwrap_err();
    assert_eq!(err, PluginCallError::OutOfFuel);
    assert_still_works(&engine, &plugin);
}

#[test]
fn infinite_loop_ends_under_default_limits() {
    let err = expect_err_any(r#"{"mode":"loop"}"#);
    assert!(
        matches!(err, PluginCallError::Timeout | PluginCallError::OutOfFuel),
        "{err}"
    );
}

#[test]
fn unbounded_growth_hits_the_memory_limit() {
    expect_err(r#"{"mode":"grow"}"#, "plugin_memory");
}

#[test]
fn deep_recursion_traps() {
    let err = expect_err(r#"{"mode":"recurse"}"#, "plugin_trap");
    assert_eq!(err, PluginCallError::Trap("stack overflow".into()));
}

/// A guest whose shadow stack (in its linear memory) runs out traps like any other
/// out-of-bounds access, and the engine goes on.
#[test]
fn shadow_stack_overflow_traps() {
    let err = expect_err(r#"{"mode":"recurse_in_memory"}"#, "plugin_trap");
    assert_eq!(
        err,
        PluginCallError::Trap("wasm trap: out of bounds memory access".into())
    );
}

#[test]
fn panic_traps() {
    let err = expect_err(r#"{"mode":"trap"}"#, "plugin_trap");
    assert!(err.to_string().contains("unreachable"), "{err}");
}

#[test]
fn big_output_is_refused() {
    let err = expect_err(r#"{"mode":"big_output"}"#, "plugin_invalid_output");
    assert!(err.to_string().contains("limit"), "{err}");
    // Under the limit it is fine.
    let out = run(
        engine(),
        &hostile(),
        r#"{"mode":"big_output","bytes":1000}"#,
    )
    .unwrap();
    assert!(matches!(out.action, PluginAction::Deliver(r) if r.body.len() == 1000));
}

#[test]
fn header_injection_is_refused() {
    let err = expect_err(r#"{"mode":"crlf_header"}"#, "plugin_invalid_output");
    assert!(err.to_string().contains("x-evil"), "{err}");
}

#[test]
fn forbidden_headers_methods_and_urls_are_refused() {
    for (config, needle) in [
        (r#"{"mode":"set","header":["Host","evil.example"]}"#, "Host"),
        (
            r#"{"mode":"set","header":["Transfer-Encoding","chunked"]}"#,
            "Transfer-Encoding",
        ),
        (
            r#"{"mode":"set","header":["Proxy-Authorization","x"]}"#,
            "Proxy-Authorization",
        ),
        (r#"{"mode":"set","header":["bad name","x"]}"#, "bad name"),
        (r#"{"mode":"set","header":["x-nul","a\u0000b"]}"#, "x-nul"),
        (r#"{"mode":"set","method":"TRACE"}"#, "TRACE"),
        (r#"{"mode":"set","url":"ftp://example.com/"}"#, "ftp"),
        (r#"{"mode":"set","url":"/relative"}"#, "/relative"),
    ] {
        let err = expect_err(config, "plugin_invalid_output");
        assert!(err.to_string().contains(needle), "{config}: {err}");
    }
    // Ordinary custom headers pass.
    let out = run(
        engine(),
        &hostile(),
        r#"{"mode":"set","header":["X-Custom","v\tw"]}"#,
    )
    .unwrap();
    assert!(matches!(out.action, PluginAction::Deliver(r) if r.headers.len() == 2));
}

#[test]
fn private_url_is_passed_on_for_the_delivery_ssrf_check() {
    let out = run(engine(), &hostile(), r#"{"mode":"private_url"}"#).unwrap();
    assert!(matches!(out.action, PluginAction::Deliver(r) if r.url == "http://169.254.169.254/"));
}

#[test]
fn core_module_with_embedded_world_is_componentized() {
    let core = build_raw(&guest_dir("hostile"), "wasm32-unknown-unknown").unwrap();
    assert!(!wasmparser::Parser::is_component(&core));
    let prepared = engine().prepare(&core).unwrap();
    assert!(wasmparser::Parser::is_component(&prepared.component));
    assert_eq!(prepared.component, hostile_component());
}

#[test]
fn garbage_is_not_wasm() {
    let err = engine().prepare(b"definitely not wasm").unwrap_err();
    assert!(matches!(err, UploadError::NotWasm(_)), "{err}");
    let err = engine()
        .prepare(b"\0asm\x01\0\0\0\x01\xff\xff")
        .unwrap_err();
    assert!(matches!(err, UploadError::NotWasm(_)), "{err}");
}

#[test]
fn core_module_without_world_is_wrong_world() {
    let err = engine().prepare(b"\0asm\x01\0\0\0").unwrap_err();
    assert!(matches!(err, UploadError::WrongWorld(_)), "{err}");
}

#[test]
fn core_module_importing_wasi_is_forbidden() {
    // (module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    m.extend_from_slice(&[
        0x01, 0x09, 0x01, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f,
    ]);
    m.extend_from_slice(&[0x02, 0x23, 0x01, 0x16]);
    m.extend_from_slice(b"wasi_snapshot_preview1");
    m.push(0x08);
    m.extend_from_slice(b"fd_write");
    m.extend_from_slice(&[0x00, 0x00]);
    let err = engine().prepare(&m).unwrap_err();
    assert!(
        matches!(&err, UploadError::ForbiddenImport(s) if s.contains("fd_write")),
        "{err}"
    );
}

#[test]
fn component_of_another_world_is_refused() {
    let other = build_component(&guest_dir("other-world")).unwrap();
    let err = engine().prepare(&other).unwrap_err();
    assert!(
        matches!(&err, UploadError::WrongWorld(s) if s.contains("hello")),
        "{err}"
    );
}

#[test]
fn wasip2_component_is_refused_naming_the_import() {
    let wasi = build_raw(&guest_dir("hostile"), "wasm32-wasip2").unwrap();
    assert!(wasmparser::Parser::is_component(&wasi));
    let err = engine().prepare(&wasi).unwrap_err();
    assert!(
        matches!(&err, UploadError::ForbiddenImport(s) if s.contains("wasi:")),
        "{err}"
    );
    assert!(err.to_string().contains("wasm32-unknown-unknown"), "{err}");
}

#[test]
fn too_large_upload_is_refused() {
    let limits = PluginLimits {
        max_upload_bytes: 1000,
        ..test_limits()
    };
    let engine = PluginEngine::new(limits).unwrap();
    let err = engine.prepare(&hostile_component()).unwrap_err();
    assert!(
        matches!(err, UploadError::TooLarge { limit: 1000, .. }),
        "{err}"
    );
}

#[test]
fn artifact_round_trips_through_a_new_engine() {
    let prepared = engine().prepare(&hostile_component()).unwrap();
    let other = PluginEngine::new(test_limits()).unwrap();
    assert_eq!(other.artifact_key(), engine().artifact_key());
    assert!(other.loaded(&prepared.sha256).is_none());
    let plugin = other.load(&prepared.sha256, &prepared.artifact).unwrap();
    assert_eq!(plugin.sha256(), prepared.sha256);
    assert!(other.loaded(&prepared.sha256).is_some());
    assert_still_works(&other, &plugin);

    let err = other.load("other", b"not an artifact").unwrap_err();
    assert!(matches!(err, UploadError::Compile(_)), "{err}");
}

#[test]
fn artifact_key_tracks_engine_settings() {
    let a = PluginEngine::new(test_limits()).unwrap();
    let b = PluginEngine::new(PluginLimits {
        memory_bytes: 64 << 20,
        ..test_limits()
    })
    .unwrap();
    assert!(a.artifact_key().starts_with("wasmtime48-"));
    // Memory size is a pool setting, not a codegen one; keys may match or not,
    // but the same settings must always give the same key.
    assert_eq!(
        a.artifact_key(),
        PluginEngine::new(test_limits()).unwrap().artifact_key()
    );
    drop(b);
}

#[test]
fn cache_is_bounded() {
    let engine = PluginEngine::new(PluginLimits {
        cache_entries: 1,
        ..test_limits()
    })
    .unwrap();
    let prepared = engine.prepare(&hostile_component()).unwrap();
    assert!(engine.loaded(&prepared.sha256).is_some());
    engine.load("second", &prepared.artifact).unwrap();
    assert!(engine.loaded("second").is_some());
    assert!(engine.loaded(&prepared.sha256).is_none());
}

#[test]
fn limits_deserialize_with_defaults() {
    let limits: PluginLimits = toml_like(r#"{"timeout_ms": 50, "fuel": 10}"#);
    assert_eq!(limits.timeout, Duration::from_millis(50));
    assert_eq!(limits.fuel, 10);
    assert_eq!(limits.memory_bytes, PluginLimits::default().memory_bytes);
}

fn toml_like(json: &str) -> PluginLimits {
    serde_json::from_str(json).unwrap()
}

#[test]
fn builtins_prepare_and_run() {
    for b in builtin::all() {
        let (_, plugin) = engine()
            .prepare_and_load(b.component)
            .unwrap_or_else(|e| panic!("{}: {e}", b.name));
        // Any outcome but a trap or a limit is fine for an arbitrary config.
        match engine().invoke_blocking(&plugin, &event(r#"{"text":"hi"}"#), request(), "{}") {
            Ok(_) | Err(PluginCallError::Rejected(_)) | Err(PluginCallError::InvalidOutput(_)) => {}
            Err(e) => panic!("{}: {e}", b.name),
        }
    }
}

/// The deepest payload ingest accepts (`api::json::MAX_DEPTH` - 1 levels for the whole
/// body, so one less for the payload), each level an object or an array, runs through both
/// built-ins with variables that copy the deep value, also into the deepest body templates
/// their configs allow (a compose-template body template nested 125 objects deep, what
/// `POST /v1/plugins/{name}/simulate` lets through, `{"config": {"body": ...}}`; an endpoint's
/// `{"plugins": [{"config": {"body": ...}}]}` allows 123; a chatbot-webhook key of 32
/// segments): their wasm stack (128 KiB, see `wasm_build.rs`) holds it, and each body is
/// exactly the value asked for in the place asked for.
#[test]
fn builtins_run_on_the_deepest_payload_ingest_accepts() {
    let levels = crate::api::json::MAX_DEPTH - 2;
    let mut payload = String::from("\"bottom\"");
    for i in 0..levels {
        // The outermost level an object, as ingest requires of a payload.
        payload = if i % 2 == levels % 2 {
            format!("[{payload}]")
        } else {
            format!("{{\"a\":{payload}}}")
        };
    }
    let mut deep_body = String::from("\"@{{payload}}\"");
    for _ in 0..125 {
        deep_body = format!("{{\"b\":{deep_body}}}");
    }
    let deep_config = format!(r#"{{"body": {deep_body}}}"#);
    // The same depth, its bottom a payload field copied whole: compose-template copies that
    // from the payload's text (a loop, not a recursion), not from a parsed value.
    let deep_field_config = deep_config.replace("@{{payload}}", "@{{payload.a}}");
    // And a value from below the top level, which is parsed and serialized (recursively).
    let deep_value_config = deep_config.replace("@{{payload}}", "@{{payload.a.0}}");
    // chatbot-webhook: the deepest body key it accepts (32 segments) holding the payload.
    let deep_key = vec!["k"; 32].join(".");
    let deep_chatbot =
        format!(r#"{{"body": [{{"key": "{deep_key}", "value": "payload", "type": "variable"}}]}}"#);
    // What each copies, as text: the payload `{"a":[...]}` (written without spaces), its
    // field `a` and that array's first item.
    let field = &payload["{\"a\":".len()..payload.len() - 1];
    let item = &field[1..field.len() - 1];
    let in_deep_body = |value: &str| deep_body.replace("\"@{{payload}}\"", value);
    let two_copies = format!(r#"{{"deep":{field},"all":{payload}}}"#);
    let under_deep_key = format!("{}{payload}{}", r#"{"k":"#.repeat(32), "}".repeat(32));
    let configs = [
        (
            "compose-template",
            deep_config.as_str(),
            in_deep_body(&payload),
        ),
        (
            "compose-template",
            deep_field_config.as_str(),
            in_deep_body(field),
        ),
        (
            "compose-template",
            deep_value_config.as_str(),
            in_deep_body(item),
        ),
        (
            "compose-template",
            r#"{"url": "https://example.com/x?v=@{{payload.a}}", "body": {"deep": "@{{payload.a}}", "all": "@{{payload}}"}}"#,
            two_copies.clone(),
        ),
        (
            "chatbot-webhook",
            r#"{"body": [{"key": "deep", "value": "payload.a", "type": "variable"}, {"key": "all", "value": "payload", "type": "variable"}]}"#,
            two_copies,
        ),
        ("chatbot-webhook", deep_chatbot.as_str(), under_deep_key),
    ];
    for (name, config, expected) in configs {
        let builtin = builtin::get(name).unwrap();
        let (_, plugin) = engine().prepare_and_load(builtin.component).unwrap();
        let out = engine()
            .invoke_blocking(&plugin, &event(&payload), request(), config)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let PluginAction::Deliver(sent) = out.action else {
            panic!("{name}: {:?}", out.action);
        };
        // Too deep for serde_json to parse back (its limit is 128 levels): compare the text.
        let body = String::from_utf8_lossy(&sent.body);
        assert_eq!(body, expected, "{name}: {config}");
    }
}
