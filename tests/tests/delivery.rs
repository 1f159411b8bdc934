//! Signed delivery, retries with a stable webhook-id, give-up and manual retry, idempotency.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway_e2e::signature::{verify_hex, verify_standard};
use gateway_e2e::{fast_retry, Receiver, TestGateway};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_verify_standard_and_hex_signatures() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (_, secret) = api
        .endpoint(json!({"url": rx.url("/std"), "event_types": ["Message.received"]}))
        .await;
    let (_, hex_secret) = api
        .endpoint(json!({
            "url": rx.url("/hex"),
            "event_types": ["Template.status"],
            "signature": {"style": "hmac-sha256-hex", "header": "x-gallabox-signature"},
            "headers": {"X-Tenant": "acme"}
        }))
        .await;
    assert!(secret.starts_with("whsec_"));
    api.event(json!({"type": "Message.received", "payload": {"text": "héllo", "n": [1, 2]}}))
        .await;
    api.event(json!({"type": "Template.status", "payload": {"status": "APPROVED"}}))
        .await;
    let got = rx.wait_for(2, WAIT).await;
    let std_req = got.iter().find(|r| r.uri.path() == "/std").unwrap();
    let hex_req = got.iter().find(|r| r.uri.path() == "/hex").unwrap();
    assert!(
        verify_standard(&secret, std_req),
        "standard signature does not verify"
    );
    assert!(
        !verify_standard(&hex_secret, std_req),
        "verifies with the wrong secret"
    );
    assert_eq!(std_req.header("content-type"), Some("application/json"));
    assert_eq!(std_req.json(), json!({"text": "héllo", "n": [1, 2]}));
    assert!(std_req.header("webhook-id").unwrap().starts_with("msg_"));
    assert!(
        verify_hex(&hex_secret, "x-gallabox-signature", hex_req),
        "hex signature does not verify"
    );
    assert!(
        verify_standard(&hex_secret, hex_req),
        "hex style still carries the standard headers"
    );
    assert_eq!(hex_req.header("x-tenant"), Some("acme"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_twice_then_ok_keeps_one_webhook_id_and_logs_three_attempts() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    rx.respond_with(&[500, 503]);
    let (_, secret) = api
        .endpoint(json!({"url": rx.url("/"), "retry": fast_retry(5)}))
        .await;
    let (event_id, _) = api
        .event(json!({"type": "Message.received", "payload": {"a": 1}}))
        .await;
    let got = rx.wait_for(3, WAIT).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("webhook-id").unwrap())
        .collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    assert!(got.iter().all(|r| verify_standard(&secret, r)));
    let log_id = api.deliveries_of(&event_id).await.remove(0);
    assert_eq!(log_id, ids[0], "the log id is the webhook-id");
    let log = api.wait_log_status(&log_id, "delivered", WAIT).await;
    assert_eq!(log["attempts"], 3);
    let codes: Vec<u64> = log["attempt_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 503, 200]);
    let sent = &log["request"];
    assert_eq!(sent["method"], "POST");
    let header_names: Vec<&str> = sent["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    assert!(header_names.contains(&"webhook-signature"));
    assert!(
        !log.to_string().contains(&secret),
        "the secret leaked into the log"
    );
    assert_eq!(rx.settle(Duration::from_millis(400)).await.len(), 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_failing_ends_failed_and_a_manual_retry_delivers() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    rx.set_default(500);
    api.endpoint(json!({"url": rx.url("/"), "retry": fast_retry(3)}))
        .await;
    let (event_id, _) = api
        .event(json!({"type": "Contact.created", "payload": {"id": 7}}))
        .await;
    let log_id = api.deliveries_of(&event_id).await.remove(0);
    let log = api.wait_log_status(&log_id, "failed", WAIT).await;
    assert_eq!(log["attempts"], 3);
    assert_eq!(log["next_attempt_at"], serde_json::Value::Null);
    assert_eq!(
        rx.settle(Duration::from_millis(500)).await.len(),
        3,
        "no attempt after giving up"
    );
    let (_, failed) = api.get("/v1/logs?status=failed").await;
    assert_eq!(failed["data"][0]["id"], log_id.as_str());

    rx.set_default(200);
    let (status, body) = api
        .post(&format!("/v1/logs/{log_id}/retry"), json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    let log = api.wait_log_status(&log_id, "delivered", WAIT).await;
    assert_eq!(log["attempts"], 4);
    let got = rx.wait_for(4, WAIT).await;
    assert_eq!(got[3].header("webhook-id"), got[0].header("webhook-id"));
    // a pending or dropped log cannot be retried; an unknown one is 404
    let (status, _) = api
        .post("/v1/logs/msg_01J0000000000000000000000/retry", json!({}))
        .await;
    assert_eq!(status, 404);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_gives_one_event_and_one_delivery() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/")})).await;
    let body =
        serde_json::to_vec(&json!({"type": "Message.received", "payload": {"x": 1}})).unwrap();
    let headers = [
        ("content-type", "application/json"),
        ("idempotency-key", "order-42"),
    ];
    let (s1, first) = api.raw("POST", "/v1/events", &headers, body.clone()).await;
    let (s2, second) = api.raw("POST", "/v1/events", &headers, body).await;
    assert_eq!((s1.as_u16(), s2.as_u16()), (202, 202));
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["deliveries"], 1);
    rx.wait_for(1, WAIT).await;
    assert_eq!(rx.settle(Duration::from_millis(500)).await.len(), 1);
    let (_, logs) = api.get("/v1/logs").await;
    assert_eq!(logs["data"].as_array().unwrap().len(), 1);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_keeps_signing_beside_the_new_one() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (id, old) = api.endpoint(json!({"url": rx.url("/")})).await;
    let (status, rotated) = api
        .post(&format!("/v1/endpoints/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, 200);
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let (_, shown) = api.get(&format!("/v1/endpoints/{id}/secret")).await;
    assert_eq!(shown["secret"], new.as_str());
    api.event(json!({"type": "x", "payload": {}})).await;
    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(
        got[0]
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );
    assert!(verify_standard(&new, &got[0]));
    assert!(verify_standard(&old, &got[0]));
    // without a grace period the old secret stops at once
    let (_, rotated) = api
        .post(
            &format!("/v1/endpoints/{id}/rotate-secret"),
            json!({"grace_period_secs": 0}),
        )
        .await;
    let newest = rotated["secret"].as_str().unwrap().to_string();
    api.event(json!({"type": "x", "payload": {}})).await;
    let got = rx.wait_for(2, WAIT).await;
    assert!(verify_standard(&newest, &got[1]));
    assert!(
        verify_standard(&old, &got[1]),
        "the first secret is still within its 24 h grace"
    );
    assert!(
        !verify_standard(&new, &got[1]),
        "the second secret had no grace period"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_route_sends_now_and_reports_the_attempt() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (id, secret) = api.endpoint(json!({"url": rx.url("/t")})).await;
    let (status, result) = api
        .post(&format!("/v1/endpoints/{id}/test"), json!({}))
        .await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["status"], "delivered");
    assert_eq!(result["attempt"]["status_code"], 200);
    let got = rx.wait_for(1, WAIT).await;
    assert!(verify_standard(&secret, &got[0]));
    rx.set_default(418);
    let (_, result) = api
        .post(&format!("/v1/endpoints/{id}/test"), json!({}))
        .await;
    assert_eq!(result["status"], "failed");
    assert_eq!(result["attempt"]["status_code"], 418);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_slower_than_the_lease_is_not_sent_twice() {
    let gw = TestGateway::start_with(|c| c.lease_ms = 1_000).await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    rx.set_delay(Duration::from_millis(2_200));
    api.endpoint(json!({"url": rx.url("/"), "timeout_ms": 5000}))
        .await;
    let (event, _) = api.event(json!({"type": "x", "payload": {}})).await;
    let log = api.deliveries_of(&event).await.remove(0);
    api.wait_log_status(&log, "delivered", WAIT).await;
    assert_eq!(
        rx.settle(Duration::from_millis(1_500)).await.len(),
        1,
        "the lease expired under a running delivery"
    );
    gw.stop().await;
}

/// Posts `body` as an event to a fresh gateway with one endpoint and returns the body
/// the receiver got.
async fn deliver_raw(body: Vec<u8>) -> Vec<u8> {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/")})).await;
    let (status, _) = api
        .raw(
            "POST",
            "/v1/events",
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(status, 202);
    let got = rx.wait_for(1, WAIT).await;
    gw.stop().await;
    got[0].body.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payload_arrives_with_its_keys_in_the_order_sent() {
    let body =
        br#"{"type":"x","payload":{"zeta":1,"alpha":{"y":2,"b":3},"mid":[{"k2":1,"k1":2}]}}"#
            .to_vec();
    let got = deliver_raw(body).await;
    assert_eq!(
        &got[..],
        br#"{"zeta":1,"alpha":{"y":2,"b":3},"mid":[{"k2":1,"k1":2}]}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payload_arrives_byte_for_byte_as_sent() {
    // whitespace, a number's spelling, an escape and a repeated key: a parse and
    // re-serialization would change each of them
    let payload = br#"{ "n": 1.50,  "e": "caf\u00e9", "k": 1, "k": 2 }"#;
    let mut body = br#"{"type":"x","payload":"#.to_vec();
    body.extend_from_slice(payload);
    body.push(b'}');
    let got = deliver_raw(body).await;
    assert_eq!(&got[..], &payload[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_grace_is_bounded_and_at_most_ten_old_secrets_sign() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (id, _) = api.endpoint(json!({"url": rx.url("/")})).await;
    let path = format!("/v1/endpoints/{id}/rotate-secret");
    let (status, body) = api
        .post(&path, json!({"grace_period_secs": 7 * 86_400 + 1}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "grace_period_secs");
    for _ in 0..12 {
        let (status, _) = api.post(&path, json!({"grace_period_secs": 3600})).await;
        assert_eq!(status, 200);
    }
    let (_, current) = api.get(&format!("/v1/endpoints/{id}/secret")).await;
    api.event(json!({"type": "x", "payload": {}})).await;
    let got = rx.wait_for(1, WAIT).await;
    let signatures = got[0]
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .count();
    assert_eq!(
        signatures, 11,
        "the current secret and at most 10 old ones sign"
    );
    assert!(verify_standard(
        current["secret"].as_str().unwrap(),
        &got[0]
    ));
    gw.stop().await;
}

/// A job whose stored record cannot be read (its log key holds a string, so `HGETALL`
/// answers WRONGTYPE) fails alone: the good jobs leased in the same read are delivered at
/// once, not held until their lease expires, and the bad one stays leased for takeover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_job_does_not_hold_back_the_rest_of_its_batch() {
    let prefix = gateway_e2e::unique_prefix();
    let configure = |workers: bool| {
        let prefix = prefix.clone();
        move |c: &mut gateway::config::Config| {
            c.redis_prefix = prefix;
            c.shards = 1;
            // Longer than WAIT: a job held back by its batch would miss the deadline.
            c.lease_ms = 60_000;
            c.workers_enabled = workers;
        }
    };
    let ingest = TestGateway::start_with(configure(false)).await;
    let api = ingest.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/hook"), "event_types": ["batch.test"]}))
        .await;

    // The bad job first in the stream, then five good ones: one read leases them all.
    let client = redis::Client::open(gateway_e2e::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let tag = format!("{{{prefix}:s0}}");
    let _: () = redis::cmd("SET")
        .arg(format!("{tag}:t:{}:log:msg_bad", api.id))
        .arg("not a hash")
        .query_async(&mut conn)
        .await
        .unwrap();
    let bad_entry: String = redis::cmd("XADD")
        .arg(format!("{tag}:jobs"))
        .arg("*")
        .arg("t")
        .arg(&api.id)
        .arg("m")
        .arg("msg_bad")
        .arg("e")
        .arg("evt_bad")
        .query_async(&mut conn)
        .await
        .unwrap();
    for i in 0..5 {
        api.event(json!({"type": "batch.test", "payload": {"i": i}}))
            .await;
    }
    drop(ingest);

    let worker = TestGateway::start_with(configure(true)).await;
    rx.wait_for(5, WAIT).await;
    // The five good ones are recorded and acknowledged; the bad job alone is still leased
    // (pending in the group), waiting for takeover.
    let deadline = std::time::Instant::now() + WAIT;
    let pending = loop {
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg(format!("{tag}:jobs"))
            .arg("workers")
            .query_async(&mut conn)
            .await
            .unwrap();
        let redis::Value::Array(summary) = pending else {
            panic!("XPENDING answered {pending:?}");
        };
        if summary.first() == Some(&redis::Value::Int(1)) || std::time::Instant::now() > deadline {
            break summary;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(pending.first(), Some(&redis::Value::Int(1)), "{pending:?}");
    assert_eq!(
        pending.get(1),
        Some(&redis::Value::BulkString(bad_entry.into_bytes())),
        "the job left pending must be the unreadable one: {pending:?}"
    );
    worker.stop().await;
}
