//! Tenant plugins end to end: the example plugin built as the README says,
//! uploaded and attached; a filter that drops; hostile plugins that each end in
//! their error code while other deliveries go on; upload validation; isolation.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway::plugins::testing::{build_component, build_raw, guest_dir, workspace_root};
use gateway_e2e::signature::verify_standard;
use gateway_e2e::{fast_retry, Api, Receiver, TestGateway};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// The example plugin, built exactly as the README says: `cargo build --release
/// --target wasm32-unknown-unknown` in its crate; the output is uploaded as-is.
fn example_plugin() -> Vec<u8> {
    build_raw(
        &workspace_root().join("plugin-sdk").join("example"),
        "wasm32-unknown-unknown",
    )
    .expect("build example plugin")
}

fn hostile_plugin() -> Vec<u8> {
    build_component(&guest_dir("hostile")).expect("build hostile guest")
}

async fn upload(api: &Api, name: &str, wasm: Vec<u8>) -> (reqwest::StatusCode, Value) {
    api.raw(
        "PUT",
        &format!("/v1/plugins/{name}"),
        &[("content-type", "application/wasm")],
        wasm,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_plugin_uploads_filters_and_transforms_signed_requests() {
    let wasm = tokio::task::spawn_blocking(example_plugin).await.unwrap();
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let (status, info) = upload(&api, "status-filter", wasm).await;
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["name"], "status-filter");
    assert_eq!(
        info["version"].as_str().unwrap().len(),
        64,
        "version is a sha256"
    );

    let rx = Receiver::start().await;
    let config = json!({"drop_statuses": ["read", "deleted"], "header": "x-status"});
    let (_, secret) = api
        .endpoint(json!({"url": rx.url("/hook"), "plugins": [{"plugin": "status-filter", "config": config}]}))
        .await;
    let (delivered_event, _) = api.event(json!({"type": "whatsapp:message:status", "payload": {"id": "m1", "status": "delivered"}})).await;
    let (dropped_event, _) = api
        .event(
            json!({"type": "whatsapp:message:status", "payload": {"id": "m2", "status": "read"}}),
        )
        .await;

    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["id"], "m1");
    assert_eq!(
        got[0].header("x-status"),
        Some("delivered"),
        "the plugin's header"
    );
    assert!(
        verify_standard(&secret, &got[0]),
        "signed over the transformed request"
    );

    let dropped_log = api.deliveries_of(&dropped_event).await.remove(0);
    let log = api.wait_log_status(&dropped_log, "dropped", WAIT).await;
    assert!(
        log["last_error"].as_str().unwrap().contains("read"),
        "{log}"
    );
    let delivered_log = api.deliveries_of(&delivered_event).await.remove(0);
    api.wait_log_status(&delivered_log, "delivered", WAIT).await;
    assert_eq!(
        rx.settle(Duration::from_millis(500)).await.len(),
        1,
        "a dropped event was delivered"
    );
    let (status, _) = api
        .post(&format!("/v1/logs/{dropped_log}/retry"), json!({}))
        .await;
    assert_eq!(status, 409, "a dropped log is not retried");

    // simulate: the same plugin, nothing delivered
    let (status, sim) = api
        .post(
            "/v1/plugins/status-filter/simulate",
            json!({"event": {"type": "x", "payload": {"status": "deleted"}}, "config": config}),
        )
        .await;
    assert_eq!(status, 200, "{sim}");
    assert_eq!(sim["action"], "drop");
    let (_, sim) = api
        .post(
            "/v1/plugins/status-filter/simulate",
            json!({"event": {"type": "x", "payload": {"status": "sent"}}, "config": config}),
        )
        .await;
    assert_eq!(sim["action"], "deliver");
    assert!(sim["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h[0] == "x-status" && h[1] == "sent"));
    assert!(sim["fuel_used"].as_u64().unwrap() > 0);
    // a bad config is refused when the endpoint is created, naming the field
    let (status, body) = api
        .post("/v1/endpoints", json!({"url": rx.url("/"), "plugins": [{"plugin": "status-filter", "config": {"drop_statuses": "read"}}]}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "plugins[0].config");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("drop_statuses"),
        "{body}"
    );
    assert_eq!(rx.received().len(), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_fail_with_their_code_while_others_deliver() {
    let wasm = tokio::task::spawn_blocking(hostile_plugin).await.unwrap();
    let gw = TestGateway::start_with(|c| {
        c.plugins.timeout = Duration::from_millis(100);
        // Fuel high enough that the wall-clock deadline, not fuel, ends the loop.
        c.plugins.fuel = u64::MAX / 4;
        c.plugins.memory_bytes = 16 * 1024 * 1024;
        c.plugins.max_output_bytes = 256 * 1024;
    })
    .await;
    let api = gw.tenant().await;
    let (status, info) = upload(&api, "hostile", wasm).await;
    assert_eq!(status, 201, "{info}");
    let rx = Receiver::start().await;
    let cases = [
        ("loop", "plugin_timeout"),
        ("grow", "plugin_memory"),
        ("recurse", "plugin_trap"),
        ("trap", "plugin_trap"),
        ("big_output", "plugin_invalid_output"),
        ("crlf_header", "plugin_invalid_output"),
        ("error", "plugin_error"),
        ("private_url", "blocked_address"),
    ];
    let mut endpoints = Vec::new();
    for (mode, code) in cases {
        let (id, _) = api
            .endpoint(json!({
                "url": rx.url(&format!("/{mode}")),
                "event_types": [format!("hostile.{mode}")],
                "retry": fast_retry(1),
                "plugins": [{"plugin": "hostile", "config": {"mode": mode, "bytes": 300 * 1024}}]
            }))
            .await;
        endpoints.push((mode, code, id));
    }
    api.endpoint(json!({"url": rx.url("/healthy"), "event_types": ["healthy"]}))
        .await;
    let mut logs = Vec::new();
    for (mode, code, _) in &endpoints {
        let (event, n) = api
            .event(json!({"type": format!("hostile.{mode}"), "payload": {"mode": mode}}))
            .await;
        assert_eq!(n, 1);
        logs.push((*mode, *code, api.deliveries_of(&event).await.remove(0)));
    }
    for i in 0..20 {
        api.event(json!({"type": "healthy", "payload": {"i": i}}))
            .await;
    }
    for (mode, code, log_id) in &logs {
        let log = api.wait_log_status(log_id, "failed", WAIT).await;
        let attempt = &log["attempt_details"][0];
        assert_eq!(attempt["error_code"], *code, "{mode}: {log}");
        assert!(
            attempt["latency_ms"].as_u64().unwrap() < 10_000,
            "{mode} was not bounded: {attempt}"
        );
    }
    let healthy = rx.wait_for(20, WAIT).await;
    assert!(
        healthy.iter().all(|r| r.uri.path() == "/healthy"),
        "a hostile plugin's request went out"
    );
    // the worker is unharmed: more deliveries go through after all that
    api.event(json!({"type": "healthy", "payload": {"after": true}}))
        .await;
    rx.wait_for(21, WAIT).await;
    // plugin failures are retryable by hand
    let (status, _) = api
        .post(&format!("/v1/logs/{}/retry", logs[3].2), json!({}))
        .await;
    assert_eq!(status, 202);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_validated() {
    let (other_world, wasi) = tokio::task::spawn_blocking(|| {
        (
            build_component(&guest_dir("other-world")).expect("other world"),
            build_raw(&guest_dir("hostile"), "wasm32-wasip2").expect("wasip2 build"),
        )
    })
    .await
    .unwrap();
    let gw = TestGateway::start_with(|c| c.plugins.max_upload_bytes = 4 * 1024 * 1024).await;
    let api = gw.tenant().await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"definitely not wasm".to_vec(),
            "plugin_not_wasm",
        ),
        (
            "empty-core-module",
            b"\0asm\x01\0\0\0".to_vec(),
            "plugin_wrong_world",
        ),
        ("other-world", other_world, "plugin_wrong_world"),
        ("wasi", wasi, "plugin_forbidden_import"),
    ];
    for (name, bytes, code) in cases {
        let (status, body) = upload(&api, name, bytes).await;
        assert_eq!(status, 422, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, body) = upload(&api, "huge", vec![0u8; 5 * 1024 * 1024]).await;
    assert_eq!(status, 413, "{body}");
    let (status, _) = api
        .raw(
            "PUT",
            "/v1/plugins/typed",
            &[("content-type", "text/plain")],
            b"\0asm".to_vec(),
        )
        .await;
    assert_eq!(status, 415);
    let (status, _) = upload(&api, "compose-template", b"\0asm\x01\0\0\0".to_vec()).await;
    assert_eq!(status, 409, "built-in names are reserved");
    let (_, list) = api.get("/v1/plugins").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["compose-template", "chatbot-webhook"],
        "nothing invalid was stored"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_are_private_to_their_tenant_and_protected_while_used() {
    let wasm = tokio::task::spawn_blocking(hostile_plugin).await.unwrap();
    let gw = TestGateway::start().await;
    let a = gw.tenant().await;
    let b = gw.tenant().await;
    assert_eq!(upload(&a, "mine", wasm).await.0, 201);
    assert_eq!(b.get("/v1/plugins/mine").await.0, 404);
    let (_, list) = b.get("/v1/plugins").await;
    assert!(!list.to_string().contains("\"mine\""));
    let (status, body) = b.post("/v1/endpoints", json!({"url": "https://example.com", "plugins": [{"plugin": "mine", "config": {"mode": "echo"}}]})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "plugins[0].plugin");
    let (status, body) = b
        .post(
            "/v1/plugins/mine/simulate",
            json!({"event": {"type": "x", "payload": {}}}),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(b.call("DELETE", "/v1/plugins/mine", None).await.0, 404);

    let (endpoint, _) = a.endpoint(json!({"url": "https://example.com", "plugins": [{"plugin": "mine", "config": {"mode": "echo"}}]})).await;
    let (status, body) = a.call("DELETE", "/v1/plugins/mine", None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        a.call("DELETE", &format!("/v1/endpoints/{endpoint}"), None)
            .await
            .0,
        204
    );
    assert_eq!(a.call("DELETE", "/v1/plugins/mine", None).await.0, 204);
    assert_eq!(a.get("/v1/plugins/mine").await.0, 404);
    gw.stop().await;
}
