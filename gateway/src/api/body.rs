//! Request bodies read within a size limit, and what is refused read to its end.
//!
//! A body over its route's limit is a 413 (`payload_too_large`, the JSON error body). The
//! rest of that body is read and thrown away before the answer goes out, up to
//! [`DRAIN_MAX_BYTES`] within [`DRAIN_TIME`]: a client still sending it would otherwise
//! find the connection closed under it (a broken pipe or a reset) and never read the 413,
//! only a transport error (web servers call this a lingering close). A body larger still
//! is not read further: the connection closes, as before.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;
use futures::{Stream, StreamExt};

use super::error::ApiError;

/// The body-size limit of a group of routes, set with `Extension(BodyLimit(n))` (beside
/// axum's `DefaultBodyLimit`, which only axum's own extractors read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyLimit(pub usize);

/// The most of a refused body read (and thrown away) before answering 413.
pub const DRAIN_MAX_BYTES: usize = 16 << 20;

/// How long reading the rest of a refused body may take before the 413 goes out anyway.
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// The limit where a route sets no [`BodyLimit`] (axum's own default).
pub const FALLBACK_LIMIT: usize = 2 << 20;

/// The whole body of `req`, or a 413 when it is longer than the route's [`BodyLimit`]
/// (`fallback_limit` where the route sets none).
pub async fn read_limited(req: Request, fallback_limit: usize) -> Result<Bytes, ApiError> {
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(fallback_limit, |l| l.0);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut stream = req.into_body().into_data_stream();
    if declared.is_some_and(|n| n > limit as u64) {
        drain(stream, 0).await;
        return Err(ApiError::TooLarge(limit));
    }
    let mut read = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::MalformedJson(format!("could not read the body: {e}")))?;
        if read.len() + chunk.len() > limit {
            let seen = read.len() + chunk.len();
            drain(stream, seen).await;
            return Err(ApiError::TooLarge(limit));
        }
        read.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(read))
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
    use axum::body::Body;
    use axum::http::Request as HttpRequest;

    fn request(body: Body, content_length: Option<usize>) -> Request {
        let mut builder = HttpRequest::builder().method("POST").uri("/x");
        if let Some(n) = content_length {
            builder = builder.header(CONTENT_LENGTH, n.to_string());
        }
        builder.body(body).unwrap()
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
        let body = read_limited(request(chunks(&[3, 4]), None), 7)
            .await
            .unwrap();
        assert_eq!(body.as_ref(), b"aaaaaaa");
        let mut limited = request(chunks(&[5]), Some(5));
        limited.extensions_mut().insert(BodyLimit(5));
        assert_eq!(read_limited(limited, 1).await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_a_413_declared_or_not() {
        for content_length in [None, Some(8)] {
            let err = read_limited(request(chunks(&[3, 5]), content_length), 7)
                .await
                .unwrap_err();
            assert!(
                matches!(err, ApiError::TooLarge(7)),
                "{content_length:?}: {err:?}"
            );
        }
        let mut routed = request(chunks(&[6]), None);
        routed.extensions_mut().insert(BodyLimit(5));
        assert!(matches!(
            read_limited(routed, 100).await,
            Err(ApiError::TooLarge(5))
        ));
    }

    #[tokio::test]
    async fn a_refused_body_is_read_to_its_end() {
        // Each chunk the stream hands out is counted: all of a refused body is taken.
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = taken.clone();
        let stream = futures::stream::iter((0..10).map(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, std::io::Error>(Bytes::from(vec![b'a'; 1000]))
        }));
        let err = read_limited(request(Body::from_stream(stream), Some(10_000)), 2000)
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::TooLarge(2000)));
        assert_eq!(taken.load(std::sync::atomic::Ordering::SeqCst), 10);
    }
}
