//! Redis restarted mid-load (append-only file, fsync always) and Redis absent at
//! startup: ingest answers 503 while it is down, never a 202 it cannot keep;
//! workers reconnect; every accepted event is delivered.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway_e2e::process::free_port;
use gateway_e2e::redis_server::RedisServer;
use gateway_e2e::{test_config, unique_prefix, Receiver, TestGateway};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_load_loses_no_accepted_event() {
    let mut redis = RedisServer::start(free_port(), true).await;
    let mut config = test_config(&unique_prefix());
    config.redis_url = redis.url();
    let gw = TestGateway::start_config(config).await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/"), "retry": {"max_attempts": 10, "initial_delay_ms": 100, "multiplier": 2, "max_delay_ms": 2000}})).await;

    // one producer posting as fast as it can, remembering what got a 202
    let accepted = Arc::new(Mutex::new(HashSet::new()));
    let refused = Arc::new(Mutex::new(0u64));
    let stop = tokio_util::sync::CancellationToken::new();
    let producer = {
        let (api, accepted, refused, stop) =
            (api.clone(), accepted.clone(), refused.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.is_cancelled() && n < 100_000 {
                let (status, body) = api
                    .post("/v1/events", json!({"type": "x", "payload": {"n": n}}))
                    .await;
                match status.as_u16() {
                    202 => {
                        accepted.lock().unwrap().insert(n);
                    }
                    503 => {
                        assert_eq!(body["error"]["code"], "store_unavailable");
                        *refused.lock().unwrap() += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("unexpected {other}: {body}"),
                }
                n += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    redis.kill().await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let refused_while_down = *refused.lock().unwrap();
    redis.restart().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stop.cancel();
    producer.await.unwrap();

    let accepted: HashSet<u64> = accepted.lock().unwrap().clone();
    assert!(
        refused_while_down > 0,
        "nothing was refused while Redis was down"
    );
    assert!(
        accepted.len() > 20,
        "too few events accepted to prove anything: {}",
        accepted.len()
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen: HashSet<u64> = rx
            .received()
            .iter()
            .map(|r| r.json()["n"].as_u64().unwrap())
            .collect();
        let missing: Vec<&u64> = accepted.iter().filter(|n| !seen.contains(n)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} accepted events never delivered, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "redis restart: {} accepted, {} refused with 503 while down",
        accepted.len(),
        refused_while_down
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_started_before_redis_recovers_when_it_comes_up() {
    let port = free_port();
    let mut config = test_config(&unique_prefix());
    config.redis_url = format!("redis://127.0.0.1:{port}");
    let gw = TestGateway::start_unready(config).await;
    let anonymous = gw.anonymous();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(anonymous.get("/readyz").await.0, 503);
    let _redis = RedisServer::start(port, false).await;
    gw.wait_ready().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/")})).await;
    api.event(json!({"type": "x", "payload": {"after": "recovery"}}))
        .await;
    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["after"], "recovery", "workers recovered too");
    gw.stop().await;
}
