//! `/v1/logs`: delivery logs, filtered and paginated, and manual retries.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Tenant;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::AppState;
use crate::ids::{self, IdKind};
use crate::model::log::{LogDetail, LogPage, LogStatus};
use crate::store::logs::LogQuery;
use crate::store::time::parse_time;

/// Query of `GET /v1/logs`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LogParams {
    /// `pending`, `delivered`, `failed` or `dropped`.
    pub status: Option<String>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Only this endpoint's logs.
    pub endpoint_id: Option<String>,
    /// Created at or after: RFC 3339 or Unix seconds.
    pub since: Option<String>,
    /// Created at or before: RFC 3339 or Unix seconds.
    pub until: Option<String>,
    /// Page size, 1 to 250 (default 50).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn to_query(params: LogParams) -> ApiResult<LogQuery> {
    let time = |field: &str, value: Option<String>| -> ApiResult<Option<u64>> {
        value
            .map(|v| {
                parse_time(&v)
                    .ok_or_else(|| ApiError::invalid(field, "must be RFC 3339 or Unix seconds"))
            })
            .transpose()
    };
    let status = params
        .status
        .map(|s| {
            s.parse::<LogStatus>().map_err(|_| {
                ApiError::invalid("status", "must be pending, delivered, failed or dropped")
            })
        })
        .transpose()?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=250).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 250"));
    }
    if let Some(cursor) = &params.cursor {
        if !ids::is_valid(IdKind::Message, cursor) {
            return Err(ApiError::invalid("cursor", "not a cursor from this API"));
        }
    }
    Ok(LogQuery {
        status,
        event_type: params.event_type,
        endpoint_id: params.endpoint_id,
        since_ms: time("since", params.since)?,
        until_ms: time("until", params.until)?,
        limit,
        cursor: params.cursor,
    })
}

/// List delivery logs, newest first.
#[utoipa::path(get, path = "/v1/logs", params(LogParams), tag = "logs", responses((status = 200, body = LogPage), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    tenant: Tenant,
    Query(params): Query<LogParams>,
) -> ApiResult<Json<LogPage>> {
    let query = to_query(params)?;
    Ok(Json(state.store.list_logs(&tenant.id, &query).await?))
}

/// One log with every attempt and the request as sent (secrets masked).
#[utoipa::path(get, path = "/v1/logs/{id}", tag = "logs", responses((status = 200, body = LogDetail), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<LogDetail>> {
    state
        .store
        .get_log(&tenant.id, &id)
        .await
        .map(Json)
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound("log"),
            other => other.into(),
        })
}

/// Re-queue a failed or delivered log for one more attempt.
#[utoipa::path(post, path = "/v1/logs/{id}/retry", tag = "logs", responses((status = 202), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !ids::is_valid(IdKind::Message, &id) {
        return Err(ApiError::NotFound("log"));
    }
    state
        .queue
        .requeue(&tenant.id, &id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound("log"),
            other => other.into(),
        })?;
    Ok(StatusCode::ACCEPTED)
}
