//! API keys and the HTTP front door: keys are hashed, several per tenant and
//! revocable (at once where revoked, within the key cache's TTL in other gateway
//! processes); slow-drip connections are closed while normal clients are served;
//! oversized header blocks are refused.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use gateway_e2e::{redis_url, TestGateway};
use redis::AsyncCommands;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_hashed_multiple_and_revocable() {
    let gw = TestGateway::start().await;
    let first = gw.tenant().await;
    let other = gw.tenant().await;
    let (status, created) = first.post("/v1/api-keys", json!({"name": "ci"})).await;
    assert_eq!(status, 201, "{created}");
    let second_key = created["api_key"].as_str().unwrap().to_string();
    let second_id = created["id"].as_str().unwrap().to_string();
    assert!(second_key.starts_with("gwk_"));

    let (_, list) = first.get("/v1/api-keys").await;
    let listed = list["data"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let text = list.to_string();
    assert!(
        !text.contains(&second_key) && !text.contains(&first.key),
        "a key is listed in clear"
    );
    assert!(!text.contains("hash"), "hashes are not shown");

    // only hashes are in Redis
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}:*", gw.prefix))
            .query_async(&mut conn)
            .await
            .unwrap();
        for key in keys {
            assert!(
                !key.contains(&second_key) && !key.contains(&first.key),
                "plaintext key in a key name"
            );
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            if kind == "string" {
                let value: String = conn.get(&key).await.unwrap();
                assert!(
                    !value.contains(&second_key) && !value.contains(&first.key),
                    "plaintext key stored"
                );
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }

    let mut second = first.clone();
    second.key = second_key;
    assert_eq!(
        second.get("/v1/endpoints").await.0,
        200,
        "the new key works"
    );
    let first_id = listed
        .iter()
        .find(|k| k["id"] != second_id.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        other
            .call("DELETE", &format!("/v1/api-keys/{first_id}"), None)
            .await
            .0,
        404,
        "another tenant's key"
    );
    assert_eq!(
        second
            .call("DELETE", &format!("/v1/api-keys/{first_id}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        first.get("/v1/endpoints").await.0,
        401,
        "a revoked key stops working at once"
    );
    let (status, body) = second
        .call("DELETE", &format!("/v1/api-keys/{second_id}"), None)
        .await;
    assert_eq!(status, 409, "the last key cannot be revoked: {body}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_gateway_stops_working_on_another_within_the_cache_ttl() {
    let prefix = gateway_e2e::unique_prefix();
    let same_data = |c: &mut gateway::config::Config| c.redis_prefix = prefix.clone();
    let revoking = TestGateway::start_with(same_data).await;
    let other = TestGateway::start_with(same_data).await;
    let tenant = revoking.tenant().await;
    let (status, created) = tenant.post("/v1/api-keys", json!({"name": "spare"})).await;
    assert_eq!(status, 201, "{created}");

    // The other gateway has just seen the first key work, so it holds it in its cache.
    let mut on_other = tenant.clone();
    on_other.base = other.base.clone();
    assert_eq!(on_other.get("/v1/endpoints").await.0, 200);
    let (_, list) = tenant.get("/v1/api-keys").await;
    let first_id = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] != created["id"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut spare = tenant.clone();
    spare.key = created["api_key"].as_str().unwrap().to_string();
    let revoked_at = Instant::now();
    assert_eq!(
        spare
            .call("DELETE", &format!("/v1/api-keys/{first_id}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        tenant.get("/v1/endpoints").await.0,
        401,
        "where it was revoked: at once"
    );

    let ttl = gateway::store::api_key_cache::CACHE_TTL;
    let refused_after = loop {
        if on_other.get("/v1/endpoints").await.0 == 401 {
            break revoked_at.elapsed();
        }
        assert!(
            revoked_at.elapsed() < ttl + Duration::from_secs(2),
            "the other gateway still accepts the revoked key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "the other gateway refused the revoked key after {refused_after:?} (cache TTL {ttl:?})"
    );
    assert!(
        refused_after <= ttl + Duration::from_secs(1),
        "{refused_after:?}"
    );
    revoking.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_drip_connections_are_closed_and_others_are_served() {
    let gw = TestGateway::start().await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // normal clients are served meanwhile
    let started = Instant::now();
    for _ in 0..20 {
        let status = reqwest::get(format!("{}/healthz", gw.base))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    println!(
        "20 requests beside 200 stalled connections in {:?}",
        started.elapsed()
    );
    // every stalled connection is closed once the header timeout passes
    let deadline = Instant::now() + Duration::from_secs(20);
    for mut stream in slow {
        let mut buf = [0u8; 512];
        let left = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(left, stream.read(&mut buf)).await;
        assert!(
            read.is_ok(),
            "a slow-drip connection was still open after 20 s"
        );
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_header_blocks_are_refused() {
    let gw = TestGateway::start().await;
    let addr = gw.base.trim_start_matches("http://").to_string();
    let mut request = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..150 {
        request.push_str(&format!("X-H{i}: v\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let head = String::from_utf8_lossy(&answer);
    assert!(head.starts_with("HTTP/1.1 431"), "too many headers: {head}");
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let _ = stream.write_all(huge.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let head = String::from_utf8_lossy(&answer);
    assert!(
        head.is_empty() || head.starts_with("HTTP/1.1 431"),
        "a 100 KiB header: {head}"
    );
    assert_eq!(
        reqwest::get(format!("{}/healthz", gw.base))
            .await
            .unwrap()
            .status(),
        200
    );
    gw.stop().await;
}
