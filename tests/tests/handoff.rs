//! Handoff at ingest: a process with free delivery slots delivers the events it stores
//! itself, without a trip through the jobs stream, and a handed-off job whose process
//! dies is still delivered, by another process, once its lease ends (and counts towards
//! dead-lettering); a request dropped after its event was stored strands nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use gateway::store::Keys;
use gateway_e2e::process::{free_port, gateway_env, GatewayProcess};
use gateway_e2e::redis_server::RedisServer;
use gateway_e2e::signature::verify_standard;
use gateway_e2e::{cleanup, client, create_tenant, redis_url, unique_prefix, Api, Receiver};
use redis::AsyncCommands;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_test-gateway");

/// A connection to the Redis at `url`.
async fn redis(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A fresh key prefix and admin token for one test's gateways.
fn names() -> (String, String) {
    (unique_prefix(), format!("admin-{}", ulid::Ulid::new()))
}

/// How many jobs the shard's leases set holds (handed off, not finished).
async fn leases(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> u64 {
    conn.zcard(Keys::new(prefix, 1).leases(0)).await.unwrap()
}

/// How many entries the shard's jobs stream has ever had (`XINFO STREAM` entries-added).
async fn stream_entries_added(conn: &mut redis::aio::MultiplexedConnection, prefix: &str) -> i64 {
    let info: redis::Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(Keys::new(prefix, 1).jobs(0))
        .query_async(conn)
        .await
        .unwrap();
    let fields: HashMap<String, redis::Value> = redis::from_redis_value(info).unwrap();
    redis::from_redis_value(fields["entries-added"].clone()).unwrap()
}

/// A tenant with one endpoint pointing at `rx`; the endpoint's signing secret.
async fn tenant_and_endpoint(base: &str, admin: &str, rx: &Receiver) -> (Api, String) {
    let api = create_tenant(base, admin).await;
    let (_, secret) = api.endpoint(json!({"url": rx.url("/")})).await;
    (api, secret)
}

/// Posts one event and expects it stored.
async fn post_event(api: &Api, n: u64) {
    api.event(json!({"type": "x", "payload": {"n": n}})).await;
}

/// Waits until `n` logs have the given status; returns them.
async fn wait_logs(api: &Api, status: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, page) = api
            .get(&format!("/v1/logs?status={status}&limit=100"))
            .await;
        let logs = page["data"].as_array().cloned().unwrap_or_default();
        if logs.len() == n {
            return logs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {n} logs {status}: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stored_with_free_slots_are_delivered_without_the_stream() {
    let (prefix, admin) = names();
    let env = gateway_env(&prefix, &admin, &[]);
    let gateway = GatewayProcess::start(BIN, free_port(), &env).await;
    let rx = Receiver::start().await;
    let (api, secret) = tenant_and_endpoint(&gateway.base, &admin, &rx).await;

    const EVENTS: usize = 5;
    for n in 0..EVENTS {
        post_event(&api, n as u64).await;
    }
    let received = rx.wait_for(EVENTS, Duration::from_secs(10)).await;
    assert_eq!(received.len(), EVENTS);
    assert!(received.iter().all(|r| verify_standard(&secret, r)));
    wait_logs(&api, "delivered", EVENTS).await;

    let mut conn = redis(&redis_url()).await;
    assert_eq!(
        stream_entries_added(&mut conn, &prefix).await,
        0,
        "a job went through the stream although the process had free slots"
    );
    assert_eq!(
        leases(&mut conn, &prefix).await,
        0,
        "a finished delivery kept its lease"
    );
    gateway.kill().await;
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_off_job_of_a_killed_process_is_delivered_after_its_lease() {
    let (prefix, admin) = names();
    let env = gateway_env(&prefix, &admin, &[("GATEWAY_LEASE_MS", "1500")]);
    let port = free_port();
    let first = GatewayProcess::start(BIN, port, &env).await;
    let rx = Receiver::start().await;
    let (api, secret) = tenant_and_endpoint(&first.base, &admin, &rx).await;
    // The first process is killed while its request waits for this answer.
    rx.set_delay(Duration::from_millis(2_000));
    post_event(&api, 1).await;
    rx.wait_for(1, Duration::from_secs(10)).await;
    let mut conn = redis(&redis_url()).await;
    assert_eq!(
        leases(&mut conn, &prefix).await,
        1,
        "the job was not handed off"
    );
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
    wait_logs(&api, "delivered", 1).await;
    assert_eq!(
        stream_entries_added(&mut conn, &prefix).await,
        1,
        "the job should reach the second process through the stream, once"
    );
    assert_eq!(leases(&mut conn, &prefix).await, 0);
    second.kill().await;
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handed_off_delivery_keeps_its_lease() {
    let (prefix, admin) = names();
    let env = gateway_env(&prefix, &admin, &[("GATEWAY_LEASE_MS", "1200")]);
    let gateway = GatewayProcess::start(BIN, free_port(), &env).await;
    let rx = Receiver::start().await;
    let (api, _) = tenant_and_endpoint(&gateway.base, &admin, &rx).await;
    // The answer takes twice the lease (within the 3 s timeout): renewal must keep the
    // job from being taken over and sent again meanwhile.
    rx.set_delay(Duration::from_millis(2_500));
    post_event(&api, 1).await;
    wait_logs(&api, "delivered", 1).await;
    let received = rx.settle(Duration::from_millis(1_500)).await;
    assert_eq!(
        received.len(),
        1,
        "the slow delivery was taken over and sent again"
    );
    let mut conn = redis(&redis_url()).await;
    assert_eq!(stream_entries_added(&mut conn, &prefix).await, 0);
    gateway.kill().await;
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_off_job_that_crashes_its_process_counts_that_lease_towards_dead_lettering() {
    let (prefix, admin) = names();
    let settings = [("GATEWAY_LEASE_MS", "1000"), ("GATEWAY_MAX_LEASES", "2")];
    let healthy_env = gateway_env(&prefix, &admin, &settings);
    let mut crashing_env = healthy_env.clone();
    crashing_env.push(("FAILPOINT", "before_send".to_string()));
    let port = free_port();
    let rx = Receiver::start().await;
    let mut first = GatewayProcess::start(BIN, port, &crashing_env).await;
    let (api, _) = tenant_and_endpoint(&first.base, &admin, &rx).await;
    // The crashing process stores the event and takes the job itself; it may die before
    // its 202 is written, so the answer is not checked.
    let _ = client()
        .post(format!("{}/v1/events", api.base))
        .bearer_auth(&api.key)
        .json(&json!({"type": "x", "payload": {"poison": true}}))
        .send()
        .await;
    first
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("crash 1 (handed off)");
    // No mover has run since: the job is still in the leases set, not on the stream.
    let mut conn = redis(&redis_url()).await;
    assert_eq!(
        leases(&mut conn, &prefix).await,
        1,
        "the job was not handed off"
    );
    // Its lease ends, the job goes on the stream, and a second crashing process takes it.
    let mut second = GatewayProcess::spawn(BIN, port, &crashing_env);
    second
        .wait_exit(Duration::from_secs(15))
        .await
        .expect("crash 2 (from the stream)");
    // Two leases ended in a crash, as on the stream alone: the next taker dead-letters it.
    let healthy = GatewayProcess::start(BIN, port, &healthy_env).await;
    let failed = wait_logs(&api, "failed", 1).await;
    let (_, detail) = api
        .get(&format!("/v1/logs/{}", failed[0]["id"].as_str().unwrap()))
        .await;
    assert!(
        detail["last_error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("dead_lettered"),
        "{detail}"
    );
    assert!(
        rx.received().is_empty(),
        "the poison job reached the receiver"
    );
    healthy.kill().await;
    cleanup(&prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_dropped_after_its_event_was_stored_does_not_strand_the_job() {
    // A Redis of this test's own: it pauses writes, which would stall other tests.
    let redis_server = RedisServer::start(free_port(), false).await;
    let (prefix, admin) = names();
    let mut env = gateway_env(&prefix, &admin, &[("GATEWAY_LEASE_MS", "8000")]);
    env.push(("GATEWAY_REDIS_URL", redis_server.url()));
    let gateway = GatewayProcess::start(BIN, free_port(), &env).await;
    let rx = Receiver::start().await;
    let (api, _) = tenant_and_endpoint(&gateway.base, &admin, &rx).await;
    post_event(&api, 0).await;
    rx.wait_for(1, Duration::from_secs(10)).await;

    // Writes stall for a second; the client gives up after 0.3 s, while its event is
    // stored after the pause, leased to this process.
    let mut conn = redis(&redis_server.url()).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1000)
        .arg("WRITE")
        .query_async(&mut conn)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let dropped = client()
        .post(format!("{}/v1/events", gateway.base))
        .bearer_auth(&api.key)
        .timeout(Duration::from_millis(300))
        .json(&json!({"type": "x", "payload": {"n": 1}}))
        .send()
        .await;
    assert!(dropped.is_err(), "the request was meant to time out");
    // The client's going away cancels the handler (hyper drops its future): checked
    // by running the ingest inline instead of in its own task, when this test fails
    // with "delivered only after 9.3 s" (the stored job waited for its lease to end).
    let received = rx.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(received.len(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "delivered only after {:?}: the job waited for its 8 s lease to end",
        started.elapsed()
    );
    gateway.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_stream_has_a_backlog_new_events_queue_behind_it() {
    const BACKLOG: usize = 2_000;
    let (prefix, admin) = names();
    let port = free_port();
    let rx = Receiver::start().await;
    // A backlog stored by a process without workers.
    let ingest_only = GatewayProcess::start(
        BIN,
        port,
        &gateway_env(&prefix, &admin, &[("GATEWAY_WORKERS_ENABLED", "false")]),
    )
    .await;
    let (api, _) = tenant_and_endpoint(&ingest_only.base, &admin, &rx).await;
    for chunk in 0..BACKLOG / 1_000 {
        let events: Vec<Value> = (0..1_000)
            .map(|i| json!({"type": "x", "payload": {"n": chunk * 1_000 + i}}))
            .collect();
        let (status, body) = api
            .post("/v1/events/batch", json!({ "events": events }))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    ingest_only.kill().await;
    // A process with workers drains it, its slots mostly free (the receiver is fast):
    // the new event still goes on the stream, behind the backlog.
    let worker = GatewayProcess::start(BIN, port, &gateway_env(&prefix, &admin, &[])).await;
    rx.wait_for(1, Duration::from_secs(10)).await;
    post_event(&api, BACKLOG as u64).await;
    let mut conn = redis(&redis_url()).await;
    let received_then = rx.received().len();
    assert!(
        received_then < BACKLOG,
        "the backlog was gone before the new event came; the test proves nothing"
    );
    assert_eq!(
        stream_entries_added(&mut conn, &prefix).await,
        BACKLOG as i64 + 1,
        "a new event was handed off ahead of the backlog"
    );
    assert_eq!(
        rx.wait_for(BACKLOG + 1, Duration::from_secs(60))
            .await
            .len(),
        BACKLOG + 1
    );
    worker.kill().await;
    cleanup(&prefix).await;
}
