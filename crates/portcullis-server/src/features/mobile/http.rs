//! Mobile sign-in over HTTP: capabilities, the one-time-token exchange, refresh and revoke
//! (JSON, `/api/v1/mobile/auth/*`). The browser hand-off is in `mobile/handoff.rs`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{AuditContext, DeviceInfo};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::mobile;
use super::service::{Exchange, Exchanged, Mobile, MobileError, Tokens};
use crate::http::dto::{OrgDto, ProjectDto, UserDto};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::RequestMeta;
use crate::infra::rate_limit::Quota;
use crate::state::AppState;

impl From<MobileError> for ApiError {
    fn from(e: MobileError) -> Self {
        let message = e.to_string();
        match e {
            MobileError::SwitchedOff => ApiError::feature_disabled(message),
            MobileError::FeatureDisabled { plan } => ApiError::feature_disabled(message)
                .with_details(serde_json::json!({"feature": "mobile_access", "plan": plan})),
            MobileError::RateLimited { retry_after, .. } => {
                ApiError::rate_limited(message, retry_after)
            }
            MobileError::OttInvalid => ApiError::ott_invalid(message),
            MobileError::MembershipEnded | MobileError::ProjectAccessEnded => {
                ApiError::forbidden(message)
            }
            MobileError::RefreshTokenReused => ApiError::refresh_token_reused(message),
            MobileError::Unauthenticated => ApiError::unauthenticated(message),
            // Only the hand-off meets it, and it answers on the redirect; here it is a refusal.
            MobileError::NoOrganization => ApiError::forbidden(message),
            MobileError::NoAppScheme => ApiError::not_found(message),
            MobileError::Store(e) => e.into(),
            MobileError::Mint(e) => ApiError::internal(e),
            MobileError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
}

#[derive(Serialize, ToSchema)]
pub struct Capabilities {
    /// False when mobile sign-in is switched off on this server.
    pub enabled: bool,
    /// Upstream sign-in providers available right now.
    pub providers: Vec<crate::infra::upstream::ProviderSummary>,
    pub password_login: bool,
    pub ott_ttl_sec: i64,
    pub server: ServerInfo,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceRequest {
    /// e.g. `ios`, `android`.
    pub platform: String,
    pub model: Option<String>,
    pub app_version: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    /// The `ott_…` value from the deep link.
    pub ott: String,
    /// The `state` the app sent to the hand-off.
    pub state: String,
    /// The PKCE verifier (RFC 7636: 43–128 characters of `A-Z a-z 0-9 - . _ ~`) whose S256
    /// challenge the hand-off got. Required: a missing or malformed one is
    /// `400 invalid_request` with `details.field = code_verifier`; a wrong one `401 ott_invalid`.
    pub code_verifier: String,
    pub device: DeviceRequest,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ExchangeResponse {
    /// A JWT for `Authorization: Bearer` on this server's API.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// `rt_…`, rotated by every refresh.
    pub refresh_token: String,
    pub user: UserDto,
    pub org: OrgDto,
    pub project: ProjectDto,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_token: String,
}

/// The request's `Host`, as the client addressed the server.
pub(crate) fn request_host(headers: &HeaderMap) -> &str {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Every mobile route answers only on an allowed host.
fn check_host(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let host = request_host(headers);
    if state.mobile.host_allowed(host) {
        Ok(())
    } else {
        Err(ApiError::host_not_allowlisted(host))
    }
}

#[utoipa::path(get, path = "/api/v1/mobile/auth/capabilities", tag = "mobile",
    responses(
        (status = 200, description = "What the app may offer; `enabled: false` when mobile sign-in is off", body = Capabilities),
        (status = 403, description = "host_not_allowlisted", body = crate::http::dto::ErrorBody),
    ),
    security(()))]
pub async fn capabilities(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Capabilities>> {
    check_host(&state, &headers)?;
    Ok(Json(Capabilities {
        enabled: state.mobile.enabled,
        providers: state.sso.available(),
        password_login: state.password_login,
        ott_ttl_sec: state.mobile.ott_ttl.whole_seconds(),
        server: ServerInfo {
            name: "Portcullis".into(),
            version: crate::VERSION.into(),
        },
    }))
}

fn bounded(field: &str, value: Option<&str>, max: usize) -> ApiResult<()> {
    match value {
        Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => {
            Err(ApiError::invalid_field(
                field,
                format!("{field} must be at most {max} printable characters"),
            ))
        }
        _ => Ok(()),
    }
}

fn device_info(d: DeviceRequest) -> ApiResult<DeviceInfo> {
    if d.platform.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "device.platform",
            "device.platform is required (e.g. ios, android)",
        ));
    }
    bounded("device.platform", Some(&d.platform), 32)?;
    bounded("device.model", d.model.as_deref(), 128)?;
    bounded("device.app_version", d.app_version.as_deref(), 64)?;
    Ok(DeviceInfo {
        platform: d.platform.trim().to_owned(),
        model: d.model,
        app_version: d.app_version,
    })
}

fn limited(quota: Quota) -> ApiError {
    MobileError::RateLimited {
        retry_after: quota.reset_secs,
    }
    .into()
}

#[utoipa::path(post, path = "/api/v1/mobile/auth/exchange", tag = "mobile", request_body = ExchangeRequest,
    responses(
        (status = 200, description = "Signed in: an access token, a refresh token, the user and the org", body = ExchangeResponse),
        (status = 400, description = "invalid_request (details.field names the field; code_verifier when it is missing or malformed)", body = crate::http::dto::ErrorBody),
        (status = 401, description = "ott_invalid: unknown, expired or spent one-time token, wrong state or PKCE verifier", body = crate::http::dto::ErrorBody),
        (status = 403, description = "host_not_allowlisted or feature_disabled", body = crate::http::dto::ErrorBody),
        (status = 429, description = "rate_limited, with Retry-After and RateLimit-* headers", body = crate::http::dto::ErrorBody),
    ),
    security(()))]
pub async fn exchange(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // Every answer past the attempt's limit tells the app where it stands (RateLimit-*
    // headers), refusals included; the route's tighter limit replaces them at the edge.
    let mut quota = None;
    let mut r = match exchange_inner(&state, meta, headers, body, &mut quota).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    state.metrics.ott_exchange(r.status().as_u16());
    if let Some(q) = quota {
        q.apply_to(&mut r);
    }
    r
}

async fn exchange_inner(
    state: &AppState,
    meta: AuditContext,
    headers: HeaderMap,
    body: axum::body::Bytes,
    quota: &mut Option<Quota>,
) -> ApiResult<Response> {
    // The per-address limit is the `ott_exchange` route class, spent at the edge.
    let mobile = checked(state, &headers)?;
    let req: ExchangeRequest = parse_json(&headers, &body)?;
    if req.state.is_empty() {
        return Err(ApiError::invalid_field("state", "state is required"));
    }
    // Checked before the token is touched: an app that forgot its verifier can still retry.
    if !portcullis_core::pkce::verifier_well_formed(&req.code_verifier) {
        return Err(ApiError::invalid_field(
            "code_verifier",
            "code_verifier is required: the PKCE verifier (43-128 characters of A-Z a-z 0-9 - . _ ~) \
             whose S256 code_challenge the hand-off got",
        ));
    }
    let device = device_info(req.device)?;
    match mobile.attempt_quota(&req.state) {
        Ok(q) => *quota = Some(q),
        Err(q) => {
            *quota = Some(q);
            return Err(limited(q));
        }
    }
    let request = Exchange {
        ott: req.ott,
        state: req.state,
        code_verifier: req.code_verifier,
        device,
    };
    let Exchanged {
        tokens: issued,
        user,
        org,
        project,
    } = mobile.exchange(request, meta).await?;
    let body = ExchangeResponse {
        access_token: issued.access_token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
        refresh_token: issued.refresh_token,
        user: (&user).into(),
        org: (&org).into(),
        project: (&project).into(),
    };
    Ok(no_store(Json(body).into_response()))
}

/// The service, once the request came to an allowed host while mobile sign-in is on.
fn checked<'a>(state: &'a AppState, headers: &HeaderMap) -> ApiResult<Mobile<'a>> {
    check_host(state, headers)?;
    let mobile = mobile(state);
    mobile.ensure_enabled()?;
    Ok(mobile)
}

fn parse_json<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> ApiResult<T> {
    crate::http::extract::require_json_content_type(headers)?;
    crate::http::extract::parse_json_body(body)
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

#[utoipa::path(post, path = "/api/v1/mobile/auth/refresh", tag = "mobile", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token and the rotated refresh token", body = TokenPair),
        (status = 400, description = "invalid_request", body = crate::http::dto::ErrorBody),
        (status = 401, description = "refresh_token_reused (family and session revoked) or unauthenticated (unknown, expired or revoked)", body = crate::http::dto::ErrorBody),
        (status = 403, description = "host_not_allowlisted or feature_disabled", body = crate::http::dto::ErrorBody),
    ),
    security(()))]
pub async fn refresh(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let mobile = checked(&state, &headers)?;
    let req: RefreshRequest = parse_json(&headers, &body)?;
    let Tokens {
        access_token,
        expires_in,
        refresh_token,
    } = mobile.refresh(&req.refresh_token, meta).await?;
    state
        .metrics
        .token_issued(crate::infra::metrics::TokenGrant::MobileRefresh);
    Ok(no_store(
        Json(TokenPair {
            access_token,
            token_type: "Bearer".into(),
            expires_in,
            refresh_token,
        })
        .into_response(),
    ))
}

#[utoipa::path(post, path = "/api/v1/mobile/auth/revoke", tag = "mobile", operation_id = "mobile_revoke", request_body = RefreshRequest,
    responses(
        (status = 204, description = "Signed out: the refresh family and its session are revoked (also answered for unknown tokens)"),
        (status = 400, description = "invalid_request", body = crate::http::dto::ErrorBody),
        (status = 403, description = "host_not_allowlisted or feature_disabled", body = crate::http::dto::ErrorBody),
    ),
    security(()))]
pub async fn revoke(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let mobile = checked(&state, &headers)?;
    let req: RefreshRequest = parse_json(&headers, &body)?;
    mobile.revoke(&req.refresh_token, meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_api_code() {
        let cases = [
            (MobileError::SwitchedOff, 403, "feature_disabled"),
            (
                MobileError::FeatureDisabled {
                    plan: "free".into(),
                },
                403,
                "feature_disabled",
            ),
            (
                MobileError::RateLimited { retry_after: 7 },
                429,
                "rate_limited",
            ),
            (MobileError::OttInvalid, 401, "ott_invalid"),
            (MobileError::MembershipEnded, 403, "forbidden"),
            (MobileError::ProjectAccessEnded, 403, "forbidden"),
            (MobileError::RefreshTokenReused, 401, "refresh_token_reused"),
            (MobileError::Unauthenticated, 401, "unauthenticated"),
            (MobileError::NoAppScheme, 404, "not_found"),
            (MobileError::Internal("x".into()), 500, "internal"),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status.as_u16(), api.code), (status, code));
        }
        let limited = ApiError::from(MobileError::RateLimited { retry_after: 7 });
        assert_eq!(limited.retry_after, Some(7));
        assert!(
            limited.message.contains("from this app"),
            "{}",
            limited.message
        );
    }
}
