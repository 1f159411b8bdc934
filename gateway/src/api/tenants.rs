//! `/v1/tenants`: created by the operator with the admin token.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiResult, ErrorBody};
use super::AppState;

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
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<TenantCreated>)> {
    let input: TenantCreate = if body.is_empty() {
        TenantCreate::default()
    } else {
        super::json::parse(&body)?
    };
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
