//! `/v1/endpoints`: webhook subscriptions, their secrets, pause/resume and test sends.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Tenant;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::ApiJson;
use super::AppState;
use crate::delivery::attempt::{attempt, Verdict};
use crate::delivery::redact;
use crate::delivery::signing::generate_secret;
use crate::ids::{new_id, IdKind};
use crate::model::endpoint::{
    Endpoint, EndpointCreate, EndpointPatch, EndpointView, PluginRef, RetiredSecret,
};
use crate::model::log::{Attempt, SentRequest};
use crate::plugins::{PluginCallError, PluginEvent};
use crate::store::time::{now_ms, rfc3339};

/// Longest grace period of a rotated secret.
const MAX_GRACE_SECS: u64 = 7 * 86_400;
/// Most retired secrets kept signing at once.
const MAX_RETIRED: usize = 10;

/// An endpoint with its secret: the answer to a create only.
#[derive(Serialize, ToSchema)]
pub struct EndpointCreated {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// The signing secret; also available from `GET /v1/endpoints/{id}/secret`.
    pub secret: String,
}

/// An endpoint's current signing secret.
#[derive(Serialize, ToSchema)]
pub struct SecretView {
    /// `whsec_...`.
    pub secret: String,
}

/// A list of endpoints.
#[derive(Serialize, ToSchema)]
pub struct EndpointList {
    /// Endpoints, oldest first.
    pub data: Vec<EndpointView>,
}

/// Body of `POST /v1/endpoints/{id}/rotate-secret` (optional: none is the defaults).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// New secret; generated when absent.
    pub secret: Option<String>,
    /// How long the old secret keeps signing, in seconds (default 86400, at most 604800).
    pub grace_period_secs: Option<u64>,
}

/// Result of `POST /v1/endpoints/{id}/test`.
#[derive(Serialize, ToSchema)]
pub struct TestResult {
    /// `delivered`, `failed` or `dropped`.
    pub status: &'static str,
    /// The attempt made, if any.
    pub attempt: Option<Attempt>,
    /// The request as sent, secrets masked.
    pub request: Option<SentRequest>,
    /// Drop reason or error.
    pub error: Option<String>,
}

pub(crate) fn view(endpoint: &Endpoint) -> EndpointView {
    EndpointView {
        id: endpoint.id.clone(),
        url: endpoint.url.clone(),
        description: endpoint.description.clone(),
        method: endpoint.method,
        event_types: endpoint.event_types.clone(),
        channels: endpoint.channels.clone(),
        headers: endpoint
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if redact::is_sensitive_header(k) {
                        redact::MASK.to_string()
                    } else {
                        v.clone()
                    },
                )
            })
            .collect(),
        signature: endpoint.signature.clone(),
        retry: endpoint.retry,
        timeout_ms: endpoint.timeout_ms,
        rate_limit_per_s: endpoint.rate_limit_per_s,
        active: endpoint.active,
        plugins: endpoint
            .plugins
            .iter()
            .map(|p| PluginRef {
                plugin: p.plugin.clone(),
                config: redact::mask_config(&p.config),
            })
            .collect(),
        created_at: rfc3339(endpoint.created_at_ms),
        updated_at: rfc3339(endpoint.updated_at_ms),
        disabled_reason: endpoint.disabled_reason.clone(),
    }
}

/// Checks that every plugin exists for the tenant and accepts its config.
async fn check_plugins(state: &AppState, tenant: &str, plugins: &[PluginRef]) -> ApiResult<()> {
    for (i, plugin_ref) in plugins.iter().enumerate() {
        let plugin = state
            .plugins
            .resolve(tenant, &plugin_ref.plugin)
            .await
            .map_err(|e| match e {
                crate::store::plugins::PluginStoreError::Unknown(name) => ApiError::invalid(
                    format!("plugins[{i}].plugin"),
                    format!("no plugin named `{name}`"),
                ),
                other => other.into(),
            })?;
        let config = plugin_ref.config.to_string();
        let checked = state
            .plugins
            .call(|engine| async move { engine.validate_config(&plugin, &config).await })
            .await;
        match checked.and_then(|r| r) {
            Ok(()) => {}
            Err(PluginCallError::Rejected(message)) => {
                return Err(ApiError::invalid(format!("plugins[{i}].config"), message));
            }
            Err(other) => {
                return Err(ApiError::invalid(
                    format!("plugins[{i}].config"),
                    format!("could not be checked: {other}"),
                ));
            }
        }
    }
    Ok(())
}

/// Create an endpoint.
#[utoipa::path(post, path = "/v1/endpoints", request_body = EndpointCreate, tag = "endpoints",
    responses((status = 201, body = EndpointCreated), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    tenant: Tenant,
    ApiJson(input): ApiJson<EndpointCreate>,
) -> ApiResult<(StatusCode, Json<EndpointCreated>)> {
    input.validate(&state.url_policy())?;
    check_plugins(&state, &tenant.id, &input.plugins).await?;
    let now = now_ms();
    let mut endpoint = Endpoint {
        id: new_id(IdKind::Endpoint),
        url: input.url,
        description: input.description,
        method: input.method,
        event_types: input.event_types,
        channels: input.channels,
        headers: input.headers,
        secret: input.secret.unwrap_or_else(generate_secret),
        retired_secrets: Vec::new(),
        signature: input.signature,
        retry: input.retry,
        timeout_ms: input.timeout_ms,
        rate_limit_per_s: input.rate_limit_per_s.filter(|r| *r > 0),
        active: input.active,
        plugins: input.plugins,
        created_at_ms: now,
        updated_at_ms: now,
        disabled_reason: None,
        revision: 0,
    };
    state.store.put_endpoint(&tenant.id, &mut endpoint).await?;
    tracing::info!(tenant = %tenant.id, endpoint = %endpoint.id, "endpoint created");
    let secret = endpoint.secret.clone();
    Ok((
        StatusCode::CREATED,
        Json(EndpointCreated {
            endpoint: view(&endpoint),
            secret,
        }),
    ))
}

/// List endpoints.
#[utoipa::path(get, path = "/v1/endpoints", tag = "endpoints", responses((status = 200, body = EndpointList)))]
pub async fn list(State(state): State<AppState>, tenant: Tenant) -> ApiResult<Json<EndpointList>> {
    let set = state.store.load_endpoints(&tenant.id).await?;
    Ok(Json(EndpointList {
        data: set.endpoints.iter().map(view).collect(),
    }))
}

async fn load(state: &AppState, tenant: &Tenant, id: &str) -> ApiResult<Endpoint> {
    state
        .store
        .get_endpoint(&tenant.id, id)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound("endpoint"),
            other => other.into(),
        })
}

/// Get an endpoint.
#[utoipa::path(get, path = "/v1/endpoints/{id}", tag = "endpoints", responses((status = 200, body = EndpointView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointView>> {
    Ok(Json(view(&load(&state, &tenant, &id).await?)))
}

/// Change an endpoint; only the fields given change.
#[utoipa::path(patch, path = "/v1/endpoints/{id}", request_body = EndpointPatch, tag = "endpoints",
    responses((status = 200, body = EndpointView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    ApiJson(mut patch): ApiJson<EndpointPatch>,
) -> ApiResult<Json<EndpointView>> {
    let mut endpoint = load(&state, &tenant, &id).await?;
    patch.restore_masked(&endpoint);
    let was_active = endpoint.active;
    if let Some(plugins) = &patch.plugins {
        check_plugins(&state, &tenant.id, plugins).await?;
    }
    patch.apply(&mut endpoint, &state.url_policy())?;
    endpoint.updated_at_ms = now_ms();
    if endpoint.active && !was_active {
        endpoint.disabled_reason = None;
    }
    state.store.put_endpoint(&tenant.id, &mut endpoint).await?;
    if endpoint.active && !was_active {
        state.queue.release_held(&tenant.id, &endpoint.id).await?;
    }
    Ok(Json(view(&endpoint)))
}

/// Delete an endpoint. Its pending deliveries end `failed`.
#[utoipa::path(delete, path = "/v1/endpoints/{id}", tag = "endpoints", responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    load(&state, &tenant, &id).await?;
    state.store.delete_endpoint(&tenant.id, &id).await?;
    // Held jobs go back to the queue, where the worker records them as failed.
    state.queue.release_held(&tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_active(
    state: &AppState,
    tenant: &Tenant,
    id: &str,
    active: bool,
) -> ApiResult<Json<EndpointView>> {
    let mut endpoint = load(state, tenant, id).await?;
    endpoint.active = active;
    if active {
        endpoint.disabled_reason = None;
    }
    endpoint.updated_at_ms = now_ms();
    state.store.put_endpoint(&tenant.id, &mut endpoint).await?;
    if active {
        state.queue.release_held(&tenant.id, id).await?;
    }
    Ok(Json(view(&endpoint)))
}

/// Pause an endpoint: deliveries are held until it resumes.
#[utoipa::path(post, path = "/v1/endpoints/{id}/pause", tag = "endpoints", responses((status = 200, body = EndpointView)))]
pub async fn pause(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointView>> {
    set_active(&state, &tenant, &id, false).await
}

/// Resume an endpoint: held deliveries are sent.
#[utoipa::path(post, path = "/v1/endpoints/{id}/resume", tag = "endpoints", responses((status = 200, body = EndpointView)))]
pub async fn resume(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointView>> {
    set_active(&state, &tenant, &id, true).await
}

/// The endpoint's current signing secret.
#[utoipa::path(get, path = "/v1/endpoints/{id}/secret", tag = "endpoints", responses((status = 200, body = SecretView)))]
pub async fn secret(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<SecretView>> {
    let endpoint = load(&state, &tenant, &id).await?;
    Ok(Json(SecretView {
        secret: endpoint.secret,
    }))
}

/// Replace the signing secret; the old one keeps signing for the grace period.
#[utoipa::path(post, path = "/v1/endpoints/{id}/rotate-secret", request_body = Option<RotateSecret>, tag = "endpoints",
    responses((status = 200, body = SecretView)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
    super::json::ApiJsonOrDefault(input): super::json::ApiJsonOrDefault<RotateSecret>,
) -> ApiResult<Json<SecretView>> {
    let grace = input.grace_period_secs.unwrap_or(86_400);
    if grace > MAX_GRACE_SECS {
        return Err(ApiError::invalid(
            "grace_period_secs",
            format!("at most {MAX_GRACE_SECS}"),
        ));
    }
    if let Some(secret) = &input.secret {
        crate::delivery::signing::decode_secret(secret)
            .map_err(|e| ApiError::invalid("secret", e.to_string()))?;
    }
    let mut endpoint = load(&state, &tenant, &id).await?;
    let now = now_ms();
    let old = std::mem::replace(
        &mut endpoint.secret,
        input.secret.unwrap_or_else(generate_secret),
    );
    endpoint.retired_secrets.retain(|s| s.expires_at_ms > now);
    if grace > 0 {
        endpoint.retired_secrets.insert(
            0,
            RetiredSecret {
                secret: old,
                expires_at_ms: now + grace * 1000,
            },
        );
    }
    endpoint.retired_secrets.truncate(MAX_RETIRED);
    endpoint.updated_at_ms = now;
    state.store.put_endpoint(&tenant.id, &mut endpoint).await?;
    Ok(Json(SecretView {
        secret: endpoint.secret,
    }))
}

/// Send a test event to the endpoint now and return the attempt's result. Nothing is queued or logged.
#[utoipa::path(post, path = "/v1/endpoints/{id}/test", tag = "endpoints", responses((status = 200, body = TestResult)))]
pub async fn test(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<TestResult>> {
    let endpoint = load(&state, &tenant, &id).await?;
    let event_id = new_id(IdKind::Event);
    let payload = serde_json::json!({"type": "webhook.test", "id": event_id, "message": "Test event from the webhook gateway"});
    let event = PluginEvent {
        id: event_id,
        event_type: "webhook.test".into(),
        tenant: tenant.id.clone(),
        channel: None,
        created_at: rfc3339(now_ms()),
        payload: payload.to_string(),
    };
    let report = attempt(&state.delivery, &endpoint, &event, &new_id(IdKind::Message)).await;
    let error = report.last_error();
    let status = match &report.verdict {
        Verdict::Sent(crate::delivery::retry::AttemptResult::Success) => "delivered",
        Verdict::Dropped(_) => "dropped",
        _ => "failed",
    };
    Ok(Json(TestResult {
        status,
        attempt: report.attempt,
        request: report.request,
        error,
    }))
}

/// Delivery statistics of an endpoint.
#[derive(Serialize, ToSchema)]
pub struct EndpointStats {
    /// Counts over the last hour, day and week.
    pub windows: Vec<crate::store::endpoints::WindowStats>,
}

/// Outcome counts and success rate over recent windows.
#[utoipa::path(get, path = "/v1/endpoints/{id}/stats", tag = "endpoints", responses((status = 200, body = EndpointStats), (status = 404, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointStats>> {
    load(&state, &tenant, &id).await?;
    let windows = state
        .store
        .endpoint_stats(&tenant.id, &id, now_ms())
        .await?;
    Ok(Json(EndpointStats { windows }))
}
