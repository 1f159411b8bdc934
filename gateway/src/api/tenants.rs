//! `/v1/tenants`: created by the operator with the admin token.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::ApiJson;
use super::AppState;
use crate::store::tenant_settings::TenantSettings;

/// Body of `POST /v1/tenants` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantCreate {
    /// Display name.
    #[serde(default)]
    pub name: String,
}

/// A new tenant and its API key, shown once.
#[derive(Serialize, ToSchema)]
pub struct TenantCreated {
    /// `ten_...`.
    pub id: String,
    /// `gwk_...`: only its hash is stored.
    pub api_key: String,
}

/// Create a tenant (admin token required).
#[utoipa::path(post, path = "/v1/tenants", request_body = Option<TenantCreate>, tag = "tenants",
    security(("admin_token" = [])), responses((status = 201, body = TenantCreated), (status = 401, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    super::json::ApiJsonOrDefault(input): super::json::ApiJsonOrDefault<TenantCreate>,
) -> ApiResult<(StatusCode, Json<TenantCreated>)> {
    if input.name.len() > 256 {
        return Err(super::error::ApiError::invalid(
            "name",
            "at most 256 characters",
        ));
    }
    let tenant = state.store.create_tenant(&input.name).await?;
    tracing::info!(tenant = %tenant.id, "tenant created");
    Ok((
        StatusCode::CREATED,
        Json(TenantCreated {
            id: tenant.id,
            api_key: tenant.api_key,
        }),
    ))
}

/// A tenant's operator-set limits.
#[utoipa::path(get, path = "/v1/tenants/{id}/settings", tag = "tenants", security(("admin_token" = [])),
    responses((status = 200, body = TenantSettings), (status = 404, body = ErrorBody)))]
pub async fn get_settings(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<TenantSettings>> {
    let settings = state.store.tenant_settings(&id).await.map_err(not_found)?;
    Ok(Json(settings.as_ref().clone()))
}

/// Replace a tenant's limits: ingest rate (`rate_limit_per_s`) and IP allow-list.
#[utoipa::path(put, path = "/v1/tenants/{id}/settings", tag = "tenants", request_body = TenantSettings, security(("admin_token" = [])),
    responses((status = 200, body = TenantSettings), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
    ApiJson(settings): ApiJson<TenantSettings>,
) -> ApiResult<Json<TenantSettings>> {
    if settings.rate_limit_per_s == Some(0) {
        return Err(ApiError::invalid(
            "rate_limit_per_s",
            "must be at least 1, or null for the default",
        ));
    }
    if settings.ip_allowlist.len() > 256 {
        return Err(ApiError::invalid("ip_allowlist", "at most 256 networks"));
    }
    state
        .store
        .put_tenant_settings(&id, &settings)
        .await
        .map_err(not_found)?;
    tracing::info!(tenant = %id, "tenant settings changed");
    Ok(Json(settings))
}

fn not_found(e: crate::store::StoreError) -> ApiError {
    match e {
        crate::store::StoreError::NotFound => ApiError::NotFound("tenant"),
        other => other.into(),
    }
}
