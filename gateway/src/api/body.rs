//! Request bodies read within a size limit, and what is refused read to its end.
//!
//! A body over its route's limit is a 413 (`payload_too_large`, the JSON error body). The
//! rest of that body is read and thrown away before the answer goes out, up to
//! [`DRAIN_MAX_BYTES`] within [`DRAIN_TIME`]: a client still sending it would otherwise
//! find the connection closed under it (a broken pipe or a reset) and never read the 413,
//! only a transport error (web servers call this a lingering close). Not drained: a body
//! declared larger than that (reading it would not save the connection), a declared body
//! whose client waits for `100 Continue` before sending it (the 413 tells it not to send),
//! and HTTP/2 (a refused stream is reset on its own; the connection goes on). A body of
//! no declared length (chunked) is read as it comes, so `100 Continue` has gone out by
//! the time it is over the limit: it is drained like any other.
//!
//! A body that stops arriving (nothing for [`BODY_READ_TIMEOUT`], the server's timeout
//! between two pieces of a body) is a 408 (`request_timeout`); one whose connection breaks
//! is a 400 (`malformed_json`: there is no whole JSON document to read).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, EXPECT};
use axum::http::{HeaderMap, Version};
use futures::{Stream, StreamExt};

use super::error::ApiError;
use super::serve::BODY_READ_TIMEOUT;

/// The body-size limit of a group of routes, set with `Extension(BodyLimit(n))`. The
/// router also sets axum's `DefaultBodyLimit` to the same value, as a backstop for an axum
/// body extractor a future route might use (none does: every body is read here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// The most of a refused body read (and thrown away) before answering 413.
pub const DRAIN_MAX_BYTES: usize = 16 << 20;

/// How long reading the rest of a refused body may take before the 413 goes out anyway.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The limit where a route sets no [`BodyLimit`] (every route of the API sets one): the
/// default of `max_body_bytes`.
pub const FALLBACK_LIMIT: usize = 1 << 20;

/// The whole body of `req`, or a 413 when it is longer than the route's [`BodyLimit`]
/// ([`FALLBACK_LIMIT`] where the route sets none).
pub async fn read_limited(req: Request) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(FALLBACK_LIMIT, |l| l.0);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let http1 = req.version() <= Version::HTTP_11;
    let waits_for_continue = expects_continue(req.headers());
    let mut stream = req.into_body().into_data_stream();
    if let Some(declared) = declared.filter(|&n| n > limit as u64) {
        if http1 && !waits_for_continue && declared <= DRAIN_MAX_BYTES as u64 {
            drain(stream, 0).await;
        }
        return Err(ApiError::TooLarge(limit));
    }
    // The pieces as they came (nothing set aside for what the client has not sent yet);
    // most bodies come in one, which is then the body, not copied.
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| read_error(&e))?;
        total += chunk.len();
        if total > limit {
            if http1 {
                drain(stream, total).await;
            }
            return Err(ApiError::TooLarge(limit));
        }
        chunks.push(chunk);
    }
    Ok(if chunks.len() == 1 {
        chunks.swap_remove(0)
    } else {
        Bytes::from(chunks.concat())
    })
}

/// What a failed read of the body answers: 408 when it stalled past the server's body
/// timeout (`tower_http`'s `TimeoutError`, somewhere in the error's chain), else 400.
fn read_error(e: &axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if cause.is::<tower_http::timeout::TimeoutError>() {
            return ApiError::BodyTimeout(BODY_READ_TIMEOUT.as_secs());
        }
        source = cause.source();
    }
    ApiError::MalformedJson(format!("could not read the body: {e}"))
}

/// Whether the client waits for `100 Continue` before it sends the body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"))
}

/// Reads the body's `stream` to its end and drops it, unless more than
/// [`DRAIN_MAX_BYTES`] (counting the `already` bytes read) or more than [`DRAIN_TIME`] it
/// would take.
async fn drain<E>(mut stream: impl Stream<Item = Result<Bytes, E>> + Unpin, already: usize) {
    let mut total = already;
    let discard = async {
        while let Some(Ok(chunk)) = stream.next().await {
            total += chunk.len();
            if total > DRAIN_MAX_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::body::Body;
    use axum::http::Request as HttpRequest;

    fn request(body: Body, content_length: Option<usize>) -> Request {
        let mut builder = HttpRequest::builder().method("POST").uri("/x");
        if let Some(n) = content_length {
            builder = builder.header(CONTENT_LENGTH, n.to_string());
        }
        builder.body(body).unwrap()
    }

    /// `req` on a route whose limit is `limit`.
    fn limited(mut req: Request, limit: usize) -> Request {
        req.extensions_mut().insert(BodyLimit(limit));
        req
    }

    fn chunks(sizes: &[usize]) -> Body {
        let parts: Vec<Result<Bytes, std::io::Error>> = sizes
            .iter()
            .map(|&n| Ok(Bytes::from(vec![b'a'; n])))
            .collect();
        Body::from_stream(futures::stream::iter(parts))
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let body = read_limited(limited(request(chunks(&[3, 4]), None), 7))
            .await
            .unwrap();
        assert_eq!(body.as_ref(), b"aaaaaaa");
        let exact = limited(request(chunks(&[5]), Some(5)), 5);
        assert_eq!(read_limited(exact).await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_a_413_declared_or_not() {
        for content_length in [None, Some(8)] {
            let err = read_limited(limited(request(chunks(&[3, 5]), content_length), 7))
                .await
                .unwrap_err();
            assert!(
                matches!(err, ApiError::TooLarge(7)),
                "{content_length:?}: {err:?}"
            );
        }
        let routed = limited(request(chunks(&[6]), None), 5);
        assert!(matches!(
            read_limited(routed).await,
            Err(ApiError::TooLarge(5))
        ));
    }

    /// A body of `n` chunks of `size` bytes, and how many of them have been taken.
    fn counted(n: usize, size: usize) -> (Body, std::sync::Arc<AtomicUsize>) {
        let taken = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = taken.clone();
        let stream = futures::stream::iter((0..n).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; size]))
        }));
        (Body::from_stream(stream), taken)
    }

    #[tokio::test]
    async fn a_refused_body_is_read_to_its_end_declared_or_not() {
        for declared in [Some(10_000), None] {
            let (body, taken) = counted(10, 1000);
            let err = read_limited(limited(request(body, declared), 2000))
                .await
                .unwrap_err();
            assert!(matches!(err, ApiError::TooLarge(2000)), "{declared:?}");
            assert_eq!(taken.load(Ordering::SeqCst), 10, "{declared:?}");
        }
    }

    #[tokio::test]
    async fn a_chunked_body_is_drained_also_after_100_continue() {
        let (body, taken) = counted(10, 1000);
        let mut chunked = request(body, None);
        chunked
            .headers_mut()
            .insert(EXPECT, "100-continue".parse().unwrap());
        let err = read_limited(limited(chunked, 2000)).await.unwrap_err();
        assert!(matches!(err, ApiError::TooLarge(2000)));
        assert_eq!(taken.load(Ordering::SeqCst), 10);
    }

    #[tokio::test]
    async fn draining_stops_at_its_cap() {
        let (body, taken) = counted(40, 1 << 20);
        let err = read_limited(limited(request(body, None), 1000))
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::TooLarge(1000)));
        // The chunk that takes the total past 16 MiB is the last one read.
        assert_eq!(
            taken.load(Ordering::SeqCst),
            DRAIN_MAX_BYTES / (1 << 20) + 1
        );
    }

    #[tokio::test(start_paused = true)]
    async fn draining_stops_after_its_time() {
        let first = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"abc"))]);
        let stalled = Body::from_stream(first.chain(futures::stream::pending()));
        let started = tokio::time::Instant::now();
        let err = read_limited(limited(request(stalled, Some(100)), 10))
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::TooLarge(10)));
        assert_eq!(started.elapsed(), DRAIN_TIME);
    }

    #[tokio::test]
    async fn no_draining_where_it_cannot_help() {
        let expecting = |body| {
            let mut r = request(body, Some(10_000));
            r.headers_mut()
                .insert(EXPECT, "100-continue".parse().unwrap());
            r
        };
        let http2 = |body| {
            let mut r = request(body, Some(10_000));
            *r.version_mut() = Version::HTTP_2;
            r
        };
        let huge = |body| request(body, Some(DRAIN_MAX_BYTES + 1));
        let cases: [(&str, &dyn Fn(Body) -> Request); 3] =
            [("expect", &expecting), ("http2", &http2), ("huge", &huge)];
        for (name, make) in cases {
            let (body, taken) = counted(10, 1000);
            let err = read_limited(limited(make(body), 2000)).await.unwrap_err();
            assert!(matches!(err, ApiError::TooLarge(2000)), "{name}");
            assert_eq!(taken.load(Ordering::SeqCst), 0, "{name}: nothing read");
        }
    }

    /// A route that reads its body as the API does, behind the server's body timeout.
    fn timed_route() -> axum::Router {
        let read =
            |req: Request| async move { read_limited(req).await.map(|b| b.len().to_string()) };
        super::super::serve::with_body_timeout(
            axum::Router::new().route("/x", axum::routing::post(read)),
        )
    }

    /// Status and error code of `body` sent to [`timed_route`].
    async fn answer(body: Body) -> (axum::http::StatusCode, serde_json::Value) {
        use tower::ServiceExt;
        let response = timed_route()
            .oneshot(request(body, Some(100)))
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_is_a_408() {
        let first =
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{\"a\":"))]);
        let stalled = Body::from_stream(first.chain(futures::stream::pending()));
        let started = tokio::time::Instant::now();
        let (status, body) = answer(stalled).await;
        assert_eq!(status, axum::http::StatusCode::REQUEST_TIMEOUT);
        assert_eq!(body["error"]["code"], "request_timeout");
        assert_eq!(started.elapsed(), BODY_READ_TIMEOUT);
    }

    #[tokio::test]
    async fn a_body_whose_connection_breaks_is_a_400() {
        let parts = [
            Ok(Bytes::from_static(b"{\"a\":")),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset",
            )),
        ];
        let (status, body) = answer(Body::from_stream(futures::stream::iter(parts))).await;
        assert_eq!(status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["code"], "malformed_json");
    }

    #[tokio::test]
    async fn a_whole_body_passes_the_timeout_layer() {
        // The route answers the body's length, which reads as JSON.
        let (status, length) = answer(chunks(&[60, 40])).await;
        assert_eq!(status, axum::http::StatusCode::OK);
        assert_eq!(length, 100);
    }
}
