//! `/v1/api-keys`: a tenant's API keys, created and revoked by the tenant itself.
//! Keys are stored only as SHA-256 hashes; the plaintext is shown once, at creation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Tenant;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::AppState;
use crate::store::tenants::ApiKeyInfo;
use crate::store::time::rfc3339;

/// Body of `POST /v1/api-keys` (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    /// Free text, e.g. where the key is used.
    #[serde(default)]
    pub name: String,
}

/// An API key as listed: never the key itself.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    /// `key_...`.
    pub id: String,
    /// Free text.
    pub name: String,
    /// Last four characters of the key.
    pub hint: String,
    /// RFC 3339.
    pub created_at: String,
}

/// A new key: the only time the plaintext is shown.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreated {
    /// The key's description.
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// `gwk_...`.
    pub api_key: String,
}

/// The tenant's keys.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    /// Oldest first.
    pub data: Vec<ApiKeyView>,
}

fn view(info: &ApiKeyInfo) -> ApiKeyView {
    ApiKeyView {
        id: info.id.clone(),
        name: info.name.clone(),
        hint: info.hint.clone(),
        created_at: rfc3339(info.created_at_ms),
    }
}

/// Create another API key for the calling tenant.
#[utoipa::path(post, path = "/v1/api-keys", request_body = Option<ApiKeyCreate>, tag = "api-keys", responses((status = 201, body = ApiKeyCreated)))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    super::json::ApiJsonOrDefault(input): super::json::ApiJsonOrDefault<ApiKeyCreate>,
) -> ApiResult<(StatusCode, Json<ApiKeyCreated>)> {
    if input.name.len() > 256 {
        return Err(ApiError::invalid("name", "at most 256 characters"));
    }
    let key = state.store.create_api_key(&tenant.id, &input.name).await?;
    tracing::info!(tenant = %tenant.id, key = %key.info.id, "api key created");
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreated {
            key: view(&key.info),
            api_key: key.api_key,
        }),
    ))
}

/// List the calling tenant's API keys.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", responses((status = 200, body = ApiKeyList)))]
pub async fn list(State(state): State<AppState>, tenant: Tenant) -> ApiResult<Json<ApiKeyList>> {
    let keys = state.store.list_api_keys(&tenant.id).await?;
    Ok(Json(ApiKeyList {
        data: keys.iter().map(view).collect(),
    }))
}

/// Revoke an API key at once (not the last one).
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .revoke_api_key(&tenant.id, &id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound("api key"),
            other => other.into(),
        })?;
    tracing::info!(tenant = %tenant.id, key = %id, "api key revoked");
    Ok(StatusCode::NO_CONTENT)
}
