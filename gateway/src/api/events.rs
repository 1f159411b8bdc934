//! `/v1/events`: ingest (single and batch) and lookup.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;

use super::auth::Tenant;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::ApiJson;
use super::AppState;
use crate::model::event::{
    BatchAccepted, BatchItem, EventAccepted, EventBatch, EventCreate, EventView, MAX_BATCH,
};

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 256;

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?
        .trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY} characters"),
        ));
    }
    Ok(Some(key.to_string()))
}

async fn check_target(
    state: &AppState,
    tenant: &str,
    event: &EventCreate,
    field: &str,
) -> ApiResult<()> {
    let Some(target) = &event.endpoint_id else {
        return Ok(());
    };
    let cached = state.store.cached_endpoints(tenant).await?;
    if cached.get(target).is_some()
        || state
            .store
            .load_endpoints(tenant)
            .await?
            .get(target)
            .is_some()
    {
        Ok(())
    } else {
        Err(ApiError::invalid(field, "no such endpoint"))
    }
}

/// Accept an event: 202 once it and its deliveries are stored durably.
#[utoipa::path(post, path = "/v1/events", request_body = EventCreate, tag = "events",
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe key: the same key returns the same event")),
    responses((status = 202, body = EventAccepted), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    ApiJson(event): ApiJson<EventCreate>,
) -> ApiResult<(StatusCode, Json<EventAccepted>)> {
    let key = idempotency_key(&headers)?;
    event.validate("")?;
    check_target(&state, &tenant.id, &event, "endpoint_id").await?;
    let accepted = state
        .ingest(tenant.id.clone(), event, key, state.rate_limit(&tenant))
        .await?;
    state.metrics.events_accepted.inc();
    tracing::debug!(tenant = %tenant.id, event = %accepted.id, deliveries = accepted.deliveries, "event accepted");
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Accept up to 1000 events. Each is stored atomically; the answer lists them in order.
/// With an `Idempotency-Key`, item `i` uses the key `<key>:<i>`.
#[utoipa::path(post, path = "/v1/events/batch", request_body = EventBatch, tag = "events",
    responses((status = 202, body = BatchAccepted), (status = 207, body = BatchAccepted, description = "some events were not stored; see each entry"), (status = 422, body = ErrorBody)))]
pub async fn batch(
    State(state): State<AppState>,
    tenant: Tenant,
    headers: HeaderMap,
    ApiJson(batch): ApiJson<EventBatch>,
) -> ApiResult<(StatusCode, Json<BatchAccepted>)> {
    let key = idempotency_key(&headers)?;
    if batch.events.is_empty() || batch.events.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "events",
            format!("must hold 1 to {MAX_BATCH} events"),
        ));
    }
    for (i, event) in batch.events.iter().enumerate() {
        event.validate(&format!("events[{i}]."))?;
        check_target(
            &state,
            &tenant.id,
            event,
            &format!("events[{i}].endpoint_id"),
        )
        .await?;
    }
    let mut ingests = Vec::with_capacity(batch.events.len());
    let limit = state.rate_limit(&tenant);
    for (i, event) in batch.events.iter().enumerate() {
        let item_key = key.as_ref().map(|k| format!("{k}:{i}"));
        let state = state.clone();
        let tenant = tenant.id.clone();
        let event = event.clone();
        ingests.push(async move { state.ingest(tenant, event, item_key, limit).await });
    }
    // The scripts pipeline over one connection; every item is attempted and reported on.
    let results = futures::future::join_all(ingests).await;
    let stored = results.iter().filter(|r| r.is_ok()).count();
    let mut results = results;
    if stored == 0 {
        // Nothing was stored: answer with the (first) reason, e.g. 503 or 429.
        if let Some(Err(e)) = results.drain(..).next() {
            return Err(e.into());
        }
    }
    state.metrics.events_accepted.inc_by(stored as u64);
    let status = if stored == batch.events.len() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::MULTI_STATUS
    };
    let data = results
        .into_iter()
        .map(|r| match r {
            Ok(accepted) => BatchItem {
                id: Some(accepted.id),
                deliveries: Some(accepted.deliveries),
                error: None,
            },
            Err(e) => {
                let e = ApiError::from(e);
                let code = e.code();
                BatchItem {
                    id: None,
                    deliveries: None,
                    error: Some(serde_json::json!({"code": code, "message": e.to_string()})),
                }
            }
        })
        .collect();
    Ok((status, Json(BatchAccepted { data })))
}

/// One event with its delivery ids.
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events", responses((status = 200, body = EventView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<EventView>> {
    if !crate::ids::is_valid(crate::ids::IdKind::Event, &id) {
        return Err(ApiError::NotFound("event"));
    }
    state
        .store
        .get_event(&tenant.id, &id)
        .await
        .map(Json)
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound("event"),
            other => other.into(),
        })
}
