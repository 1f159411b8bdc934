//! The HTTP API: axum routes under `/v1`, health, and the OpenAPI document
//! generated from the handlers' annotations (`GET /openapi.json`).

pub mod api_keys;
pub mod auth;
pub mod body;
pub mod endpoints;
pub mod error;
pub mod event_types;
pub mod events;
pub mod health;
pub mod json;
pub mod logs;
pub mod plugins;
pub mod serve;
pub mod tenants;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use body::BodyLimit;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::delivery::address_policy::{AddressPolicy, UrlPolicy};
use crate::delivery::attempt::DeliveryContext;
use crate::queue::Queue;
use crate::store::plugins::PluginDirectory;
use crate::store::Store;
use error::ApiError;

/// What handlers share: one allocation behind an `Arc`, so the clone axum makes for every
/// request is a reference count, not copies of the store's connection settings and strings.
#[derive(Clone)]
pub struct AppState(Arc<ApiContext>);

impl AppState {
    /// The shared state of the API over `context`.
    pub fn new(context: ApiContext) -> Self {
        Self(Arc::new(context))
    }
}

impl std::ops::Deref for AppState {
    type Target = ApiContext;

    fn deref(&self) -> &ApiContext {
        &self.0
    }
}

/// Everything the API handlers use.
pub struct ApiContext {
    /// Redis store.
    pub store: Store,
    /// Job queue.
    pub queue: Queue,
    /// Plugins by name.
    pub plugins: PluginDirectory,
    /// Client and plugins for test sends.
    pub delivery: DeliveryContext,
    /// SHA-256 hex of the admin token.
    pub admin_token_hash: String,
    /// Address rules for endpoint urls.
    pub addresses: Arc<AddressPolicy>,
    /// Refuse `http://` endpoints.
    pub https_only: bool,
    /// Body limit of JSON routes.
    pub max_body_bytes: usize,
    /// Body limit of plugin uploads.
    pub max_upload_bytes: usize,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Events per second per tenant when its settings name none.
    pub default_rate_limit_per_s: Option<u32>,
    /// This process's workers, when it runs any: ingest hands them the jobs it stores
    /// while they have free slots.
    pub handoff: Option<crate::delivery::worker::Worker>,
}

impl ApiContext {
    /// Stores an event (durable when this returns) and starts the deliveries this
    /// process's workers took over at ingest. With a handoff, storing and dispatching run in
    /// a task of their own: a request dropped meanwhile (client gone, shutdown deadline)
    /// cannot strand jobs leased to this process until their lease ends.
    pub async fn ingest(
        &self,
        tenant: String,
        event: crate::model::event::EventCreate,
        idempotency_key: Option<String>,
        rate_limit: Option<u32>,
    ) -> crate::store::StoreResult<crate::model::event::EventAccepted> {
        // The worker, its slots, and a token that holds its shutdown until dispatch is done.
        let handoff = self
            .handoff
            .as_ref()
            .and_then(|worker| Some((worker.clone(), worker.handoff_slots(&tenant)?)));
        let spawn = handoff.is_some();
        let store = self.store.clone();
        let work = async move {
            let slots = handoff.as_ref().map(|(_, (slots, _))| slots);
            let ingested = store
                .ingest(
                    &tenant,
                    &event,
                    idempotency_key.as_deref(),
                    rate_limit,
                    slots,
                )
                .await?;
            if let (Some((worker, _)), Some(handed)) = (&handoff, ingested.handed_off) {
                worker.dispatch(&tenant, &ingested.accepted.id, &event, handed);
            }
            Ok(ingested.accepted)
        };
        if !spawn {
            return work.await;
        }
        tokio::spawn(work).await.map_err(|e| {
            crate::store::StoreError::Corrupt(format!("the ingest task ended early: {e}"))
        })?
    }

    /// The ingest rate limit in force for `tenant`.
    pub fn rate_limit(&self, tenant: &auth::Tenant) -> Option<u32> {
        tenant
            .settings
            .rate_limit_per_s
            .or(self.default_rate_limit_per_s)
    }

    /// The url rules endpoints are checked with.
    pub fn url_policy(&self) -> UrlPolicy<'_> {
        UrlPolicy {
            addresses: &self.addresses,
            https_only: self.https_only,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Webhook gateway", description = "Durable ingest, WebAssembly plugins, signed delivery with retries."),
    modifiers(&Security),
    tags((name = "events"), (name = "endpoints"), (name = "logs"), (name = "plugins"), (name = "event-types"), (name = "tenants"), (name = "api-keys"), (name = "health"))
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("api_key", bearer());
        components.add_security_scheme("admin_token", bearer());
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]);
    }
}

/// The full router with state applied.
pub fn router(state: AppState) -> Router {
    let upload_limit = state.max_upload_bytes;
    let plugin_upload = OpenApiRouter::new()
        .routes(routes!(plugins::upload))
        .layer(DefaultBodyLimit::max(upload_limit))
        .layer(Extension(BodyLimit(upload_limit)));
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(tenants::create))
        .routes(routes!(tenants::get_settings, tenants::put_settings))
        .routes(routes!(api_keys::create, api_keys::list))
        .routes(routes!(api_keys::revoke))
        .routes(routes!(endpoints::create, endpoints::list))
        .routes(routes!(endpoints::get, endpoints::patch, endpoints::delete))
        .routes(routes!(endpoints::pause))
        .routes(routes!(endpoints::resume))
        .routes(routes!(endpoints::rotate_secret))
        .routes(routes!(endpoints::test))
        .routes(routes!(endpoints::secret))
        .routes(routes!(events::create))
        .routes(routes!(events::batch))
        .routes(routes!(events::get))
        .routes(routes!(logs::list))
        .routes(routes!(logs::get))
        .routes(routes!(logs::retry))
        .routes(routes!(event_types::list, event_types::create))
        .routes(routes!(plugins::list))
        .routes(routes!(plugins::get, plugins::delete))
        .routes(routes!(plugins::simulate))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .routes(routes!(endpoints::stats))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(Extension(BodyLimit(state.max_body_bytes)))
        .merge(plugin_upload)
        .split_for_parts();
    let openapi = Arc::new(openapi);
    router
        .route(
            "/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::NotFound("route") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(tower_http::trace::TraceLayer::new_for_http())
}
