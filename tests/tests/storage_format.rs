//! The stored form of events: one string per event (header line and payload), and events
//! that gateways before commit 2ae6182 stored as hashes still delivered and shown.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway::store::event_record::EventFormat;
use gateway::store::Keys;
use gateway_e2e::{Receiver, TestGateway};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// A direct Redis connection.
async fn redis() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(gateway_e2e::redis_url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// The key of an event of a one-shard gateway under `prefix`.
fn event_key(prefix: &str, tenant: &str, event: &str) -> String {
    Keys::new(prefix, 1).event(tenant, event)
}

/// One shard, workers on or off, new events stored in `format`.
fn configure(
    prefix: &str,
    workers: bool,
    format: EventFormat,
) -> impl FnOnce(&mut gateway::config::Config) {
    let prefix = prefix.to_string();
    move |c: &mut gateway::config::Config| {
        c.redis_prefix = prefix;
        c.shards = 1;
        c.workers_enabled = workers;
        c.event_format = format;
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
    let gw = TestGateway::start_with(configure(&prefix, false, EventFormat::String)).await;
    let api = gw.tenant().await;
    let (endpoint, _) = api
        .endpoint(json!({"url": "http://127.0.0.1:9/hook", "event_types": ["Contact.created"]}))
        .await;
    let payload = json!({"name": "Ada", "note": "line\nbreak"});
    let (event_id, _) = api
        .event(json!({"type": "Contact.created", "channel": "sms", "payload": payload}))
        .await;
    let mut conn = redis().await;
    let key = event_key(&prefix, &api.id, &event_id);
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
}

/// An event an older gateway stored as a hash, with its job on the stream, is delivered
/// by this gateway, and the API shows it as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stored_as_a_hash_by_an_older_gateway_is_delivered_and_shown() {
    let prefix = gateway_e2e::unique_prefix();
    let ingest = TestGateway::start_with(configure(&prefix, false, EventFormat::String)).await;
    let api = ingest.tenant().await;
    let rx = Receiver::start().await;
    api.endpoint(json!({"url": rx.url("/hook"), "event_types": ["Message.received"]}))
        .await;
    let payload = json!({"text": "hello", "n": 1});
    let (event_id, _) = api
        .event(json!({"type": "Message.received", "channel": "whatsapp", "payload": payload}))
        .await;
    let deliveries = api.deliveries_of(&event_id).await;
    // A second event stays in the new form: one log page and one read batch hold both.
    let (newer_id, _) = api
        .event(json!({"type": "Message.received", "payload": {"newer": true}}))
        .await;
    let newer = api.deliveries_of(&newer_id).await;
    drop(ingest);

    // Rewrite the stored event the way gateways before commit 2ae6182 wrote it.
    let mut conn = redis().await;
    let key = event_key(&prefix, &api.id, &event_id);
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

    let worker = TestGateway::start_with(configure(&prefix, true, EventFormat::String)).await;
    let api = api.on(&worker.base);
    let got = rx.wait_for(2, WAIT).await;
    let bodies: Vec<Value> = got.iter().map(|r| r.json()).collect();
    assert!(bodies.contains(&payload), "{bodies:?}");
    assert!(bodies.contains(&json!({"newer": true})), "{bodies:?}");
    api.wait_log_status(&deliveries[0], "delivered", WAIT).await;
    let [_, newer_listed, _] = shown(&api, &newer_id, &newer[0]).await;
    assert_eq!(newer_listed["payload"], json!({"newer": true}));
    let [event, listed, detail] = shown(&api, &event_id, &deliveries[0]).await;
    assert_eq!(event["payload"], payload);
    assert_eq!(event["channel"], "whatsapp");
    assert_eq!(event["created_at"], "2025-11-21T04:40:00Z");
    assert_eq!(event["deliveries"], json!(deliveries));
    assert_eq!(listed["payload"], payload);
    assert_eq!(detail["payload"], payload);
    worker.stop().await;
}

/// With `event_format = "hash"` (a fleet that still runs older gateways) events are written
/// exactly as those gateways read them, and delivered and shown as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hash_format_writes_what_older_gateways_read() {
    let prefix = gateway_e2e::unique_prefix();
    let gw = TestGateway::start_with(configure(&prefix, true, EventFormat::Hash)).await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (endpoint, _) = api
        .endpoint(json!({"url": rx.url("/hook"), "event_types": ["Template.status"]}))
        .await;
    let payload = json!({"status": "approved", "text": "a\nb é"});
    let (event_id, _) = api
        .event(json!({"type": "Template.status", "endpoint_id": endpoint, "payload": payload}))
        .await;
    let deliveries = api.deliveries_of(&event_id).await;

    let mut conn = redis().await;
    let key = event_key(&prefix, &api.id, &event_id);
    let stored: std::collections::HashMap<String, String> = conn.hgetall(&key).await.unwrap();
    let mut names: Vec<&str> = stored.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "channel",
            "created_at_ms",
            "deliveries",
            "endpoint_id",
            "payload",
            "type"
        ]
    );
    assert_eq!(stored["type"], "Template.status");
    assert_eq!(stored["channel"], "");
    assert_eq!(stored["endpoint_id"], endpoint);
    assert_eq!(stored["deliveries"], deliveries.join(" "));
    assert_eq!(
        serde_json::from_str::<Value>(&stored["payload"]).unwrap(),
        payload
    );
    assert!(stored["created_at_ms"].parse::<u64>().unwrap() > 1_700_000_000_000);
    let ttl: i64 = conn.ttl(&key).await.unwrap();
    assert!(ttl > 0, "the event has its retention TTL, got {ttl}");

    // A channel with a quote, a backslash and non-ASCII (through cjson in the script) and
    // no delivery at all.
    let channel = "wa\"\\é";
    let (unmatched_id, count) = api
        .event(json!({"type": "Nobody.listens", "channel": channel, "payload": {}}))
        .await;
    assert_eq!(count, 0);
    let unmatched_key = event_key(&prefix, &api.id, &unmatched_id);
    let stored: std::collections::HashMap<String, String> =
        conn.hgetall(&unmatched_key).await.unwrap();
    assert_eq!(stored["channel"], channel);
    assert_eq!(stored["deliveries"], "");
    assert_eq!(stored["endpoint_id"], "");
    let (status, unmatched) = api.get(&format!("/v1/events/{unmatched_id}")).await;
    assert_eq!(status, StatusCode::OK, "{unmatched}");
    assert_eq!(unmatched["channel"], channel);
    assert_eq!(unmatched["deliveries"], json!([]));

    let got = rx.wait_for(1, WAIT).await;
    assert_eq!(got[0].json(), payload);
    let [event, listed, _] = shown(&api, &event_id, &deliveries[0]).await;
    assert_eq!(event["payload"], payload);
    assert_eq!(event["endpoint_id"], endpoint);
    assert_eq!(listed["payload"], payload);
    gw.stop().await;
}
