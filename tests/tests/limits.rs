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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reports_each_event_and_stores_what_it_can() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = gateway_e2e::Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/")})).await;
    let events: Vec<Value> = (0..3)
        .map(|i| json!({"type": "x", "payload": {"i": i}}))
        .collect();
    let (status, body) = api
        .post("/v1/events/batch", json!({"events": events}))
        .await;
    assert_eq!(status, 202, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert!(data
        .iter()
        .all(|d| d["id"].as_str().unwrap().starts_with("evt_") && d["deliveries"] == 1));
    rx.wait_for(3, Duration::from_secs(10)).await;

    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"type": "x", "payload": {}}))
        .collect();
    let (status, body) = api
        .post("/v1/events/batch", json!({"events": too_many}))
        .await;
    assert_eq!(
        (status.as_u16(), body["error"]["field"].as_str()),
        (422, Some("events"))
    );
    let (status, body) = api
        .post(
            "/v1/events/batch",
            json!({"events": [{"type": "x", "payload": {}}, {"type": "x", "payload": 5}]}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["error"]["field"].as_str()),
        (422, Some("events[1].payload")),
        "validated before anything is stored"
    );

    assert_eq!(
        put_settings(&gw, &api.id, json!({"rate_limit_per_s": 5})).await,
        200
    );
    let burst: Vec<Value> = (0..12)
        .map(|i| json!({"type": "y", "payload": {"i": i}}))
        .collect();
    let (status, body) = api.post("/v1/events/batch", json!({"events": burst})).await;
    assert_eq!(status, 207, "{body}");
    let data = body["data"].as_array().unwrap();
    let stored = data.iter().filter(|d| d.get("id").is_some()).count();
    let limited = data
        .iter()
        .filter(|d| d["error"]["code"] == "rate_limited")
        .count();
    assert_eq!(stored + limited, 12, "{body}");
    assert!((1..=10).contains(&stored), "{stored} stored at 5/s");
    gw.stop().await;
}
