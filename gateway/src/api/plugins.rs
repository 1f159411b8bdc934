//! `/v1/plugins`: upload, list, delete and simulate WebAssembly plugins.

use axum::extract::{Path, Request, State};
use axum::http::{header::CONTENT_TYPE, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Tenant;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::json::ApiJson;
use super::AppState;
use crate::ids::{new_id, IdKind};
use crate::model::validation::check_name;
use crate::plugins::{PluginAction, PluginEvent, PluginRequest};
use crate::store::plugins::{PluginDirectory, PluginInfo};
use crate::store::time::{now_ms, rfc3339};

/// The tenant's plugins and the built-ins.
#[derive(Serialize, ToSchema)]
pub struct PluginList {
    /// Built-ins first, then the tenant's own by name.
    pub data: Vec<PluginInfo>,
}

/// A request in simulation input and output.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimRequest {
    /// Method.
    #[serde(default = "default_method")]
    pub method: String,
    /// Url.
    #[serde(default = "default_url")]
    pub url: String,
    /// Headers in order.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body as text.
    #[serde(default)]
    pub body: String,
}

fn default_method() -> String {
    "POST".into()
}

fn default_url() -> String {
    "https://example.com/webhook".into()
}

/// The event of a simulation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimEvent {
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Payload object.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// Channel.
    pub channel: Option<String>,
    /// Event id (generated when absent).
    pub id: Option<String>,
}

/// Body of `POST /v1/plugins/{name}/simulate`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Simulate {
    /// The event.
    pub event: SimEvent,
    /// The plugin config.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Value,
    /// The request the gateway would send; a JSON POST of the payload when absent.
    pub request: Option<SimRequest>,
}

/// What the plugin did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Simulation {
    /// `deliver`, `drop` or `error`.
    pub action: &'static str,
    /// The request to send, for `deliver`.
    pub request: Option<SimRequest>,
    /// Drop reason, for `drop`.
    pub reason: Option<String>,
    /// `{code, message}`, for `error`.
    #[schema(value_type = Object)]
    pub error: Option<Value>,
    /// Fuel used.
    pub fuel_used: Option<u64>,
    /// Wall time in microseconds.
    pub duration_us: Option<u64>,
}

fn check_plugin_name(name: &str) -> ApiResult<()> {
    check_name("name", name, 64)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::invalid(
            "name",
            "use letters, digits, '-' and '_'",
        ));
    }
    Ok(())
}

/// Upload (or replace) a plugin: a component, or a core module built with plugin-sdk.
#[utoipa::path(put, path = "/v1/plugins/{name}", tag = "plugins", request_body(content = Vec<u8>, content_type = "application/wasm"),
    responses((status = 201, body = PluginInfo), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(name): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> ApiResult<(StatusCode, Json<PluginInfo>)> {
    // Read before the other checks, so that a body over the limit is a 413 read to its
    // end (see `body`) whatever else is wrong; the limit is the upload routes' `BodyLimit`.
    let body = super::body::read_limited(request).await?;
    check_plugin_name(&name)?;
    if PluginDirectory::is_builtin(&name) {
        return Err(ApiError::Conflict(format!(
            "`{name}` is a built-in plugin name"
        )));
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/wasm")
        && !content_type.starts_with("application/octet-stream")
    {
        return Err(ApiError::UnsupportedMediaType(
            "send the plugin with Content-Type: application/wasm".into(),
        ));
    }
    let info = state
        .plugins
        .upload(&tenant.id, &name, body.to_vec())
        .await?;
    tracing::info!(tenant = %tenant.id, plugin = %name, version = %info.version, "plugin uploaded");
    Ok((StatusCode::CREATED, Json(info)))
}

/// List plugins.
#[utoipa::path(get, path = "/v1/plugins", tag = "plugins", responses((status = 200, body = PluginList)))]
pub async fn list(State(state): State<AppState>, tenant: Tenant) -> ApiResult<Json<PluginList>> {
    Ok(Json(PluginList {
        data: state.plugins.list(&tenant.id).await?,
    }))
}

/// One plugin.
#[utoipa::path(get, path = "/v1/plugins/{name}", tag = "plugins", responses((status = 200, body = PluginInfo), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(name): Path<String>,
) -> ApiResult<Json<PluginInfo>> {
    Ok(Json(state.plugins.info(&tenant.id, &name).await?))
}

/// Delete a plugin; refused (409) while an endpoint uses it.
#[utoipa::path(delete, path = "/v1/plugins/{name}", tag = "plugins", responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if PluginDirectory::is_builtin(&name) {
        return Err(ApiError::Conflict(format!(
            "`{name}` is built in and cannot be deleted"
        )));
    }
    let endpoints = state.store.load_endpoints(&tenant.id).await?;
    if let Some(user) = endpoints
        .endpoints
        .iter()
        .find(|e| e.plugins.iter().any(|p| p.plugin == name))
    {
        return Err(ApiError::Conflict(format!(
            "plugin `{name}` is used by endpoint {}",
            user.id
        )));
    }
    state.plugins.delete(&tenant.id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a plugin on an event without delivering anything.
#[utoipa::path(post, path = "/v1/plugins/{name}/simulate", request_body = Simulate, tag = "plugins",
    responses((status = 200, body = Simulation), (status = 404, body = ErrorBody)))]
pub async fn simulate(
    State(state): State<AppState>,
    tenant: Tenant,
    Path(name): Path<String>,
    ApiJson(input): ApiJson<Simulate>,
) -> ApiResult<Json<Simulation>> {
    if !input.event.payload.is_object() {
        return Err(ApiError::invalid("event.payload", "must be a JSON object"));
    }
    let plugin = state.plugins.resolve(&tenant.id, &name).await?;
    let payload = input.event.payload.to_string();
    let request = input.request.unwrap_or_else(|| SimRequest {
        method: default_method(),
        url: default_url(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: payload.clone(),
    });
    let event = PluginEvent {
        id: input.event.id.unwrap_or_else(|| new_id(IdKind::Event)),
        event_type: input.event.event_type,
        tenant: tenant.id.clone(),
        channel: input.event.channel,
        created_at: rfc3339(now_ms()),
        payload,
    };
    let request = PluginRequest {
        method: request.method,
        url: request.url,
        headers: request.headers,
        body: request.body.into_bytes(),
    };
    let config = if input.config.is_null() {
        "{}".to_string()
    } else {
        input.config.to_string()
    };
    let outcome = state
        .plugins
        .call(|engine| async move { engine.invoke(&plugin, &event, request, &config).await })
        .await
        .and_then(|r| r);
    let simulation = match outcome {
        Ok(invocation) => {
            let fuel_used = Some(invocation.fuel_used);
            let duration_us =
                Some(u64::try_from(invocation.duration.as_micros()).unwrap_or(u64::MAX));
            match invocation.action {
                PluginAction::Deliver(r) => Simulation {
                    action: "deliver",
                    request: Some(SimRequest {
                        method: r.method,
                        url: r.url,
                        headers: r.headers,
                        body: String::from_utf8_lossy(&r.body).into_owned(),
                    }),
                    reason: None,
                    error: None,
                    fuel_used,
                    duration_us,
                },
                PluginAction::Drop(reason) => Simulation {
                    action: "drop",
                    request: None,
                    reason: Some(reason),
                    error: None,
                    fuel_used,
                    duration_us,
                },
            }
        }
        Err(e) => Simulation {
            action: "error",
            request: None,
            reason: None,
            error: Some(serde_json::json!({"code": e.code(), "message": e.to_string()})),
            fuel_used: None,
            duration_us: None,
        },
    };
    Ok(Json(simulation))
}
