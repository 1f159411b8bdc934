//! Fan-out: event types with wildcards, channels, explicit endpoint ids, pause and resume.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway_e2e::{Receiver, TestGateway};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_fan_out_by_type_wildcard_and_channel() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let messages = Receiver::start().await;
    let contacts = Receiver::start().await;
    let whatsapp = Receiver::start().await;
    let everything = Receiver::start().await;
    api.endpoint(json!({"url": messages.url("/m"), "event_types": ["Message.*"]}))
        .await;
    api.endpoint(json!({"url": contacts.url("/c"), "event_types": ["Contact.created"]}))
        .await;
    api.endpoint(json!({"url": whatsapp.url("/w"), "channels": ["whatsapp"]}))
        .await;
    api.endpoint(json!({"url": everything.url("/all")})).await;

    let (_, n) = api
        .event(json!({"type": "Message.received", "payload": {"n": 1}, "channel": "whatsapp"}))
        .await;
    assert_eq!(n, 3, "Message.* + whatsapp channel + catch-all");
    let (_, n) = api
        .event(json!({"type": "Contact.created", "payload": {"n": 2}, "channel": "sms"}))
        .await;
    assert_eq!(
        n, 2,
        "Contact.created + catch-all; the whatsapp endpoint does not want sms"
    );
    let (_, n) = api
        .event(json!({"type": "Template.status", "payload": {"n": 3}}))
        .await;
    assert_eq!(n, 2, "no channel named: the whatsapp endpoint gets it too");

    let got = messages.wait_for(1, WAIT).await;
    assert_eq!(got[0].json(), json!({"n": 1}));
    assert_eq!(contacts.wait_for(1, WAIT).await[0].json(), json!({"n": 2}));
    let wa: Vec<_> = whatsapp
        .wait_for(2, WAIT)
        .await
        .iter()
        .map(|r| r.json()["n"].clone())
        .collect();
    assert_eq!(wa.len(), 2);
    assert!(wa.contains(&json!(1)) && wa.contains(&json!(3)));
    assert_eq!(everything.wait_for(3, WAIT).await.len(), 3);

    // nothing extra arrives later
    assert_eq!(messages.settle(QUIET).await.len(), 1);
    assert_eq!(contacts.received().len(), 1);
    assert_eq!(whatsapp.received().len(), 2);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_id_targets_one_endpoint_only() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let a = Receiver::start().await;
    let b = Receiver::start().await;
    let (id_a, _) = api.endpoint(json!({"url": a.url("/")})).await;
    api.endpoint(json!({"url": b.url("/")})).await;
    let (_, n) = api
        .event(json!({"type": "Message.received", "payload": {}, "endpoint_id": id_a}))
        .await;
    assert_eq!(n, 1);
    a.wait_for(1, WAIT).await;
    assert!(b.settle(QUIET).await.is_empty());
    // an unknown endpoint id is refused, not silently dropped
    let (status, body) = api
        .post(
            "/v1/events",
            json!({"type": "x", "payload": {}, "endpoint_id": "ep_01J0000000000000000000000"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "endpoint_id");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_endpoints_receive_nothing_until_resumed() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (id, _) = api.endpoint(json!({"url": rx.url("/")})).await;
    let (status, ep) = api
        .post(&format!("/v1/endpoints/{id}/pause"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(ep["active"], false);
    for i in 0..3 {
        api.event(json!({"type": "Contact.updated", "payload": {"i": i}}))
            .await;
    }
    assert!(
        rx.settle(Duration::from_millis(800)).await.is_empty(),
        "paused endpoint got a delivery"
    );
    let (_, logs) = api.get("/v1/logs?status=pending").await;
    assert_eq!(
        logs["data"].as_array().unwrap().len(),
        3,
        "held deliveries stay pending: {logs}"
    );

    let (status, _) = api
        .post(&format!("/v1/endpoints/{id}/resume"), json!({}))
        .await;
    assert_eq!(status, 200);
    let got = rx.wait_for(3, WAIT).await;
    let mut seen: Vec<i64> = got
        .iter()
        .map(|r| r.json()["i"].as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, vec![0, 1, 2]);
    gw.stop().await;
}
