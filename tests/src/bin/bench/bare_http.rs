//! The load generator's HTTP/1.1, straight on hyper: one kept-alive connection per
//! producer and a receiver that is a bare `service_fn`.
//!
//! The yardstick is "a bare HTTP client posting straight to a bare receiver".
//! reqwest (a pool checkout, URL parsing and a header map per request) and axum (routing
//! and extractors) cost this process about twice what that takes, CPU the gateway then
//! does not get on a 2-core machine. The gateway itself still delivers with reqwest.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Where requests go: `http://host:port/path` split once, up front.
#[derive(Clone, Debug)]
pub struct Target {
    addr: SocketAddr,
    path: String,
    host: HeaderValue,
    authorization: Option<HeaderValue>,
}

impl Target {
    /// Parses an `http://127.0.0.1:port/path` URL; `bearer` is sent as `Authorization`.
    pub fn parse(url: &str, bearer: Option<&str>) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("not an http:// URL: {url}"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let authorization = bearer
            .map(|key| HeaderValue::from_str(&format!("Bearer {key}")))
            .transpose()?;
        Ok(Self {
            addr: authority
                .parse()
                .with_context(|| format!("address of {url}"))?,
            path: if path.is_empty() { "/" } else { path }.to_string(),
            host: HeaderValue::from_str(authority)?,
            authorization,
        })
    }
}

/// Why a POST got no status code.
#[derive(Debug)]
pub enum PostError {
    /// No whole answer within the timeout.
    Timeout,
    /// The connection or the exchange failed.
    Failed(anyhow::Error),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("no answer within the timeout"),
            Self::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for PostError {}

/// One producer's connection; reconnects on the next request after an error.
pub struct Connection {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection to `target`, opened on first use.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            sender: None,
        }
    }

    /// POSTs a JSON body and reads the whole answer; returns its status code. A failed or
    /// timed-out exchange drops the connection (the next call opens a new one).
    pub async fn post_json(&mut self, body: Bytes, timeout: Duration) -> Result<u16, PostError> {
        let answer = tokio::time::timeout(timeout, self.exchange(body)).await;
        match answer {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) => {
                self.sender = None;
                Err(PostError::Failed(e))
            }
            Err(_) => {
                self.sender = None;
                Err(PostError::Timeout)
            }
        }
    }

    async fn exchange(&mut self, body: Bytes) -> Result<u16> {
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => self.sender.insert(connect(self.target.addr).await?),
        };
        sender.ready().await?;
        let mut request = Request::post(self.target.path.as_str()).body(Full::new(body))?;
        let headers = request.headers_mut();
        headers.insert(HOST, self.target.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(auth) = &self.target.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        response.into_body().collect().await?;
        Ok(status)
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // Ends when the sender is dropped or the peer closes; either is routine here.
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request as the receiver's handler sees it.
pub struct Arrival<'a> {
    /// The request path, e.g. `/hook/0`.
    pub path: &'a str,
    /// Its headers.
    pub headers: &'a HeaderMap,
    /// Its whole body.
    pub body: Bytes,
}

/// Serves HTTP/1.1 on a fresh loopback port; every request's answer is the status
/// `handle` returns, with an empty body. Returns `http://127.0.0.1:port`.
pub async fn serve<H>(handle: H) -> Result<String>
where
    H: Fn(Arrival<'_>) -> StatusCode + Clone + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    eprintln!("bench: receiver accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let handle = handle.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let status = match body.collect().await {
                            Ok(body) => handle(Arrival {
                                path: parts.uri.path(),
                                headers: &parts.headers,
                                body: body.to_bytes(),
                            }),
                            Err(_) => StatusCode::BAD_REQUEST,
                        };
                        let mut response = Response::new(Full::new(Bytes::new()));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                // A connection ends when the gateway closes it; nothing to report.
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_splits_address_and_path() {
        let t = Target::parse("http://127.0.0.1:8080/v1/events", Some("k")).unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse::<SocketAddr>().unwrap());
        assert_eq!(t.path, "/v1/events");
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.authorization.unwrap(), "Bearer k");
        assert_eq!(Target::parse("http://127.0.0.1:1", None).unwrap().path, "/");
        assert!(Target::parse("https://127.0.0.1:1/", None).is_err());
    }

    #[tokio::test]
    async fn posts_reach_the_receiver_with_path_headers_and_body() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let base = serve(move |a: Arrival<'_>| {
            let entry = (
                a.path.to_string(),
                a.headers
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                a.body.clone(),
            );
            log.lock().unwrap().push(entry);
            StatusCode::ACCEPTED
        })
        .await
        .unwrap();
        let mut conn =
            Connection::new(Target::parse(&format!("{base}/hook/3"), Some("s")).unwrap());
        for i in 0..3 {
            let status = conn
                .post_json(
                    Bytes::from(format!("{{\"i\":{i}}}")),
                    Duration::from_secs(5),
                )
                .await
                .unwrap();
            assert_eq!(status, 202);
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[2].0, "/hook/3");
        assert_eq!(seen[2].1.as_deref(), Some("Bearer s"));
        assert_eq!(seen[2].2, Bytes::from("{\"i\":2}"));
    }
}
