//! Handoff at ingest: a process with free delivery slots delivers the events it stores
//! itself, without a trip through the jobs stream, and a handed-off job whose process
//! dies is still delivered, by another process, once its lease ends.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use gateway_e2e::process::{free_port, gateway_env, GatewayProcess};
use gateway_e2e::signature::verify_standard;
use gateway_e2e::{cleanup, client, redis_url, unique_prefix, Receiver};
use redis::AsyncCommands;
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

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// How many entries the shard's jobs stream has ever had (`XINFO STREAM` entries-added).
async fn stream_entries_added(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> i64 {
    let info: redis::Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(format!("{{{prefix}:s0}}:jobs"))
        .query_async(conn)
        .await
        .unwrap();
    let fields: HashMap<String, redis::Value> = redis::from_redis_value(info).unwrap();
    redis::from_redis_value(fields["entries-added"].clone()).unwrap()
}

async fn tenant_and_endpoint(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    rx: &Receiver,
) -> (String, String) {
    let tenant = post(http, format!("{base}/v1/tenants"), admin, json!({})).await;
    let key = tenant["api_key"].as_str().unwrap().to_string();
    let endpoint = post(
        http,
        format!("{base}/v1/endpoints"),
        &key,
        json!({"url": rx.url("/")}),
    )
    .await;
    (key, endpoint["secret"].as_str().unwrap().to_string())
}

async fn wait_logs_delivered(http: &reqwest::Client, base: &str, key: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page: Value = http
            .get(format!("{base}/v1/logs?status=delivered&limit=100"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page["data"].as_array().unwrap().len() == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every log reached delivered: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_with_free_slots_are_delivered_without_the_stream() {
    let prefix = unique_prefix();
    let admin = format!("admin-{}", ulid::Ulid::new());
    let env = gateway_env(&prefix, &admin, &[]);
    let gateway = GatewayProcess::start(BIN, free_port(), &env).await;
    let http = client();
    let rx = Receiver::start().await;
    let (key, secret) = tenant_and_endpoint(&http, &gateway.base, &admin, &rx).await;

    const EVENTS: usize = 5;
    for n in 0..EVENTS {
        post(
            &http,
            format!("{}/v1/events", gateway.base),
            &key,
            json!({"type": "Message.received", "payload": {"n": n}}),
        )
        .await;
    }
    let received = rx.wait_for(EVENTS, Duration::from_secs(10)).await;
    assert_eq!(received.len(), EVENTS);
    assert!(received.iter().all(|r| verify_standard(&secret, r)));
    wait_logs_delivered(&http, &gateway.base, &key, EVENTS).await;

    let mut conn = redis().await;
    assert_eq!(
        stream_entries_added(&mut conn, &prefix).await,
        0,
        "a job went through the stream although the process had free slots"
    );
    let leases: u64 = conn.zcard(format!("{{{prefix}:s0}}:leases")).await.unwrap();
    assert_eq!(leases, 0, "a finished delivery kept its lease");
    gateway.kill().await;
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_off_job_of_a_killed_process_is_delivered_after_its_lease() {
    let prefix = unique_prefix();
    let admin = format!("admin-{}", ulid::Ulid::new());
    let env = gateway_env(&prefix, &admin, &[("GATEWAY_LEASE_MS", "1500")]);
    let port = free_port();
    let first = GatewayProcess::start(BIN, port, &env).await;
    let http = client();
    let rx = Receiver::start().await;
    let (key, secret) = tenant_and_endpoint(&http, &first.base, &admin, &rx).await;
    // The first process is killed while its request waits for this answer.
    rx.set_delay(Duration::from_millis(2_000));
    let event = post(
        &http,
        format!("{}/v1/events", first.base),
        &key,
        json!({"type": "Message.received", "payload": {"n": 1}}),
    )
    .await;
    rx.wait_for(1, Duration::from_secs(10)).await;
    let mut conn = redis().await;
    let leased: Vec<String> = conn
        .zrange(format!("{{{prefix}:s0}}:leases"), 0, -1)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1, "the job was not handed off: {leased:?}");
    assert!(leased[0].ends_with(event["id"].as_str().unwrap()));
    first.kill().await;

    rx.set_delay(Duration::ZERO);
    let second = GatewayProcess::start(BIN, port, &env).await;
    let received = rx.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(received.len(), 2, "the job was not delivered again");
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id"),
        "a redelivery keeps its webhook-id"
    );
    assert!(received.iter().all(|r| verify_standard(&secret, r)));
    wait_logs_delivered(&http, &second.base, &key, 1).await;
    assert_eq!(
        stream_entries_added(&mut conn, &prefix).await,
        1,
        "the job should reach the second process through the stream, once"
    );
    let leases: u64 = conn.zcard(format!("{{{prefix}:s0}}:leases")).await.unwrap();
    assert_eq!(leases, 0);
    second.kill().await;
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handed_off_delivery_keeps_its_lease() {
    let prefix = unique_prefix();
    let admin = format!("admin-{}", ulid::Ulid::new());
    let env = gateway_env(&prefix, &admin, &[("GATEWAY_LEASE_MS", "1200")]);
    let gateway = GatewayProcess::start(BIN, free_port(), &env).await;
    let http = client();
    let rx = Receiver::start().await;
    let (key, _) = tenant_and_endpoint(&http, &gateway.base, &admin, &rx).await;
    // The answer takes twice the lease (within the 3 s timeout): renewal must keep the
    // job from being taken over and sent again meanwhile.
    rx.set_delay(Duration::from_millis(2_500));
    post(
        &http,
        format!("{}/v1/events", gateway.base),
        &key,
        json!({"type": "Message.received", "payload": {"n": 1}}),
    )
    .await;
    wait_logs_delivered(&http, &gateway.base, &key, 1).await;
    let received = rx.settle(Duration::from_millis(1_500)).await;
    assert_eq!(
        received.len(),
        1,
        "the slow delivery was taken over and sent again"
    );
    let mut conn = redis().await;
    assert_eq!(stream_entries_added(&mut conn, &prefix).await, 0);
    gateway.kill().await;
    cleanup(&prefix).await;
}
