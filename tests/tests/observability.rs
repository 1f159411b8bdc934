//! Operators and tenants can see what happens: Prometheus metrics and endpoint stats.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway_e2e::{fast_retry, Receiver, TestGateway};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_endpoint_stats_count_outcomes() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let ok = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.set_default(500);
    let (ok_id, _) = api
        .endpoint(json!({"url": ok.url("/"), "event_types": ["good"]}))
        .await;
    let (bad_id, _) = api
        .endpoint(json!({"url": bad.url("/"), "event_types": ["bad"], "retry": fast_retry(2)}))
        .await;
    for _ in 0..3 {
        api.event(json!({"type": "good", "payload": {}})).await;
    }
    let (event, _) = api.event(json!({"type": "bad", "payload": {}})).await;
    ok.wait_for(3, WAIT).await;
    let log = api.deliveries_of(&event).await.remove(0);
    api.wait_log_status(&log, "failed", WAIT).await;

    let text = reqwest::get(format!("{}/metrics", gw.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&text, "gateway_events_accepted_total"), 4.0);
    assert_eq!(
        metric(&text, "gateway_deliveries_total{outcome=\"delivered\"}"),
        3.0
    );
    assert_eq!(
        metric(&text, "gateway_deliveries_total{outcome=\"retry\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "gateway_deliveries_total{outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(metric(&text, "gateway_attempt_duration_seconds_count"), 5.0);
    assert_eq!(
        metric(&text, "gateway_ingest_to_delivery_seconds_count"),
        3.0
    );
    assert_eq!(metric(&text, "gateway_queue_jobs{state=\"ready\"}"), 0.0);
    assert!(
        !text.contains("msg_") && !text.contains("evt_"),
        "ids in metric labels"
    );

    let (status, stats) = api.get(&format!("/v1/endpoints/{ok_id}/stats")).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["windows"][0]["window"], "1h");
    assert_eq!(stats["windows"][0]["delivered"], 3);
    assert_eq!(stats["windows"][0]["success_rate"], 1.0);
    let (_, stats) = api.get(&format!("/v1/endpoints/{bad_id}/stats")).await;
    assert_eq!(stats["windows"][1]["failed"], 1);
    assert_eq!(stats["windows"][1]["attempts_failed"], 1);
    assert_eq!(stats["windows"][2]["success_rate"], 0.0);
    let other = gw.tenant().await;
    assert_eq!(
        other.get(&format!("/v1/endpoints/{ok_id}/stats")).await.0,
        404
    );
    gw.stop().await;
}
