//! Retention: every event and log key carries a TTL, and the janitor trims index
//! entries past the retention, so Redis does not grow without bound.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway::store::{Keys, Store};
use gateway_e2e::{redis_url, Receiver, TestGateway};
use redis::AsyncCommands;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_logs_expire_and_indexes_are_trimmed() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/")})).await;
    let (event, _) = api.event(json!({"type": "x", "payload": {"a": 1}})).await;
    let log = api.deliveries_of(&event).await.remove(0);
    api.wait_log_status(&log, "delivered", Duration::from_secs(10))
        .await;

    let keys = Keys::new(&gw.prefix, 2);
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let retention = 30 * 86_400;
    for key in [
        keys.event(&api.id, &event),
        keys.log(&api.id, &log),
        keys.attempts(&api.id, &log),
    ] {
        let ttl: i64 = conn.ttl(&key).await.unwrap();
        assert!(
            ttl > retention - 60 && ttl <= retention,
            "{key} has TTL {ttl}"
        );
    }

    let store = Store::connect(&redis_url(), keys, 30).unwrap();
    let now = gateway::store::time::now_ms();
    assert_eq!(
        store.trim_expired_indexes(now).await.unwrap(),
        0,
        "nothing is old yet"
    );
    let (_, page) = api.get("/v1/logs").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let later = now + 31 * 86_400 * 1000;
    assert_eq!(
        store.trim_expired_indexes(later).await.unwrap(),
        2,
        "tenant and endpoint index entries"
    );
    let (_, page) = api.get("/v1/logs").await;
    assert_eq!(page["data"], json!([]));
    gw.stop().await;
}
