//! The API contract: bad input gets its status and stable code, tenants are
//! isolated, the catalog and OpenAPI document are served, health and readiness.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use gateway_e2e::{Receiver, TestGateway};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_gets_its_status_and_code() {
    let gw = TestGateway::start_with(|c| c.max_body_bytes = 64 * 1024).await;
    let api = gw.tenant().await;
    let json_headers = [("content-type", "application/json")];

    let (status, body) = api
        .raw("POST", "/v1/events", &json_headers, b"{\"type\": ".to_vec())
        .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (400, Some("malformed_json")),
        "{body}"
    );

    let deep = format!(
        "{{\"type\":\"x\",\"payload\":{}{}}}",
        "{\"a\":".repeat(300),
        "1".to_string() + &"}".repeat(300)
    );
    let (status, body) = api
        .raw("POST", "/v1/events", &json_headers, deep.into_bytes())
        .await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (400, Some("malformed_json")),
        "deep nesting: {body}"
    );

    // Payloads are stored as sent, so what could not be read back is refused up front;
    // a field given twice is refused rather than one of its values picked.
    let raw_cases: [(&[u8], &str); 3] = [
        (br#"{"type":"x","payload":{"s":"\ud800"}}"#, "payload"),
        (br#"{"type":"x","payload":{"n":1e400}}"#, "payload"),
        (br#"{"type":"x","type":"y","payload":{}}"#, "type"),
    ];
    for (body, field) in raw_cases {
        let (status, answer) = api
            .raw("POST", "/v1/events", &json_headers, body.to_vec())
            .await;
        let text = String::from_utf8_lossy(body);
        assert_eq!(status, 422, "{text} -> {answer}");
        assert_eq!(answer["error"]["code"], "validation_error", "{text}");
        assert!(
            answer["error"]["field"]
                .as_str()
                .unwrap_or_default()
                .contains(field)
                || answer["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(field),
            "{text} -> {answer}"
        );
    }

    let cases = [
        (json!({"type": "x", "payload": [1, 2]}), "payload"),
        (json!({"type": "", "payload": {}}), "type"),
        (json!({"payload": {}}), "body"),
        (
            json!({"type": "x", "payload": {}, "channel": "has space"}),
            "channel",
        ),
    ];
    for (event, field) in cases {
        let (status, body) = api.post("/v1/events", event.clone()).await;
        assert_eq!(status, 422, "{event} -> {body}");
        assert_eq!(body["error"]["code"], "validation_error");
        assert!(
            body["error"]["field"].as_str().unwrap().contains(field)
                || body["error"]["message"].as_str().unwrap().contains(field),
            "{event} -> {body}"
        );
    }
    let endpoint_cases = [
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "ftp://example.com"}), "url"),
        (
            json!({"url": "https://example.com", "method": "BREW"}),
            "method",
        ),
        (
            json!({"url": "https://example.com", "retry": {"max_attempts": 0}}),
            "retry.max_attempts",
        ),
        (
            json!({"url": "https://example.com", "headers": {"Host": "evil"}}),
            "headers.Host",
        ),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
            "url",
        ),
        (
            json!({"url": "https://example.com", "plugins": [{"plugin": "no-such-plugin"}]}),
            "plugins[0].plugin",
        ),
    ];
    for (endpoint, field) in endpoint_cases {
        let (status, body) = api.post("/v1/endpoints", endpoint.clone()).await;
        assert_eq!(status, 422, "{endpoint} -> {body}");
        assert_eq!(body["error"]["field"], field, "{endpoint} -> {body}");
    }

    let big = json!({"type": "x", "payload": {"blob": "a".repeat(70 * 1024)}});
    let (status, body) = api.post("/v1/events", big).await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );

    let anonymous = gw.anonymous();
    let (status, body) = anonymous.get("/v1/endpoints").await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let mut wrong = api.clone();
    wrong.key = "gwk_0000".into();
    let (status, _) = wrong
        .post("/v1/events", json!({"type": "x", "payload": {}}))
        .await;
    assert_eq!(status, 401);
    let (status, _) = api.post("/v1/tenants", json!({})).await;
    assert_eq!(status, 401, "a tenant key is not the admin token");

    let (status, body) = api.get("/v1/logs?status=bogus").await;
    assert_eq!(
        (status.as_u16(), body["error"]["field"].as_str()),
        (422, Some("status"))
    );
    let (status, body) = api.get("/v1/nothing-here").await;
    assert_eq!(
        (status.as_u16(), body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_b_cannot_see_or_touch_tenant_a() {
    let gw = TestGateway::start().await;
    let a = gw.tenant().await;
    let b = gw.tenant().await;
    let rx = Receiver::start().await;
    let (endpoint, _) = a.endpoint(json!({"url": rx.url("/")})).await;
    let (event, _) = a
        .event(json!({"type": "Message.received", "payload": {"secret": "a's"}}))
        .await;
    let log = a.deliveries_of(&event).await.remove(0);
    a.wait_log_status(&log, "delivered", std::time::Duration::from_secs(10))
        .await;

    for path in [
        format!("/v1/endpoints/{endpoint}"),
        format!("/v1/endpoints/{endpoint}/secret"),
        format!("/v1/events/{event}"),
        format!("/v1/logs/{log}"),
    ] {
        let (status, body) = b.get(&path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    for (method, path) in [
        ("PATCH", format!("/v1/endpoints/{endpoint}")),
        ("DELETE", format!("/v1/endpoints/{endpoint}")),
        ("POST", format!("/v1/endpoints/{endpoint}/pause")),
        ("POST", format!("/v1/endpoints/{endpoint}/rotate-secret")),
        ("POST", format!("/v1/logs/{log}/retry")),
    ] {
        let (status, body) = b.call(method, &path, Some(json!({}))).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (status, listed) = b.get("/v1/endpoints").await;
    assert_eq!(listed["data"], json!([]), "{status} {listed}");
    let (status, logs) = b.get("/v1/logs").await;
    assert_eq!(logs["data"], json!([]), "{status} {logs}");
    // B's events never reach A's endpoint, even naming it
    let (status, _) = b
        .post(
            "/v1/events",
            json!({"type": "x", "payload": {}, "endpoint_id": endpoint}),
        )
        .await;
    assert_eq!(status, 422);
    let (_, n) = b
        .event(json!({"type": "Message.received", "payload": {}}))
        .await;
    assert_eq!(n, 0);
    // A still has everything
    let (status, _) = a.get(&format!("/v1/endpoints/{endpoint}")).await;
    assert_eq!(status, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_hide_secrets_and_accept_patches() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (id, returned) = api
        .endpoint(json!({"url": "https://example.com/a", "secret": secret, "headers": {"Authorization": "Bearer tok-123"}}))
        .await;
    assert_eq!(returned, secret, "create returns the secret once");
    let (_, one) = api.get(&format!("/v1/endpoints/{id}")).await;
    let (_, all) = api.get("/v1/endpoints").await;
    for body in [&one, &all] {
        let text = body.to_string();
        assert!(
            !text.contains(secret) && !text.contains("tok-123"),
            "secret shown: {text}"
        );
    }
    let (status, patched) = api
        .call(
            "PATCH",
            &format!("/v1/endpoints/{id}"),
            Some(json!({"event_types": ["Message.*"], "timeout_ms": 1500})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["event_types"], json!(["Message.*"]));
    assert_eq!(patched["url"], "https://example.com/a");
    assert_eq!(patched["method"], "POST");
    let (status, _) = api
        .call(
            "PATCH",
            &format!("/v1/endpoints/{id}"),
            Some(json!({"timeout_ms": 1})),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = api
        .call("DELETE", &format!("/v1/endpoints/{id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api.get(&format!("/v1/endpoints/{id}")).await;
    assert_eq!(status, 404);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_openapi_health_and_event_lookup() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let (status, types) = api.get("/v1/event-types").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in [
        "Contact.created",
        "Conversation.created",
        "Message.received",
        "Template.status",
        "whatsapp:message:status",
        "whatsapp:message:in",
        "message_status",
        "incoming_message",
    ] {
        assert!(names.contains(&name), "{name} missing");
    }
    let (status, _) = api
        .post(
            "/v1/event-types",
            json!({"name": "Order.shipped", "description": "An order left the warehouse"}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, types) = api.get("/v1/event-types").await;
    assert!(types["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "Order.shipped" && t["builtin"] == false));

    let (id, n) = api
        .event(json!({"type": "Unknown.kind", "payload": {"k": "v"}, "channel": "sms"}))
        .await;
    assert_eq!(n, 0, "unknown types are accepted");
    let (status, event) = api.get(&format!("/v1/events/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(event["payload"], json!({"k": "v"}));
    assert_eq!(event["channel"], "sms");
    assert_eq!(event["type"], "Unknown.kind");

    let anonymous = gw.anonymous();
    let (status, doc) = anonymous.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/events",
        "/v1/endpoints/{id}/rotate-secret",
        "/v1/logs",
        "/v1/plugins/{name}/simulate",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }
    assert_eq!(anonymous.get("/healthz").await.0, 200);
    assert_eq!(anonymous.get("/readyz").await.0, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_endpoint_write_is_refused_instead_of_undoing_a_newer_one() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let (id, _) = api.endpoint(json!({"url": "https://example.com/a"})).await;
    let store = gateway::store::Store::connect(
        &gateway_e2e::redis_url(),
        gateway::store::Keys::new(&gw.prefix, 2),
        std::time::Duration::from_secs(86_400),
    )
    .unwrap();
    let mut stale = store.get_endpoint(&api.id, &id).await.unwrap();
    let (_, rotated) = api
        .post(&format!("/v1/endpoints/{id}/rotate-secret"), json!({}))
        .await;
    stale.active = false;
    let err = store.put_endpoint(&api.id, &mut stale).await.unwrap_err();
    assert!(
        matches!(err, gateway::store::StoreError::Conflict(_)),
        "{err}"
    );
    let (_, secret) = api.get(&format!("/v1/endpoints/{id}/secret")).await;
    assert_eq!(secret["secret"], rotated["secret"], "the rotation survived");
    let (_, endpoint) = api.get(&format!("/v1/endpoints/{id}")).await;
    assert_eq!(endpoint["active"], true);
    // a write based on a deleted endpoint does not bring it back
    let mut fresh = store.get_endpoint(&api.id, &id).await.unwrap();
    assert_eq!(
        api.call("DELETE", &format!("/v1/endpoints/{id}"), None)
            .await
            .0,
        204
    );
    assert!(store.put_endpoint(&api.id, &mut fresh).await.is_err());
    assert_eq!(api.get(&format!("/v1/endpoints/{id}")).await.0, 404);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_back_a_masked_endpoint_keeps_its_secrets() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    let (id, _) = api
        .endpoint(json!({
            "url": rx.url("/"),
            "headers": {"X-Api-Key": "keep-me-123"},
            "plugins": [{"plugin": "chatbot-webhook", "config": {"auth": {"type": "bearer", "token": "tok-keep-456"}}}]
        }))
        .await;
    let (_, shown) = api.get(&format!("/v1/endpoints/{id}")).await;
    assert_eq!(shown["headers"]["X-Api-Key"], "********");
    let (status, _) = api
        .call("PATCH", &format!("/v1/endpoints/{id}"), Some(json!({"headers": shown["headers"], "plugins": shown["plugins"], "description": "edited"})))
        .await;
    assert_eq!(status, 200);
    api.event(json!({"type": "whatsapp:message:in", "payload": {}}))
        .await;
    let got = rx.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(
        got[0].header("authorization"),
        Some("Bearer tok-keep-456"),
        "the plugin's token survived"
    );
    gw.stop().await;
}

/// A client that sends a body over the limit in full before it reads the answer (as HTTP
/// clients do) reads a JSON 413, not a broken pipe or a reset: the gateway reads what it
/// refuses to its end before answering. 15 MiB is more than loopback's socket buffers hold
/// (a few MiB), so a server that answered and closed without reading would break the
/// write or reset the connection before the answer could be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_sent_whole_gets_its_413() {
    use tokio::io::AsyncWriteExt;

    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let address = api.base.trim_start_matches("http://").to_string();
    let body = vec![b'a'; 15 << 20];
    for (method, path, content_type) in [
        ("POST", "/v1/events", "application/json"),
        ("PUT", "/v1/plugins/huge", "application/wasm"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            api.key,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
            .write_all(&body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: the body could not be sent: {e}"));
        let (status, error) = read_answer(&mut stream).await;
        assert_eq!(status, 413, "{method} {path}: {error}");
        assert_eq!(
            error["error"]["code"], "payload_too_large",
            "{method} {path}"
        );
        // The refused body was read to its end: the connection takes the next request.
        let next = format!(
            "GET /v1/endpoints HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\r\n",
            api.key
        );
        stream.write_all(next.as_bytes()).await.unwrap();
        let (status, list) = read_answer(&mut stream).await;
        assert_eq!(status, 200, "{method} {path}, then a GET: {list}");
    }
    gw.stop().await;
}

/// Reads one HTTP/1.1 answer with a `Content-Length` body from `stream`: its status and
/// its JSON body.
async fn read_answer(stream: &mut tokio::net::TcpStream) -> (u16, serde_json::Value) {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = read_more(stream, &mut buf).await;
        answer.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no content-length: {head}"));
    while answer.len() < head_end + length {
        let n = read_more(stream, &mut buf).await;
        answer.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::from_slice(&answer[head_end..head_end + length])
        .unwrap_or_else(|e| panic!("not JSON ({e}): {head}"));
    (status, body)
}

/// Reads what `stream` has, at least a byte, within 10 s.
async fn read_more(stream: &mut tokio::net::TcpStream, buf: &mut [u8]) -> usize {
    use tokio::io::AsyncReadExt;

    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(buf))
        .await
        .expect("an answer in time")
        .expect("the answer could be read");
    assert!(n > 0, "the connection closed before the answer ended");
    n
}
