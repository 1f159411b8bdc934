//! Nothing lost: a gateway killed with SIGKILL while deliveries are in flight
//! delivers every accepted event after it restarts.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use gateway_e2e::process::{free_port, gateway_env, GatewayProcess};
use gateway_e2e::signature::verify_standard;
use gateway_e2e::{cleanup, client, unique_prefix, Receiver};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_test-gateway");

async fn post(http: &reqwest::Client, url: String, token: &str, body: Value) -> Value {
    let r = http
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("post");
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_loses_nothing() {
    let prefix = unique_prefix();
    let admin = format!("admin-{}", ulid::Ulid::new());
    let env = gateway_env(
        &prefix,
        &admin,
        &[
            ("GATEWAY_LEASE_MS", "2000"),
            ("GATEWAY_WORKER_CONCURRENCY", "8"),
        ],
    );
    let port = free_port();
    let first = GatewayProcess::start(BIN, port, &env).await;
    let http = client();
    let tenant = post(
        &http,
        format!("{}/v1/tenants", first.base),
        &admin,
        json!({}),
    )
    .await;
    let key = tenant["api_key"].as_str().unwrap().to_string();
    let rx = Receiver::start().await;
    rx.set_delay(Duration::from_millis(300));
    // the first answers fail, so retries are pending (delayed) when the process dies
    rx.respond_with(&[500, 500, 503]);
    let endpoint = post(
        &http,
        format!("{}/v1/endpoints", first.base),
        &key,
        json!({"url": rx.url("/"), "retry": {"max_attempts": 5, "initial_delay_ms": 1500, "multiplier": 1, "max_delay_ms": 1500}}),
    )
    .await;
    let secret = endpoint["secret"].as_str().unwrap().to_string();

    const EVENTS: usize = 60;
    for n in 0..EVENTS {
        post(
            &http,
            format!("{}/v1/events", first.base),
            &key,
            json!({"type": "Message.received", "payload": {"n": n}}),
        )
        .await;
    }
    // kill while the first deliveries are in flight and most are still queued
    rx.wait_for(4, Duration::from_secs(10)).await;
    first.kill().await;
    let before = rx.received().len();
    assert!(
        before < EVENTS,
        "all delivered before the kill; the test proves nothing"
    );

    let second = GatewayProcess::start(BIN, port, &env).await;
    rx.set_delay(Duration::ZERO);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut by_n: HashMap<i64, Vec<String>> = HashMap::new();
    while tokio::time::Instant::now() < deadline {
        by_n.clear();
        for r in rx.received() {
            by_n.entry(r.json()["n"].as_i64().unwrap())
                .or_default()
                .push(r.header("webhook-id").unwrap().to_string());
        }
        if by_n.len() == EVENTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        by_n.len(),
        EVENTS,
        "events lost: {} of {EVENTS} delivered",
        by_n.len()
    );
    assert!(rx.received().iter().all(|r| verify_standard(&secret, r)));
    // Every log ends delivered: the jobs the dead process had leased are taken over
    // once their lease expires and sent again (the receiver saw them, the gateway never
    // recorded the answer), so at-least-once shows up as duplicates with the same id.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(format!(
                "{}/v1/logs?status=delivered&limit=250",
                second.base
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let page: Value = r.json().await.unwrap();
        if page["data"].as_array().unwrap().len() == EVENTS {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every log reached delivered: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut by_n: HashMap<i64, Vec<String>> = HashMap::new();
    for r in rx.received() {
        by_n.entry(r.json()["n"].as_i64().unwrap())
            .or_default()
            .push(r.header("webhook-id").unwrap().to_string());
    }
    // three deliveries failed their first attempt: each was sent again after the restart
    assert!(by_n.values().filter(|ids| ids.len() >= 2).count() >= 3);
    let duplicates: usize = by_n.values().map(|ids| ids.len() - 1).sum();
    assert!(
        duplicates >= 1,
        "the deliveries in flight at the kill were never re-sent"
    );
    for ids in by_n.values() {
        assert!(
            ids.iter().all(|id| id == &ids[0]),
            "a redelivery changed its webhook-id: {ids:?}"
        );
    }
    println!("sigkill: {before} delivered before the kill, {EVENTS} after restart, {duplicates} duplicates (same webhook-id)");
    second.kill().await;
    cleanup(&prefix).await;
}
