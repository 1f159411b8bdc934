//! The stored form of events: one string per event (header line and payload), and events
//! that gateways before 2026-11-21 stored as hashes still delivered and shown.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway_e2e::{Receiver, TestGateway};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// A direct Redis connection and the shard tag of a one-shard gateway under `prefix`.
async fn redis_and_tag(prefix: &str) -> (redis::aio::MultiplexedConnection, String) {
    let client = redis::Client::open(gateway_e2e::redis_url()).unwrap();
    let conn = client.get_multiplexed_async_connection().await.unwrap();
    (conn, format!("{{{prefix}:s0}}"))
}

fn configure(prefix: &str, workers: bool) -> impl FnOnce(&mut gateway::config::Config) {
    let prefix = prefix.to_string();
    move |c: &mut gateway::config::Config| {
        c.redis_prefix = prefix;
        c.shards = 1;
        c.workers_enabled = workers;
    }
}

/// What a delivery, the event API, the log list and the log detail show of one event.
async fn shown(api: &gateway_e2e::Api, event_id: &str, log_id: &str) -> [Value; 3] {
    let (status, event) = api.get(&format!("/v1/events/{event_id}")).await;
    assert_eq!(status, StatusCode::OK, "{event}");
    let (status, page) = api.get("/v1/logs").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let listed = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["id"] == log_id)
        .cloned()
        .unwrap_or_else(|| panic!("log {log_id} not listed: {page}"));
    let (status, detail) = api.get(&format!("/v1/logs/{log_id}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    [event, listed, detail]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_one_string_and_reads_back_whole() {
    let prefix = gateway_e2e::unique_prefix();
    let gw = TestGateway::start_with(configure(&prefix, false)).await;
    let api = gw.tenant().await;
    let (endpoint, _) = api
        .endpoint(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["Contact.created"]}))
        .await;
    let payload = json!({"name": "Ada", "note": "line\nbreak"});
    let (event_id, _) = api
        .event(json!({"type": "Contact.created", "channel": "sms", "payload": payload}))
        .await;
    let (mut conn, tag) = redis_and_tag(&prefix).await;
    let key = format!("{tag}:t:{}:evt:{event_id}", api.id);
    let kind: String = redis::cmd("TYPE")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(kind, "string");
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!(ttl > 0, "the event has its retention TTL, got {ttl}");

    let deliveries = api.deliveries_of(&event_id).await;
    assert_eq!(deliveries.len(), 1);
    let [event, listed, _] = shown(&api, &event_id, &deliveries[0]).await;
    assert_eq!(event["type"], "Contact.created");
    assert_eq!(event["channel"], "sms");
    assert_eq!(event["endpoint_id"], Value::Null);
    assert_eq!(event["payload"], payload);
    assert_eq!(listed["payload"], payload);
    assert_eq!(listed["endpoint_id"], endpoint);
    gw.stop().await;
    gateway_e2e::cleanup(&prefix).await;
}

/// An event an older gateway stored as a hash, with its job on the stream, is delivered
/// by this gateway, and the API shows it as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stored_as_a_hash_by_an_older_gateway_is_delivered_and_shown() {
    let prefix = gateway_e2e::unique_prefix();
    let ingest = TestGateway::start_with(configure(&prefix, false)).await;
    let api = ingest.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/hook"), "event_types": ["Message.received"]}))
        .await;
    let payload = json!({"text": "hello", "n": 1});
    let (event_id, _) = api
        .event(json!({"type": "Message.received", "channel": "whatsapp", "payload": payload}))
        .await;
    let deliveries = api.deliveries_of(&event_id).await;
    drop(ingest);

    // Rewrite the stored event the way gateways before 2026-11-21 wrote it.
    let (mut conn, tag) = redis_and_tag(&prefix).await;
    let key = format!("{tag}:t:{}:evt:{event_id}", api.id);
    let _: () = conn.del(&key).await.unwrap();
    let _: () = conn
        .hset_multiple(
            &key,
            &[
                ("type", "Message.received".to_string()),
                ("channel", "whatsapp".to_string()),
                ("endpoint_id", String::new()),
                ("payload", payload.to_string()),
                ("created_at_ms", "1763700000000".to_string()),
                ("deliveries", deliveries.join(" ")),
            ],
        )
        .await
        .unwrap();
    let _: () = conn.expire(&key, 3600).await.unwrap();

    let worker = TestGateway::start_with(configure(&prefix, true)).await;
    let api = api.on(&worker.base);
    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(got[0].json(), payload);
    api.wait_log_status(&deliveries[0], "delivered", WAIT).await;
    let [event, listed, detail] = shown(&api, &event_id, &deliveries[0]).await;
    assert_eq!(event["payload"], payload);
    assert_eq!(event["channel"], "whatsapp");
    assert_eq!(event["created_at"], "2025-11-21T04:40:00Z");
    assert_eq!(event["deliveries"], json!(deliveries));
    assert_eq!(listed["payload"], payload);
    assert_eq!(detail["payload"], payload);
    worker.stop().await;
    gateway_e2e::cleanup(&prefix).await;
}
