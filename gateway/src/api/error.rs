//! The one error type every handler returns, rendered as
//! `{"error": {"code": "...", "message": "...", "field"?: "..."}}` with the right status.
//!
//! Codes are stable: clients may match on them. Server-side failures render an
//! opaque message and are logged once here, with their cause.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::model::FieldError;
use crate::plugins::UploadError;
use crate::store::plugins::PluginStoreError;
use crate::store::StoreError;

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not valid JSON (or nests too deeply).
    #[error("{0}")]
    MalformedJson(String),
    /// 408: the request body stopped arriving (nothing came for the given seconds).
    #[error("the request body stopped arriving: nothing came for {0} s")]
    BodyTimeout(u64),
    /// 401: missing or unknown credentials.
    #[error("missing or invalid API key")]
    Unauthorized,
    /// 404: no such resource for this tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the resource's state forbids the request.
    #[error("{0}")]
    Conflict(String),
    /// 405: the route exists but not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 403: the tenant's IP allow-list does not include the caller.
    #[error("calls from this address are not allowed for this tenant")]
    IpNotAllowed,
    /// 429: over the tenant's rate limit; retry after the given seconds.
    #[error("rate limit exceeded; retry after {0} s")]
    RateLimited(u64),
    /// 413: the body is larger than allowed.
    #[error("request body is too large")]
    TooLarge(usize),
    /// 415: wrong content type.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: a field is missing or invalid.
    #[error("{0}")]
    Invalid(FieldError),
    /// 422 with a specific code (plugin upload problems).
    #[error("{message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// Detail.
        message: String,
    },
    /// 503: Redis is unreachable; nothing was written.
    #[error("storage is unavailable; try again")]
    Unavailable(#[source] redis::RedisError),
    /// 500: a bug or corrupt data; details are logged, not shown.
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize, ToSchema)]
/// Error body.
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
/// What went wrong.
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The offending field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            ApiError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::IpNotAllowed => (StatusCode::FORBIDDEN, "ip_not_allowed"),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    /// The stable code this error renders with.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// A 422 about `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid(FieldError::new(field, message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Internal(cause) => tracing::error!(cause = %cause, "internal error"),
            ApiError::Unavailable(cause) => tracing::warn!(cause = %cause, "redis unavailable"),
            _ => {}
        }
        let field = match &self {
            ApiError::Invalid(e) => Some(e.field.clone()),
            _ => None,
        };
        let message = match &self {
            ApiError::Invalid(e) => e.to_string(),
            other => other.to_string(),
        };
        let retry_after = match &self {
            ApiError::RateLimited(secs) => Some(*secs),
            _ => None,
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message,
                field,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::Invalid(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Redis(e) if is_unavailable(&e) => ApiError::Unavailable(e),
            StoreError::Redis(e) => ApiError::Internal(e.to_string()),
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::RateLimited(secs) => ApiError::RateLimited(secs),
            StoreError::Corrupt(m) => ApiError::Internal(m),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::TooLarge { limit, .. } => ApiError::TooLarge(limit),
            other => ApiError::Unprocessable {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl From<PluginStoreError> for ApiError {
    fn from(e: PluginStoreError) -> Self {
        match e {
            PluginStoreError::Unknown(_) => ApiError::NotFound("plugin"),
            PluginStoreError::Upload(e) => e.into(),
            PluginStoreError::Store(e) => e.into(),
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Redis(e).into()
    }
}

/// Whether a Redis error means "cannot reach Redis now" (503) rather than a bug (500).
fn is_unavailable(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            redis::ErrorKind::Server(
                redis::ServerErrorKind::BusyLoading
                    | redis::ServerErrorKind::TryAgain
                    | redis::ServerErrorKind::ClusterDown
                    | redis::ServerErrorKind::ReadOnly
                    | redis::ServerErrorKind::MasterDown
            )
        )
        || e.code() == Some("LOADING")
        // another client's script is still running: Redis is there but cannot answer yet
        || e.code() == Some("BUSY")
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn validation_errors_name_the_field() {
        let response =
            ApiError::invalid("retry.max_attempts", "must be between 1 and 30").into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"]["code"], "validation_error");
        assert_eq!(json["error"]["field"], "retry.max_attempts");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let response = ApiError::Internal("secret detail".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("secret detail"));
    }
}
