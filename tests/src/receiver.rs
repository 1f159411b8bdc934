//! A real HTTP receiver on 127.0.0.1 that records every request and answers
//! with a scripted sequence of statuses (then a default), optionally slowly.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use tokio::net::TcpListener;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub uri: Uri,
    /// Headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Bytes,
    /// Arrival time.
    pub at: Instant,
}

impl Received {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct Script {
    statuses: VecDeque<u16>,
    default: u16,
    delay: Duration,
    headers: Vec<(String, String)>,
}

/// A receiver listening on 127.0.0.1.
#[derive(Clone)]
pub struct Receiver {
    /// Its address.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    /// Starts a receiver that answers 200.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(Script {
            default: 200,
            ..Script::default()
        }));
        let (seen2, script2) = (seen.clone(), script.clone());
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let seen = seen2.clone();
                let script = script2.clone();
                async move {
                    seen.lock().expect("lock").push(Received {
                        method,
                        uri,
                        headers,
                        body,
                        at: Instant::now(),
                    });
                    let (status, delay, extra) = {
                        let mut s = script.lock().expect("lock");
                        let status = s.statuses.pop_front().unwrap_or(s.default);
                        (status, s.delay, s.headers.clone())
                    };
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let mut headers = HeaderMap::new();
                    for (name, value) in extra {
                        if let (Ok(n), Ok(v)) = (
                            axum::http::HeaderName::from_bytes(name.as_bytes()),
                            axum::http::HeaderValue::from_str(&value),
                        ) {
                            headers.insert(n, v);
                        }
                    }
                    (
                        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                        headers,
                        "ok",
                    )
                }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, seen, script }
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Answer these statuses first, in order.
    pub fn respond_with(&self, statuses: &[u16]) {
        self.script.lock().expect("lock").statuses = statuses.iter().copied().collect();
    }

    /// Answer this status once the scripted ones are used up.
    pub fn set_default(&self, status: u16) {
        self.script.lock().expect("lock").default = status;
    }

    /// Add this header to every answer.
    pub fn set_response_header(&self, name: &str, value: &str) {
        self.script
            .lock()
            .expect("lock")
            .headers
            .push((name.to_string(), value.to_string()));
    }

    /// Wait this long before answering.
    pub fn set_delay(&self, delay: Duration) {
        self.script.lock().expect("lock").delay = delay;
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.seen.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived, or panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            if Instant::now() > deadline {
                panic!("receiver got {} requests, expected {n}", got.len());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits `quiet` and returns what arrived: for asserting that nothing (more) comes.
    pub async fn settle(&self, quiet: Duration) -> Vec<Received> {
        tokio::time::sleep(quiet).await;
        self.received()
    }
}
