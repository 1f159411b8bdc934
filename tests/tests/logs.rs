//! Delivery-log queries: filters, time ranges and cursor pagination.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use gateway_e2e::{Receiver, TestGateway};
use serde_json::{json, Value};

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_filter_and_paginate_newest_first() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (a, _) = api
        .endpoint(json!({"url": rx.url("/a"), "event_types": ["Message.*"]}))
        .await;
    let (b, _) = api
        .endpoint(json!({"url": rx.url("/b"), "event_types": ["Contact.created"]}))
        .await;
    for i in 0..5 {
        api.event(json!({"type": "Message.received", "payload": {"i": i}}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let middle = gateway::store::time::rfc3339(gateway::store::time::now_ms());
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 5..8 {
        api.event(json!({"type": "Contact.created", "payload": {"i": i}}))
            .await;
    }
    rx.wait_for(8, Duration::from_secs(10)).await;

    // pages of 3, newest first, no gaps or repeats, ending with a null cursor
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/logs?limit=3&cursor={c}"),
            None => "/v1/logs?limit=3".to_string(),
        };
        let (status, page) = api.get(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 8);
    let mut sorted = seen.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(seen, sorted, "newest first");

    let (_, page) = api.get(&format!("/v1/logs?endpoint_id={b}")).await;
    assert_eq!(ids(&page).len(), 3);
    assert!(page["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["endpoint_id"] == b.as_str() && l["payload"]["i"].as_i64().unwrap() >= 5));
    let (_, page) = api
        .get(&format!(
            "/v1/logs?endpoint_id={a}&event_type=Message.received&status=delivered"
        ))
        .await;
    assert_eq!(ids(&page).len(), 5);
    let (_, page) = api.get("/v1/logs?event_type=Contact.created").await;
    assert_eq!(ids(&page).len(), 3);
    let (_, page) = api.get(&format!("/v1/logs?since={middle}")).await;
    assert_eq!(ids(&page).len(), 3, "since: only the later events");
    let (_, page) = api.get(&format!("/v1/logs?until={middle}")).await;
    assert_eq!(ids(&page).len(), 5, "until: only the earlier events");
    let (_, page) = api.get("/v1/logs?status=failed").await;
    assert_eq!(page["data"], json!([]));
    let (status, _) = api.get("/v1/logs?limit=0").await;
    assert_eq!(status, 422);
    let (status, _) = api.get("/v1/logs?cursor=garbage").await;
    assert_eq!(status, 422);
    gw.stop().await;
}
