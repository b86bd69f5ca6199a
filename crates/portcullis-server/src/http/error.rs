//! The one place where failures become HTTP: the stable envelope
//! `{code, message, correlation_id, details?}` of api.md. Internal causes are logged under
//! the correlation id and never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{AccessDenied, ValidationError};
use portcullis_store::StoreError;
use serde_json::{Value, json};

use crate::http::correlation;
use crate::infra::rate_limit::Quota;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
    /// The allowance that ran out, for a 429's `RateLimit-*` headers (remaining 0, reset
    /// at `retry_after`). Non-zero, which also keeps `ApiError` small.
    pub limit: Option<std::num::NonZeroU32>,
    /// The cause, for the log only.
    pub internal: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
            limit: None,
            internal: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::invalid_request(message.clone())
            .with_details(json!({"field": field, "reason": message}))
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// An SSO callback whose `state` is missing or not the one issued to this browser.
    pub fn state_mismatch(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "state_mismatch", message)
    }

    /// The upstream identity provider returned no email claim.
    pub fn email_is_missing(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "email_is_missing", message)
    }

    /// An upstream provider did not verify the email it asserted, and a verified one is
    /// needed (creating or linking an account).
    pub fn email_not_verified(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "email_not_verified", message)
    }

    /// An org's SSO provider asserted, or an org admin named, an email outside the org's
    /// verified domains.
    pub fn domain_not_verified(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "domain_not_verified", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// The allowance that ran out, for the `RateLimit-*` headers of a 429.
    pub fn with_limit(mut self, limit: u32) -> Self {
        self.limit = std::num::NonZeroU32::new(limit);
        self
    }

    /// A request body over its route's limit (`max_form_body_bytes` / `max_json_body_bytes`).
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than this route accepts ({limit} bytes)"),
        )
        .with_details(json!({"limit_bytes": limit}))
    }

    /// A mobile one-time token that is unknown, expired, spent, or presented with the wrong
    /// `state` or PKCE verifier (indistinguishable on purpose).
    pub fn ott_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "ott_invalid", message)
    }

    /// The request's host is not one the mobile routes answer on.
    pub fn host_not_allowlisted(host: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "host_not_allowlisted",
            format!(
                "host {host:?} is not allowed for mobile sign-in; add it to PORTCULLIS_MOBILE_HOST_ALLOWLIST \
                 (mobile_host_allowlist) or use the server's public URL"
            ),
        )
        .with_details(json!({"host": host, "setting": "PORTCULLIS_MOBILE_HOST_ALLOWLIST"}))
    }

    /// A feature switched off by configuration (or, later, by the org's plan).
    pub fn feature_disabled(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "feature_disabled", message)
    }

    /// A rotated refresh token came back: its family (and session) are now revoked.
    /// The project's status is not active: its keys and clients stop working.
    pub fn project_disabled() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "project_disabled",
            "this project is disabled; an admin of its organization can enable it again",
        )
    }

    pub fn refresh_token_reused(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "refresh_token_reused", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "method not allowed on this route",
        )
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; quote the correlation id to support",
        );
        e.internal = Some(cause.to_string());
        e
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The refusal as an HTML page (the sign-in pages answer this way): `page` draws it from
    /// the status and message; the headers the envelope would carry (`Retry-After`,
    /// `RateLimit-*`) are kept.
    pub fn into_page(self, page: impl FnOnce(StatusCode, &str) -> Response) -> Response {
        self.log();
        let mut response = page(self.status, &self.message);
        self.write_headers(&mut response);
        response
    }

    fn write_headers(&self, response: &mut Response) {
        let Some(secs) = self.retry_after else { return };
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        if let Some(limit) = self.limit {
            let quota = Quota {
                limit: limit.get(),
                remaining: 0,
                reset_secs: secs,
            };
            quota.apply_to(response);
        }
    }

    /// The one log line of a failure, inside the request span that carries the correlation
    /// id. The body never names the cause of a server error, so this line always does: the
    /// recorded cause, else the message.
    fn log(&self) {
        let status = self.status.as_u16();
        match &self.internal {
            Some(cause) => {
                tracing::error!(code = self.code, status, cause = %cause, "request failed")
            }
            None if self.status.is_server_error() => {
                tracing::error!(code = self.code, status, cause = %self.message, "request failed")
            }
            None => tracing::debug!(code = self.code, status, "request refused"),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::invalid_field(e.field, e.message)
    }
}

impl From<AccessDenied> for ApiError {
    fn from(e: AccessDenied) -> Self {
        match e {
            AccessDenied::NotVisible => ApiError::not_found("no such organization"),
            AccessDenied::MembershipEnded | AccessDenied::NotInProject => {
                ApiError::forbidden(e.to_string())
            }
            AccessDenied::RoleTooLow(role) => ApiError::forbidden(format!(
                "this action requires the {} role or higher in the organization",
                role.as_str()
            ))
            .with_details(json!({"required_role": role.as_str()})),
        }
    }
}

impl From<portcullis_core::plan::PlanRefusal> for ApiError {
    fn from(r: portcullis_core::plan::PlanRefusal) -> Self {
        use portcullis_core::plan::PlanRefusal;
        let message = r.to_string();
        match r {
            PlanRefusal::Inactive(status) => Self::new(
                StatusCode::PAYMENT_REQUIRED,
                "subscription_inactive",
                message,
            )
            .with_details(json!({"status": status.as_str()})),
            PlanRefusal::LimitExceeded {
                resource,
                limit,
                used,
            } => Self::new(
                StatusCode::PAYMENT_REQUIRED,
                "subscription_limit_exceeded",
                message,
            )
            .with_details(json!({"limit": limit, "used": used, "resource": resource.as_str()})),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::NotFound => ApiError::not_found("not found"),
            StoreError::Invalid(e) => e.into(),
            StoreError::Refused(r) => r.into(),
            StoreError::TooManyWorkingKeys(t) => ApiError::conflict(t.to_string())
                .with_details(json!({"limit": t.limit, "resource": "secret_keys"})),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        let correlation_id = correlation::current();
        self.log();
        let mut body =
            json!({"code": self.code, "message": self.message, "correlation_id": correlation_id});
        if let Some(details) = self.details.take() {
            body["details"] = details;
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        self.write_headers(&mut response);
        response
    }
}

impl From<crate::infra::keys::KeyError> for ApiError {
    fn from(e: crate::infra::keys::KeyError) -> Self {
        if e.is_rejection() {
            ApiError::unauthenticated("token is invalid or expired")
        } else if let crate::infra::keys::KeyError::Store(portcullis_store::StoreError::Conflict(
            _,
        )) = e
        {
            ApiError::conflict(
                "another rotation of this algorithm happened at the same moment; retry",
            )
        } else {
            ApiError::internal(e)
        }
    }
}

impl From<crate::infra::passwords::PasswordError> for ApiError {
    fn from(e: crate::infra::passwords::PasswordError) -> Self {
        match e {
            crate::infra::passwords::PasswordError::Busy => ApiError::rate_limited(
                "too many sign-in attempts in progress; try again shortly",
                2,
            ),
            e => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Everything logged while `f` runs, inside a request span like the middleware's.
    fn logged(f: impl FnOnce() -> Response) -> (Response, String) {
        #[derive(Clone, Default)]
        struct Lines(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Lines {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .finish();
        let response = tracing::subscriber::with_default(subscriber, || {
            let _span = tracing::info_span!("request", correlation_id = "corr-42").entered();
            f()
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        (response, text)
    }

    async fn body(r: Response) -> Value {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn internal_errors_log_their_cause_once_and_never_send_it() {
        let store = || ApiError::from(StoreError::Corrupt("pool timed out".into()));
        let keys = || ApiError::internal("getrandom failed");
        let bare = || ApiError {
            internal: None,
            ..ApiError::internal("unused")
        };
        for (make, cause) in [
            (&store as &dyn Fn() -> ApiError, "pool timed out"),
            (&keys, "getrandom failed"),
            (&bare, "internal error; quote the correlation id to support"),
        ] {
            let (response, log) = logged(|| make().into_response());
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let lines: Vec<_> = log.lines().filter(|l| l.contains(cause)).collect();
            assert_eq!(lines.len(), 1, "{log}");
            assert!(
                lines[0].contains("corr-42") && lines[0].contains("ERROR"),
                "{log}"
            );
            let body = body(response).await;
            assert_eq!(body["code"], "internal");
            assert!(!body.to_string().contains("pool timed out"), "{body}");
            assert!(!body.to_string().contains("getrandom"), "{body}");
        }
    }

    #[tokio::test]
    async fn refusals_log_quietly() {
        let (response, log) = logged(|| ApiError::not_found("no such org").into_response());
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(log.contains("DEBUG") && !log.contains("ERROR"), "{log}");
        assert_eq!(body(response).await["message"], "no such org");
    }
}
