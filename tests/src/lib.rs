//! Test harness for the end-to-end suite: a real gateway (in-process on a
//! port-0 listener, or as a child process), a real Redis with a key prefix of
//! its own per test, and real receivers on 127.0.0.1 that record what arrives
//! and check signatures the way a receiver would.

// A harness panics on purpose: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod process;
pub mod receiver;
pub mod redis_server;
pub mod signature;

use std::time::Duration;

use gateway::Config;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use receiver::{Received, Receiver};

/// Redis the tests use (`TEST_REDIS_URL` to override).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("test-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// The config tests start from: loopback allowed, short lease, two shards.
pub fn test_config(prefix: &str) -> Config {
    Config {
        redis_url: redis_url(),
        redis_prefix: prefix.to_string(),
        admin_token: Some(format!("admin-{}", ulid::Ulid::new())),
        allowed_networks: vec!["127.0.0.0/8".parse().expect("cidr")],
        lease_ms: 3_000,
        worker_concurrency: 64,
        shards: 2,
        ..Config::default()
    }
}

/// A gateway running in this process.
pub struct TestGateway {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The admin token.
    pub admin_token: String,
    /// Its Redis key prefix.
    pub prefix: String,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    http: reqwest::Client,
}

impl TestGateway {
    /// Starts a gateway with the test config.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a gateway with the test config changed by `adjust`.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let prefix = unique_prefix();
        let mut config = test_config(&prefix);
        adjust(&mut config);
        Self::start_config(config).await
    }

    /// Starts a gateway with exactly `config`.
    pub async fn start_config(config: Config) -> Self {
        let gw = Self::start_unready(config).await;
        gw.wait_ready().await;
        gw
    }

    /// Starts a gateway without waiting for `/readyz` (for tests where Redis is down).
    pub async fn start_unready(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let admin_token = config.admin_token.clone().expect("admin token");
        let prefix = config.redis_prefix.clone();
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(gateway::run(config, Some(listener), shutdown.clone()));
        Self {
            base,
            admin_token,
            prefix,
            shutdown,
            handle: Some(handle),
            http: client(),
        }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("gateway did not become ready");
    }

    /// Creates a tenant and returns a client authenticated as it.
    pub async fn tenant(&self) -> Api {
        create_tenant(&self.base, &self.admin_token).await
    }

    /// An unauthenticated client for this gateway.
    pub fn anonymous(&self) -> Api {
        Api {
            base: self.base.clone(),
            key: String::new(),
            id: String::new(),
            http: self.http.clone(),
        }
    }

    /// Stops the gateway (graceful) and removes its Redis keys.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(40), handle).await;
        }
        cleanup(&self.prefix).await;
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Deletes every key under `prefix` (hash-tagged ones included).
pub async fn cleanup(prefix: &str) {
    let Ok(client) = redis::Client::open(redis_url()) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    for pattern in [format!("{prefix}:*"), format!("{{{prefix}:*")] {
        let mut cursor: u64 = 0;
        loop {
            let reply: Result<(u64, Vec<String>), _> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await;
            let Ok((next, keys)) = reply else { break };
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

/// An HTTP client that never uses a proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// A client for one tenant.
#[derive(Clone)]
pub struct Api {
    /// Gateway base url.
    pub base: String,
    /// The tenant's API key.
    pub key: String,
    /// The tenant id.
    pub id: String,
    http: reqwest::Client,
}

impl Api {
    /// The same tenant through the gateway at `base` (another process on the same data).
    pub fn on(&self, base: &str) -> Api {
        Api {
            base: base.to_string(),
            ..self.clone()
        }
    }

    /// Sends a request with a JSON body (or none) and returns the status and JSON answer.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        if !self.key.is_empty() {
            request = request.bearer_auth(&self.key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        split(response).await
    }

    /// `POST` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call("POST", path, Some(body)).await
    }

    /// `GET`.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, None).await
    }

    /// `POST` with raw bytes and headers.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .body(body);
        if !self.key.is_empty() {
            request = request.bearer_auth(&self.key);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        split(request.send().await.expect("request")).await
    }

    /// Creates an endpoint; returns `(id, secret)`.
    pub async fn endpoint(&self, body: Value) -> (String, String) {
        let (status, created) = self.post("/v1/endpoints", body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        (
            created["id"].as_str().expect("id").into(),
            created["secret"].as_str().expect("secret").into(),
        )
    }

    /// Sends an event; returns its id and delivery count.
    pub async fn event(&self, body: Value) -> (String, u64) {
        let (status, accepted) = self.post("/v1/events", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        (
            accepted["id"].as_str().expect("id").into(),
            accepted["deliveries"].as_u64().expect("deliveries"),
        )
    }

    /// Waits until `GET /v1/logs/{id}` has `status`, returning the log.
    pub async fn wait_log_status(&self, log_id: &str, status: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (code, log) = self.get(&format!("/v1/logs/{log_id}")).await;
            if code == StatusCode::OK && log["status"] == status {
                return log;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("log {log_id} did not reach {status}: {log}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The delivery log ids of an event.
    pub async fn deliveries_of(&self, event_id: &str) -> Vec<String> {
        let (status, event) = self.get(&format!("/v1/events/{event_id}")).await;
        assert_eq!(status, StatusCode::OK, "{event}");
        event["deliveries"]
            .as_array()
            .expect("deliveries")
            .iter()
            .map(|v| v.as_str().expect("id").to_string())
            .collect()
    }
}

async fn split(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.unwrap_or_default();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, value)
}

/// Creates a tenant through the gateway at `base` with the admin token; a client for it.
pub async fn create_tenant(base: &str, admin_token: &str) -> Api {
    let http = client();
    let r = http
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(admin_token)
        .json(&json!({"name": "test"}))
        .send()
        .await
        .expect("create tenant");
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("json");
    Api {
        base: base.to_string(),
        key: body["api_key"].as_str().expect("api_key").to_string(),
        id: body["id"].as_str().expect("id").to_string(),
        http,
    }
}

/// A fast retry schedule for tests: 50 ms, 100 ms, 200 ms, ...
pub fn fast_retry(max_attempts: u32) -> Value {
    json!({"max_attempts": max_attempts, "initial_delay_ms": 50, "multiplier": 2, "max_delay_ms": 1000})
}
