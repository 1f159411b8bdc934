//! One endpoint cannot take the gateway from everyone else: a per-endpoint rate
//! limit smooths bursts, and a hanging receiver gets only its share of the pool.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gateway::store::time::parse_time;
use gateway_e2e::{fast_retry, Receiver, TestGateway};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_rate_limit_smooths_a_burst_without_failing_it() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/"), "rate_limit_per_s": 5, "retry": fast_retry(1)}))
        .await;
    let mut events = Vec::new();
    for i in 0..15 {
        events.push(api.event(json!({"type": "x", "payload": {"i": i}})).await.0);
    }
    rx.wait_for(15, Duration::from_secs(15)).await;
    let mut per_second: HashMap<u64, usize> = HashMap::new();
    for event in &events {
        let log = api.deliveries_of(event).await.remove(0);
        let detail = api
            .wait_log_status(&log, "delivered", Duration::from_secs(10))
            .await;
        assert_eq!(
            detail["attempts"], 1,
            "waiting for the rate is not a failed attempt"
        );
        let at = parse_time(detail["attempt_details"][0]["at"].as_str().unwrap()).unwrap();
        *per_second.entry(at / 1000).or_default() += 1;
    }
    assert!(
        per_second.values().all(|n| *n <= 5),
        "more than 5 in one second: {per_second:?}"
    );
    assert!(
        per_second.len() >= 3,
        "15 at 5/s need at least three seconds: {per_second:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_endpoint_does_not_hold_back_another_tenant() {
    let gw = TestGateway::start_with(|c| {
        c.worker_concurrency = 16;
        c.endpoint_concurrency = 4;
    })
    .await;
    let slow_tenant = gw.tenant().await;
    let hanging = Receiver::start().await;
    hanging.set_delay(Duration::from_secs(10));
    slow_tenant
        .endpoint(json!({"url": hanging.url("/"), "timeout_ms": 3000, "retry": fast_retry(2)}))
        .await;
    for i in 0..40 {
        slow_tenant
            .event(json!({"type": "x", "payload": {"i": i}}))
            .await;
    }
    hanging.wait_for(4, Duration::from_secs(10)).await;

    let other = gw.tenant().await;
    let rx = Receiver::start().await;
    other.endpoint(json!({"url": rx.url("/")})).await;
    let mut sent = HashMap::new();
    for i in 0..30u64 {
        other.event(json!({"type": "x", "payload": {"i": i}})).await;
        sent.insert(i, Instant::now());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let got = rx.wait_for(30, Duration::from_secs(20)).await;
    let mut latencies: Vec<Duration> = got
        .iter()
        .map(|r| r.at.duration_since(sent[&r.json()["i"].as_u64().unwrap()]))
        .collect();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    println!(
        "other tenant beside a hanging endpoint: p50 {:?}, p99 {:?}",
        latencies[latencies.len() / 2],
        p99
    );
    // The bound: well under the hanging receiver's 3 s timeout.
    assert!(
        p99 < Duration::from_secs(1),
        "p99 {p99:?}: the hanging endpoint held the other tenant back"
    );
    assert!(
        hanging.received().len() <= 16,
        "the hanging endpoint got more than its share"
    );
    gw.stop().await;
}
