//! Errors of the OAuth endpoints keep the RFC 6749 shape (`error`, `error_description`) and
//! add `correlation_id`; a stable Portcullis `code` is added where the contract names one.
//! Nothing converts into it implicitly: each OAuth service error names its `error` per
//! cause (features/oidc/http), so a store failure cannot turn into a caller's mistake.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::correlation;

#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// A Portcullis error code from api.md, for errors the contract names.
    pub code: Option<&'static str>,
    /// `invalid_client` from HTTP Basic must challenge (RFC 6749 §5.2).
    pub basic_challenge: bool,
    /// For the log only.
    pub internal: Option<String>,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            code: None,
            basic_challenge: false,
            internal: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }

    pub fn invalid_client(d: impl Into<String>, basic: bool) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d);
        e.basic_challenge = basic;
        e
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }

    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }

    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }

    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }

    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", d)
    }

    pub fn insufficient_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "insufficient_scope", d)
    }

    /// The client's project is disabled: no tokens, no introspection (api.md's `project_disabled`).
    pub fn project_disabled() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            "this application's project is disabled",
        )
        .with_code("project_disabled")
    }

    /// A body over the endpoint's limit: RFC 6749 has no error of its own for it, so
    /// `invalid_request` with the 413 status and api.md's `payload_too_large` code.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("request body is larger than this endpoint accepts ({limit} bytes)"),
        )
        .with_code("payload_too_large")
    }

    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error; quote the correlation id to support",
        );
        e.internal = Some(cause.to_string());
        e
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.internal {
            tracing::error!(error = self.error, cause = %cause, "oauth request failed");
        } else {
            tracing::debug!(
                error = self.error,
                status = self.status.as_u16(),
                "oauth request refused"
            );
        }
        let mut body = json!({
            "error": self.error,
            "error_description": self.description,
            "correlation_id": correlation::current(),
        });
        if let Some(code) = self.code {
            body["code"] = json!(code);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"portcullis\""),
            );
        }
        // RFC 6750 §3: a resource server's refusals challenge for a bearer token.
        let bearer_challenge = match self.error {
            "invalid_token" => Some("Bearer error=\"invalid_token\""),
            "insufficient_scope" => Some("Bearer error=\"insufficient_scope\""),
            _ => None,
        };
        if let Some(challenge) = bearer_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
