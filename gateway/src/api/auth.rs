//! Authentication extractors: a tenant from its API key, the operator from the admin token.
//!
//! Tokens are compared by their SHA-256 hashes, in constant time for the admin
//! token; API keys are looked up by hash, so the plaintext is never stored.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::AppState;
use crate::store::tenants::hash_token;

/// The authenticated tenant of a request.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// `ten_...`.
    pub id: String,
    /// Operator-set limits (rate, IP allow-list).
    pub settings: std::sync::Arc<crate::store::tenant_settings::TenantSettings>,
}

/// Proof that the request carries the admin token.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let record = state
            .store
            .authenticate(token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let settings = state.store.tenant_settings(&record.tenant_id).await?;
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if let Some(ip) = peer {
            if !settings.allows(ip) {
                tracing::info!(tenant = %record.tenant_id, %ip, "call refused by the tenant's IP allow-list");
                return Err(ApiError::IpNotAllowed);
            }
        }
        Ok(Tenant {
            id: record.tenant_id,
            settings,
        })
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized)?;
        let given = hash_token(token);
        if bool::from(given.as_bytes().ct_eq(state.admin_token_hash.as_bytes())) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}
