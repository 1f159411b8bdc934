//! The HTTP server loop: hyper with limits axum's `serve` does not expose.
//!
//! - A client has 10 s to send its request headers (slow-drip "slowloris"
//!   connections are closed), at most 100 headers in a 64 KiB buffer.
//! - A request body must arrive within 30 s.
//! - Each connection is its own task, so slow clients never hold back others.
//! - On shutdown the listener closes and open connections finish their current
//!   request (bounded by the timeouts above).

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Time allowed to send the request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the next piece of a request body (a stalled body is a 408).
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Most request headers.
pub const MAX_HEADERS: usize = 100;
/// Largest buffered request head (request line plus headers), in bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// `app` with [`BODY_READ_TIMEOUT`] between two pieces of a request body: a body read that
/// waits longer fails (`api::body` answers it 408).
pub fn with_body_timeout(app: Router) -> Router {
    app.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        BODY_READ_TIMEOUT,
    ))
}

/// Serves `app` on `listener` until `shutdown`, then drains open connections (at most `drain`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let app = with_body_timeout(app);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // The peer address goes into each request, for per-tenant IP allow-lists.
        let service = TowerToHyperService::new(app.clone().map_request(
            move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        ));
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some API connections were still open at shutdown");
    }
}
