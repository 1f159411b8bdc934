//! Receivers that misbehave and urls that must not be reached: 410 Gone pauses
//! the endpoint, `Retry-After` is honoured, redirects are not followed, and no
//! spelling of a private address gets a connection.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gateway::plugins::testing::{build_component, guest_dir};
use gateway::store::time::parse_time;
use gateway_e2e::{fast_retry, Receiver, TestGateway};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_gone_pauses_the_endpoint_and_holds_later_events() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    rx.respond_with(&[410]);
    let (id, _) = api
        .endpoint(json!({"url": rx.url("/"), "retry": fast_retry(5)}))
        .await;
    let (event, _) = api.event(json!({"type": "x", "payload": {"n": 1}})).await;
    let log = api.deliveries_of(&event).await.remove(0);
    let detail = api.wait_log_status(&log, "failed", WAIT).await;
    assert_eq!(detail["attempts"], 1, "410 is not retried");
    let deadline = tokio::time::Instant::now() + WAIT;
    let endpoint = loop {
        let (_, endpoint) = api.get(&format!("/v1/endpoints/{id}")).await;
        if endpoint["active"] == false || tokio::time::Instant::now() > deadline {
            break endpoint;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(endpoint["active"], false, "{endpoint}");
    assert!(endpoint["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("410"));
    api.event(json!({"type": "x", "payload": {"n": 2}})).await;
    assert_eq!(
        rx.settle(Duration::from_millis(600)).await.len(),
        1,
        "a paused endpoint got a delivery"
    );
    let (_, resumed) = api
        .post(&format!("/v1/endpoints/{id}/resume"), json!({}))
        .await;
    assert_eq!(resumed["disabled_reason"], serde_json::Value::Null);
    let got = rx.wait_for(2, WAIT).await;
    assert_eq!(
        got[1].json()["n"],
        2,
        "the held event is delivered after resume"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let rx = Receiver::start().await;
    rx.respond_with(&[429]);
    rx.set_response_header("retry-after", "2");
    api.endpoint(json!({"url": rx.url("/"), "retry": fast_retry(3)}))
        .await;
    let (event, _) = api.event(json!({"type": "x", "payload": {}})).await;
    let log = api.deliveries_of(&event).await.remove(0);
    let detail = api.wait_log_status(&log, "delivered", WAIT).await;
    let attempts = detail["attempt_details"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    let first = parse_time(attempts[0]["at"].as_str().unwrap()).unwrap();
    let second = parse_time(attempts[1]["at"].as_str().unwrap()).unwrap();
    assert!(
        second - first >= 2_000,
        "retried after {} ms, not the 2 s the receiver asked",
        second - first
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let target = Receiver::start().await;
    let redirector = Receiver::start().await;
    redirector.set_default(302);
    redirector.set_response_header("location", &target.url("/stolen"));
    api.endpoint(json!({"url": redirector.url("/"), "retry": fast_retry(1)}))
        .await;
    let (event, _) = api.event(json!({"type": "x", "payload": {}})).await;
    let log = api.deliveries_of(&event).await.remove(0);
    let detail = api.wait_log_status(&log, "failed", WAIT).await;
    assert_eq!(detail["attempt_details"][0]["status_code"], 302);
    assert!(
        target.settle(Duration::from_millis(300)).await.is_empty(),
        "the redirect was followed"
    );
    gw.stop().await;
}

/// A listener on 127.0.0.1 that counts the connections it accepts.
async fn counting_listener() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (port, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spelling_of_a_private_address_gets_a_connection() {
    let hostile = tokio::task::spawn_blocking(|| build_component(&guest_dir("hostile")).unwrap())
        .await
        .unwrap();
    // no allow-list: loopback is off limits, as in production
    let gw = TestGateway::start_with(|c| c.allowed_networks.clear()).await;
    let api = gw.tenant().await;
    let (port, connections) = counting_listener().await;
    let spellings = [
        format!("http://0.0.0.0:{port}/"),
        format!("http://[::]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://localhost:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.1:{port}/"),
        format!("http://user@127.0.0.1:{port}/"),
        format!("http://169.254.169.254:{port}/latest/meta-data"),
    ];
    for url in &spellings {
        let (status, body) = api.post("/v1/endpoints", json!({"url": url})).await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["error"]["field"], "url", "{url}");
    }
    // the same addresses set by a plugin are refused at connect time
    let (status, _) = api
        .raw(
            "PUT",
            "/v1/plugins/redirector",
            &[("content-type", "application/wasm")],
            hostile,
        )
        .await;
    assert_eq!(status, 201);
    let plugin_urls = [
        format!("http://localhost:{port}/"),
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://0.0.0.0:{port}/"),
    ];
    let mut logs = Vec::new();
    for (i, url) in plugin_urls.iter().enumerate() {
        let kind = format!("t{i}");
        api.endpoint(json!({
            "url": "https://example.com/hook",
            "event_types": [kind],
            "retry": fast_retry(1),
            "plugins": [{"plugin": "redirector", "config": {"mode": "set", "url": url}}]
        }))
        .await;
        let (event, _) = api.event(json!({"type": kind, "payload": {}})).await;
        logs.push((url.clone(), api.deliveries_of(&event).await.remove(0)));
    }
    for (url, log) in logs {
        let detail = api.wait_log_status(&log, "failed", WAIT).await;
        assert_eq!(
            detail["attempt_details"][0]["error_code"], "blocked_address",
            "{url}: {detail}"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a private address was connected to"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_looking_name_that_resolves_to_loopback_gets_no_connection() {
    let (port, connections) = counting_listener().await;
    let gw = TestGateway::start_with(|c| {
        c.allowed_networks.clear();
        // The name "resolves" to loopback, as a DNS-rebinding attacker's would.
        c.dns_overrides.insert(
            "hooks.public-example.com".into(),
            vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        );
    })
    .await;
    let api = gw.tenant().await;
    let url = format!("http://hooks.public-example.com:{port}/hook");
    api.endpoint(json!({"url": url, "retry": fast_retry(1)}))
        .await;
    let (event, _) = api.event(json!({"type": "x", "payload": {}})).await;
    let log = api.deliveries_of(&event).await.remove(0);
    let detail = api.wait_log_status(&log, "failed", WAIT).await;
    assert_eq!(
        detail["attempt_details"][0]["error_code"], "blocked_address",
        "{detail}"
    );
    assert!(detail["attempt_details"][0]["error"]
        .as_str()
        .unwrap()
        .contains("non-public"));
    assert_eq!(connections.load(Ordering::SeqCst), 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_only_refuses_plain_http_endpoints() {
    let gw = TestGateway::start_with(|c| c.https_only = true).await;
    let api = gw.tenant().await;
    let (status, body) = api
        .post("/v1/endpoints", json!({"url": "http://example.com/hook"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "url");
    let (status, _) = api
        .post("/v1/endpoints", json!({"url": "https://example.com/hook"}))
        .await;
    assert_eq!(status, 201);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_too_long_is_paused_and_the_tenant_told() {
    let gw = TestGateway::start_with(|c| c.disable_after_failing_ms = 1_000).await;
    let api = gw.tenant().await;
    let broken = Receiver::start().await;
    broken.set_default(500);
    let ops = Receiver::start().await;
    let (broken_id, _) = api
        .endpoint(json!({"url": broken.url("/"), "event_types": ["Message.*"], "retry": {"max_attempts": 30, "initial_delay_ms": 100, "multiplier": 2, "max_delay_ms": 400}}))
        .await;
    let (_, ops_secret) = api
        .endpoint(json!({"url": ops.url("/ops"), "event_types": ["endpoint.disabled"]}))
        .await;
    let (event, _) = api
        .event(json!({"type": "Message.received", "payload": {}}))
        .await;
    let got = ops.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["endpoint_id"], broken_id.as_str());
    assert!(got[0].json()["reason"]
        .as_str()
        .unwrap()
        .contains("every attempt failed"));
    assert!(gateway_e2e::signature::verify_standard(
        &ops_secret,
        &got[0]
    ));
    let (_, endpoint) = api.get(&format!("/v1/endpoints/{broken_id}")).await;
    assert_eq!(endpoint["active"], false);
    assert!(endpoint["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("every attempt failed"));
    // the pending delivery is held, not lost; it goes out once the endpoint is resumed
    let tried = broken.settle(Duration::from_millis(1_000)).await.len();
    assert_eq!(
        broken.received().len(),
        tried,
        "a paused endpoint kept receiving"
    );
    broken.set_default(200);
    api.post(&format!("/v1/endpoints/{broken_id}/resume"), json!({}))
        .await;
    let log = api.deliveries_of(&event).await.remove(0);
    api.wait_log_status(&log, "delivered", WAIT).await;
    assert_eq!(ops.received().len(), 1, "told once");
    gw.stop().await;
}

/// A receiver whose every answer is 200 with a body produced by `body`.
async fn streaming_receiver(body: fn() -> axum::body::Body) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || async move { body() });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_and_dripping_bodies_fail_at_the_timeout_and_4_kib_are_kept() {
    let endless = streaming_receiver(|| {
        let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
        axum::body::Body::from_stream(futures_stream(move || Some(chunk.clone()), Duration::ZERO))
    })
    .await;
    let drip = streaming_receiver(|| {
        axum::body::Body::from_stream(futures_stream(
            || Some(bytes::Bytes::from_static(b"y")),
            Duration::from_secs(1),
        ))
    })
    .await;
    let gw = TestGateway::start().await;
    let api = gw.tenant().await;
    let mut logs = Vec::new();
    for (kind, url) in [("endless", endless), ("drip", drip)] {
        api.endpoint(
            json!({"url": url, "event_types": [kind], "timeout_ms": 1500, "retry": fast_retry(1)}),
        )
        .await;
        let (event, _) = api.event(json!({"type": kind, "payload": {}})).await;
        logs.push((kind, api.deliveries_of(&event).await.remove(0)));
    }
    let big = streaming_receiver(|| axum::body::Body::from(vec![b'z'; 100 * 1024])).await;
    api.endpoint(json!({"url": big, "event_types": ["big"]}))
        .await;
    let (event, _) = api.event(json!({"type": "big", "payload": {}})).await;
    let big_log = api.deliveries_of(&event).await.remove(0);
    let detail = api.wait_log_status(&big_log, "delivered", WAIT).await;
    let kept = detail["attempt_details"][0]["response"].as_str().unwrap();
    assert_eq!(
        kept.len(),
        4096,
        "only the first 4 KiB of a response are kept"
    );
    for (kind, log) in logs {
        let detail = api.wait_log_status(&log, "failed", WAIT).await;
        let attempt = &detail["attempt_details"][0];
        assert_eq!(attempt["error_code"], "timeout", "{kind}: {attempt}");
        let latency = attempt["latency_ms"].as_u64().unwrap();
        assert!(
            (1_400..5_000).contains(&latency),
            "{kind}: ended after {latency} ms, not at the 1.5 s timeout"
        );
    }
    gw.stop().await;
}

/// An endless stream of `next()` items, one every `every`.
fn futures_stream(
    next: impl Fn() -> Option<bytes::Bytes> + Send + 'static,
    every: Duration,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send {
    futures::stream::unfold((), move |()| {
        let item = next();
        async move {
            if !every.is_zero() {
                tokio::time::sleep(every).await;
            }
            item.map(|b| (Ok(b), ()))
        }
    })
}
