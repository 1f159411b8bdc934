//! The HTTP client that deliveries go through: SSRF-safe, no proxies, no redirects,
//! pooled connections, a hard deadline per attempt and a capped response read.
//!
//! Host names are resolved by [`GuardedResolver`], which hands the connector only
//! addresses the [`AddressPolicy`] permits, so a name that resolves (or rebinds)
//! to a private address cannot be reached. IP-literal urls never reach a resolver,
//! so [`DeliveryClient::send`] checks them itself before connecting.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::address_policy::AddressPolicy;
use super::retry::parse_retry_after;

/// Most response bytes the delivery log keeps per attempt.
pub const MAX_RESPONSE_EXCERPT: usize = 4 * 1024;

/// Response bytes read past [`MAX_RESPONSE_EXCERPT`], so that the redaction sees whole a
/// secret the receiver echoed across that cut (and masks it rather than store its start).
pub const EXCERPT_MARGIN: usize = 4 * 1024;

/// A request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// HTTP method.
    pub method: String,
    /// Absolute url.
    pub url: String,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for none).
    pub body: Bytes,
}

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` in ms, when given in seconds.
    pub retry_after_ms: Option<u64>,
    /// The body's first [`MAX_RESPONSE_EXCERPT`] + [`EXCERPT_MARGIN`] bytes, as received:
    /// the log stores [`MAX_RESPONSE_EXCERPT`] of them, as text with secrets masked
    /// (`redact::stored_text`).
    pub excerpt: Vec<u8>,
}

/// Why no answer was had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The address is not public and not allow-listed.
    #[error("blocked: {0}")]
    Blocked(String),
    /// No complete answer within the timeout.
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// Could not connect (refused, unreachable, DNS failure, TLS).
    #[error("connection failed: {0}")]
    Connect(String),
    /// The request itself is unusable (bad url, bad header).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Anything else the transport reported.
    #[error("transport error: {0}")]
    Transport(String),
}

impl SendError {
    /// Stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SendError::Blocked(_) => "blocked_address",
            SendError::Timeout(_) => "timeout",
            SendError::Connect(_) => "connect",
            SendError::Invalid(_) => "invalid_request",
            SendError::Transport(_) => "transport",
        }
    }
}

/// Resolver error for names that resolve only to forbidden addresses.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to non-public addresses")]
struct BlockedName(String);

/// A DNS resolver that drops every address the policy forbids.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
    overrides: Arc<HashMap<String, Vec<IpAddr>>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let pinned = self
            .overrides
            .get(&name.as_str().to_ascii_lowercase())
            .cloned();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = match pinned {
                // Operator-pinned answers go through the same address check.
                Some(ips) => ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect(),
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(BlockedName(host)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The shared delivery client. Cheap to clone.
#[derive(Clone)]
pub struct DeliveryClient {
    http: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl DeliveryClient {
    /// A client that enforces `policy` on every connection.
    /// `overrides` pins host names to addresses (like curl's `--resolve`), ahead of DNS.
    pub fn new(
        policy: Arc<AddressPolicy>,
        overrides: HashMap<String, Vec<IpAddr>>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
                overrides: Arc::new(
                    overrides
                        .into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v))
                        .collect(),
                ),
            }))
            .user_agent(concat!("webhook-gateway/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self { http, policy })
    }

    /// The address policy in force.
    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    /// Sends `request`; the whole attempt (connect, headers, capped body read) ends by `timeout`.
    pub async fn send(&self, request: &Outgoing, timeout: Duration) -> Result<Answer, SendError> {
        let url = Url::parse(&request.url).map_err(|e| SendError::Invalid(format!("url: {e}")))?;
        self.check_literal(&url)?;
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| SendError::Invalid(format!("method `{}`", request.method)))?;
        let mut builder = self.http.request(method, url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body.clone());
        }
        let started = Instant::now();
        let attempt = async {
            let mut response = builder.send().await.map_err(classify)?;
            let status = response.status().as_u16();
            let retry_after_ms = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            // The whole body is read (so the connection can be reused) but only the first
            // MAX_RESPONSE_EXCERPT + EXCERPT_MARGIN bytes are kept: memory stays flat
            // whatever the receiver streams, and a body that does not end within the
            // timeout fails the attempt.
            let mut excerpt = Vec::new();
            // The status is what counts; a body cut short (Err) is still an answer.
            while let Ok(Some(chunk)) = response.chunk().await {
                let room = (MAX_RESPONSE_EXCERPT + EXCERPT_MARGIN).saturating_sub(excerpt.len());
                excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(Answer {
                status,
                retry_after_ms,
                excerpt,
            })
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Timeout(
                u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            )),
        }
    }

    fn check_literal(&self, url: &Url) -> Result<(), SendError> {
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err(SendError::Invalid("url has no host".into())),
        };
        if self.policy.permits(ip) {
            Ok(())
        } else {
            Err(SendError::Blocked(format!("{ip} is not a public address")))
        }
    }
}

fn classify(error: reqwest::Error) -> SendError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<BlockedName>() {
            return SendError::Blocked(blocked.to_string());
        }
        source = e.source();
    }
    if error.is_timeout() {
        SendError::Timeout(0)
    } else if error.is_connect() {
        SendError::Connect(root_cause(&error))
    } else if error.is_builder() || error.is_request() && error.url().is_none() {
        SendError::Invalid(root_cause(&error))
    } else {
        SendError::Transport(root_cause(&error))
    }
}

fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
