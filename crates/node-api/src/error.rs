//! Errors as JSON: `{"error": "..."}` with a status that says whose fault.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An API error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The request is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// Nothing by that name (404).
    #[error("{0}")]
    NotFound(String),
    /// The request body is too large (413).
    #[error("{0}")]
    TooLarge(String),
    /// The node cannot answer now: no chain yet, or stopping (503).
    #[error("{0}")]
    Unavailable(String),
    /// The store failed (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<chain_store::StoreError> for ApiError {
    fn from(e: chain_store::StoreError) -> Self {
        if matches!(e, chain_store::StoreError::Closed) {
            return ApiError::Unavailable(e.to_string());
        }
        tracing::warn!("the HTTP API could not read the chain: {e}");
        ApiError::Internal(format!("reading the chain failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() });
        (self.status(), axum::Json(body)).into_response()
    }
}

/// A JSON error response with `status`, for the server's own refusals.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}
