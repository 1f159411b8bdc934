//! Receivers that never answer, drip, or stream without end cost the gateway
//! nothing but the timeout: its memory stays flat.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway_e2e::process::{free_port, gateway_env, GatewayProcess};
use gateway_e2e::{cleanup, client, unique_prefix};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_test-gateway");

/// A receiver that answers 200 and then streams 64 KiB chunks forever.
async fn endless_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async {
        let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
        let stream = futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
        axum::body::Body::from_stream(stream)
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}

/// A receiver that accepts connections and never answers.
async fn silent_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_streams_and_silent_receivers_keep_memory_flat() {
    let prefix = unique_prefix();
    let admin = format!("admin-{}", ulid::Ulid::new());
    let env = gateway_env(&prefix, &admin, &[]);
    let gw = GatewayProcess::start(BIN, free_port(), &env).await;
    let http = client();
    let tenant: Value = http
        .post(format!("{}/v1/tenants", gw.base))
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = tenant["api_key"].as_str().unwrap().to_string();
    for url in [endless_receiver().await, silent_receiver().await] {
        let r = http
            .post(format!("{}/v1/endpoints", gw.base))
            .bearer_auth(&key)
            .json(&json!({"url": url, "timeout_ms": 2000, "retry": {"max_attempts": 1, "initial_delay_ms": 10, "multiplier": 1, "max_delay_ms": 10}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let before = gw.rss_kib().unwrap();
    for i in 0..20 {
        let r = http
            .post(format!("{}/v1/events", gw.base))
            .bearer_auth(&key)
            .json(&json!({"type": "x", "payload": {"i": i}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    // 40 deliveries, each streamed at or held for the whole 2 s timeout
    let mut peak = before;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        peak = peak.max(gw.rss_kib().unwrap());
        let page: Value = http
            .get(format!("{}/v1/logs?status=failed&limit=250", gw.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let failed = page["data"].as_array().unwrap();
        if failed.len() == 40 {
            assert!(
                failed.iter().all(|l| l["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("no answer within")),
                "{page}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries did not all fail at their timeout: {page}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let grown_mib = (peak.saturating_sub(before)) as f64 / 1024.0;
    println!(
        "gateway RSS before {} MiB, peak {} MiB while 20 endless streams ran",
        before / 1024,
        peak / 1024
    );
    // 20 streams of ~2 s at loopback speed would be gigabytes if they were kept.
    assert!(grown_mib < 64.0, "RSS grew by {grown_mib:.1} MiB");
    gw.kill().await;
    cleanup(&prefix).await;
}
