//! Per-tenant limits set by the operator: ingest rate (429 with Retry-After)
//! and an IP allow-list.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway_e2e::{client, TestGateway};
use serde_json::{json, Value};

async fn put_settings(gw: &TestGateway, tenant: &str, settings: Value) -> u16 {
    client()
        .put(format!("{}/v1/tenants/{tenant}/settings", gw.base))
        .bearer_auth(&gw.admin_token)
        .json(&settings)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_rate_gets_429_with_retry_after() {
    let gw = TestGateway::start().await;
    let limited = gw.tenant().await;
    let free = gw.tenant().await;
    assert_eq!(
        put_settings(&gw, &limited.id, json!({"rate_limit_per_s": 5})).await,
        200
    );
    let http = client();
    let mut accepted = 0;
    let mut refused = 0;
    let started = std::time::Instant::now();
    for i in 0..20 {
        let r = http
            .post(format!("{}/v1/events", gw.base))
            .bearer_auth(&limited.key)
            .json(&json!({"type": "x", "payload": {"i": i}}))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            202 => accepted += 1,
            429 => {
                assert_eq!(r.headers().get("retry-after").unwrap(), "1");
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let seconds = started.elapsed().as_secs() + 1;
    assert!(refused > 0, "nothing was refused");
    assert!(
        accepted <= 5 * seconds as usize,
        "{accepted} accepted in {seconds} s windows"
    );
    // the other tenant is not limited
    for _ in 0..20 {
        free.event(json!({"type": "x", "payload": {}})).await;
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    limited
        .event(json!({"type": "x", "payload": {"after": true}}))
        .await;
    let (_, logs) = limited.get("/v1/logs").await;
    assert!(
        logs["data"].as_array().unwrap().is_empty(),
        "no endpoint, no logs; the point is nothing half-written"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ip_allow_list_refuses_other_addresses() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    assert_eq!(
        put_settings(&gw, &api.id, json!({"ip_allowlist": ["10.0.0.0/8"]})).await,
        200
    );
    let (status, body) = api
        .post("/v1/events", json!({"type": "x", "payload": {}}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "ip_not_allowed");
    assert_eq!(
        put_settings(
            &gw,
            &api.id,
            json!({"ip_allowlist": ["127.0.0.0/8", "::1/128"]})
        )
        .await,
        200
    );
    let (status, _) = api
        .post("/v1/events", json!({"type": "x", "payload": {}}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        put_settings(&gw, &api.id, json!({"ip_allowlist": ["nonsense"]})).await,
        422
    );
    assert_eq!(
        put_settings(&gw, "ten_01J0000000000000000000000", json!({})).await,
        404
    );
    let (status, _) = api
        .call(
            "PUT",
            &format!("/v1/tenants/{}/settings", api.id),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 401, "a tenant cannot change its own limits");
    gw.stop().await;
}
