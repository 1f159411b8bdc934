//! Redis unreachable: the gateway starts anyway, says it is not ready, and
//! answers 503 `store_unavailable` (never a 202 it cannot keep) within a bound.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use gateway_e2e::process::free_port;
use gateway_e2e::{test_config, unique_prefix, TestGateway};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_gateway_starts_and_answers_503() {
    let mut config = test_config(&unique_prefix());
    config.redis_url = format!("redis://127.0.0.1:{}", free_port());
    let gw = TestGateway::start_unready(config).await;
    let anonymous = gw.anonymous();
    let mut ready = None;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("{}/healthz", gw.base)).await {
            ready = Some(r.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready.map(|s| s.as_u16()), Some(200), "the process is up");
    let (status, body) = anonymous.get("/readyz").await;
    assert_eq!(status, 503, "{body}");

    let mut api = gw.anonymous();
    api.key = "gwk_whatever".into();
    let started = Instant::now();
    let (status, body) = api
        .post("/v1/events", json!({"type": "x", "payload": {}}))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable");
    println!("503 after {:?}", started.elapsed());
    let (status, _) = gw.anonymous().call("POST", "/v1/tenants", None).await;
    assert_eq!(
        status, 401,
        "admin auth does not need Redis; the wrong token is still 401"
    );
    gw.stop().await;
}
