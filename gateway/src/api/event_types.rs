//! `/v1/event-types`: the catalog, built-in and the tenant's own.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Tenant;
use super::error::{ApiResult, ErrorBody};
use super::json::ApiJson;
use super::AppState;
use crate::model::event_types::{EventType, EventTypeCreate};
use crate::model::validation::check_name;

/// The catalog.
#[derive(Serialize, ToSchema)]
pub struct EventTypeList {
    /// Built-in types first, then the tenant's own by name.
    pub data: Vec<EventType>,
}

/// List event types.
#[utoipa::path(get, path = "/v1/event-types", tag = "event-types", responses((status = 200, body = EventTypeList)))]
pub async fn list(State(state): State<AppState>, tenant: Tenant) -> ApiResult<Json<EventTypeList>> {
    Ok(Json(EventTypeList {
        data: state.store.list_event_types(&tenant.id).await?,
    }))
}

/// Add one of the tenant's own event types.
#[utoipa::path(post, path = "/v1/event-types", request_body = EventTypeCreate, tag = "event-types",
    responses((status = 201, body = EventType), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(input): ApiJson<EventTypeCreate>,
) -> ApiResult<(StatusCode, Json<EventType>)> {
    check_name("name", &input.name, 256)?;
    if input.description.len() > 1024 {
        return Err(crate::api::error::ApiError::invalid(
            "description",
            "at most 1024 characters",
        ));
    }
    state
        .store
        .put_event_type(&tenant.id, &input.name, &input.description)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EventType {
            name: input.name,
            description: input.description,
            builtin: false,
        }),
    ))
}
