//! `/healthz` (the process is up), `/readyz` (Redis answers) and `/metrics` (Prometheus).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when Redis answers.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200), (status = 503)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "redis": "unreachable"})),
        ),
    }
}

/// Prometheus metrics (text exposition format). Queue depth is read from Redis now.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(
    State(state): State<AppState>,
) -> ([(axum::http::header::HeaderName, &'static str); 1], String) {
    match state.queue.depth().await {
        Ok(depth) => {
            let gauge = &state.metrics.queue_depth;
            for (label, value) in [
                ("ready", depth.ready),
                ("leased", depth.leased),
                ("delayed", depth.delayed),
                ("dead", depth.dead),
            ] {
                gauge
                    .with_label_values(&[label])
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        Err(_) => state.metrics.redis_errors.inc(),
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}
