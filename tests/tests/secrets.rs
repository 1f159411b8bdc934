//! Secrets never leave the gateway: not in API responses (but the ones that hand a
//! secret out on purpose), not in delivery logs, not in its own log output.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use gateway_e2e::process::{free_port, gateway_env, GatewayProcess};
use gateway_e2e::{cleanup, client, unique_prefix, Receiver};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_test-gateway");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_appear_in_no_response_delivery_log_or_log_line() {
    let prefix = unique_prefix();
    let admin = format!("admin-secret-{}", ulid::Ulid::new());
    let log_path = std::env::temp_dir().join(format!("gw-log-{}.jsonl", ulid::Ulid::new()));
    let env = gateway_env(
        &prefix,
        &admin,
        &[
            ("GATEWAY_LOG_FORMAT", "json"),
            ("RUST_LOG", "debug,hyper=info,h2=info,reqwest=info"),
        ],
    );
    let gw = GatewayProcess::start_logged(BIN, free_port(), &env, &log_path).await;
    let http = client();
    let call = |method: &str, path: &str, token: &str, body: Option<Value>| {
        let mut request = http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", gw.base),
            )
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let (_, tenant) = call("POST", "/v1/tenants", &admin, Some(json!({}))).await;
    let key = serde_json::from_str::<Value>(&tenant).unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_string();

    let endpoint_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let header_secret = "hdr-secret-1234567";
    let token_secret = "tok-secret-4567890";
    let password_secret = "pw-secret-7890123";
    let ok = Receiver::start().await;
    let failing = Receiver::start().await;
    failing.set_default(500);
    let (status, created) = call(
        "POST",
        "/v1/endpoints",
        &key,
        Some(json!({
            "url": ok.url("/ok"), "secret": endpoint_secret, "headers": {"Authorization": format!("Bearer {header_secret}")},
            "plugins": [{"plugin": "chatbot-webhook", "config": {"url": ok.url("/bot"), "auth": {"type": "bearer", "token": token_secret}}}]
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let ok_id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, created) = call(
        "POST",
        "/v1/endpoints",
        &key,
        Some(json!({
            "url": failing.url("/fail"), "retry": {"max_attempts": 2, "initial_delay_ms": 50, "multiplier": 1, "max_delay_ms": 50},
            "plugins": [{"plugin": "chatbot-webhook", "config": {"auth": {"type": "basic", "username": "bob", "password": password_secret}}}]
        })),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let fail_id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, accepted) = call("POST", "/v1/events", &key, Some(json!({"type": "whatsapp:message:in", "channel": "whatsapp", "payload": {"message": {"type": "text", "payload": {"text": "hi"}}}}))).await;
    let event = serde_json::from_str::<Value>(&accepted).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok.wait_for(1, Duration::from_secs(15)).await;
    failing.wait_for(2, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, test) = call("POST", &format!("/v1/endpoints/{fail_id}/test"), &key, None).await;

    let mut seen = vec![test];
    for path in [
        "/v1/endpoints".to_string(),
        format!("/v1/endpoints/{ok_id}"),
        format!("/v1/endpoints/{fail_id}"),
        "/v1/logs".to_string(),
        format!("/v1/events/{event}"),
        "/v1/api-keys".to_string(),
    ] {
        seen.push(call("GET", &path, &key, None).await.1);
    }
    let (_, logs) = call("GET", "/v1/logs", &key, None).await;
    for log in serde_json::from_str::<Value>(&logs).unwrap()["data"]
        .as_array()
        .unwrap()
    {
        seen.push(
            call(
                "GET",
                &format!("/v1/logs/{}", log["id"].as_str().unwrap()),
                &key,
                None,
            )
            .await
            .1,
        );
    }
    seen.push(
        http.get(format!("{}/metrics", gw.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let secrets = [
        endpoint_secret,
        header_secret,
        token_secret,
        password_secret,
        "Ym9iOnB3LXNlY3JldC03ODkwMTIz",
    ];
    for body in &seen {
        for secret in secrets {
            assert!(!body.contains(secret), "{secret} in a response: {body}");
        }
    }
    assert!(
        seen.iter().any(|b| b.contains("********")),
        "masking was not exercised"
    );
    gw.kill().await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.lines().count() > 10,
        "the log captured too little to prove anything:\n{log}"
    );
    for secret in secrets.iter().chain([&key.as_str(), &admin.as_str()]) {
        assert!(!log.contains(secret), "{secret} in the gateway's log");
    }
    let _ = std::fs::remove_file(&log_path);
    cleanup(&prefix).await;
}
