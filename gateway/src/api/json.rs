//! A JSON body extractor with the gateway's error contract: syntax errors
//! (and nesting deeper than serde_json's limit of 128) are 400 `malformed_json`,
//! a wrong shape is 422 naming the field, an oversized body is 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON request body of type `T`.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        parse(&bytes).map(ApiJson)
    }
}

/// Reads a whole body, turning the size limit into a 413.
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(0)
        } else {
            ApiError::MalformedJson(format!("could not read the body: {rejection}"))
        }
    })
}

/// [`parse`] for an optional body: an empty one is `T::default()`.
pub fn parse_or_default<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        Ok(T::default())
    } else {
        parse(bytes)
    }
}

/// Parses JSON text into `T` with the error contract above.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::MalformedJson(format!("body is not valid JSON: {e}")))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        ApiError::invalid(field, e.into_inner().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::endpoint::EndpointCreate;

    #[test]
    fn syntax_errors_are_malformed() {
        assert!(matches!(
            parse::<EndpointCreate>(b"{nope"),
            Err(ApiError::MalformedJson(_))
        ));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            parse::<serde_json::Value>(deep.as_bytes()),
            Err(ApiError::MalformedJson(_))
        ));
    }

    #[test]
    fn shape_errors_name_the_field() {
        match parse::<EndpointCreate>(br#"{"url":"https://x.io","method":"BREW"}"#) {
            Err(ApiError::Invalid(e)) => assert_eq!(e.field, "method"),
            other => panic!("unexpected {:?}", other.err()),
        }
        match parse::<EndpointCreate>(br#"{"description":"no url"}"#) {
            Err(ApiError::Invalid(e)) => assert!(e.message.contains("url"), "{e}"),
            other => panic!("unexpected {:?}", other.err()),
        }
    }
}
