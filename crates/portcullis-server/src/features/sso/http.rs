//! Upstream SSO: the public provider list, the sign-in redirect and callback, and the org
//! admins' management of their org's own OIDC providers. Protocol logic is in `crate::infra::upstream`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{OrgId, Role};
use portcullis_store::OrgSsoProvider;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::flow;
use super::service::org_providers::{NewOrgProvider, OrgProviderChanges, OrgProviderError};
use super::service::{SignInError, UpstreamAnswer};
use super::sso;
use crate::http::cookies::session_cookie;
use crate::http::dto::{ErrorBody, ts};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth, RequestMeta};
use crate::infra::upstream::{ProviderSummary, UpstreamError};
use crate::state::AppState;

impl From<SignInError> for ApiError {
    fn from(e: SignInError) -> Self {
        let message = e.to_string();
        match e {
            SignInError::NotAvailable => ApiError::not_found(message),
            SignInError::ReturnToRefused => ApiError::invalid_field("return_to", message),
            SignInError::StateMismatch { .. } => ApiError::state_mismatch(message),
            SignInError::UpstreamRefused { error, .. } => {
                ApiError::invalid_request(message).with_details(json!({"upstream_error": error}))
            }
            SignInError::IssuerMismatch => ApiError::invalid_field("iss", message),
            SignInError::CodeMissing => ApiError::invalid_field("code", message),
            SignInError::IdTokenRefused(_) | SignInError::EmailInvalid => {
                ApiError::invalid_request(message)
            }
            SignInError::EmailIsMissing { .. } => ApiError::email_is_missing(message),
            SignInError::EmailNotVerified { .. } => ApiError::email_not_verified(message),
            SignInError::DomainNotVerified { domain, .. } => {
                ApiError::domain_not_verified(message).with_details(json!({"domain": domain}))
            }
            SignInError::PlatformAdmin { .. } => ApiError::forbidden(message),
            SignInError::Upstream(UpstreamError::Internal(cause))
            | SignInError::Internal(cause) => ApiError::internal(cause),
            // What the upstream said goes to the log only, under the correlation id.
            SignInError::Upstream(UpstreamError::Failed(cause)) => {
                let mut err = ApiError::invalid_request(
                    "the identity provider could not complete the sign-in; try again, and quote the correlation id if it persists",
                );
                err.internal = Some(cause);
                err
            }
            SignInError::Invalid(e) => e.into(),
            SignInError::Store(e) => e.into(),
        }
    }
}

impl From<OrgProviderError> for ApiError {
    fn from(e: OrgProviderError) -> Self {
        match e {
            OrgProviderError::NotFound => ApiError::not_found(e.to_string()),
            OrgProviderError::Invalid(e) => e.into(),
            OrgProviderError::Store(e) => e.into(),
            OrgProviderError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

fn query<T>(q: QueryResult<T>) -> ApiResult<T> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::invalid_request(format!("invalid query: {}", e.body_text())))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SsoProviderList {
    pub providers: Vec<ProviderSummary>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProvidersParams {
    /// An org's slug: also list that org's own available providers.
    pub org: Option<String>,
}

#[utoipa::path(get, path = "/v1/auth/sso/providers", tag = "sso", params(ProvidersParams),
    security(()),
    responses(
        (status = 200, description = "Available providers: server-wide ones, then the org's (with `?org=`). Unavailable providers (credentials or discovery missing) are never listed.", body = SsoProviderList),
    ))]
pub async fn list_available(
    State(state): State<AppState>,
    params: QueryResult<ProvidersParams>,
) -> ApiResult<Json<SsoProviderList>> {
    let params = query(params)?;
    let providers = sso(&state).available(params.org.as_deref()).await?;
    Ok(Json(SsoProviderList { providers }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartParams {
    /// Where to send the browser after sign-in: a path on this server, this server's URL,
    /// or a URL on an allowed origin of the project named by `project`. Defaults to `/`.
    pub return_to: Option<String>,
    /// The project (id) the sign-in is for: its allowed origins are where `return_to` may
    /// point besides this server.
    pub project: Option<String>,
    /// Passed on to the upstream (pre-fills the account).
    pub login_hint: Option<String>,
}

fn state_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let name = flow::cookie_name(state.secure_cookies);
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly{secure}; Path=/; SameSite=Lax; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[utoipa::path(get, path = "/v1/auth/sso/{provider}/start", tag = "sso",
    params(("provider" = String, Path, description = "`google`, `microsoft`, a configured OIDC id, or `org_<uuid>` for an org's provider"), StartParams),
    security(()),
    responses(
        (status = 302, description = "To the upstream's authorization endpoint (state, nonce, PKCE S256); sets the short-lived sign-in cookie"),
        (status = 400, description = "invalid_request: return_to is neither on this server nor on an allowed origin of the named `project`", body = ErrorBody),
        (status = 404, description = "not_found: unknown or unavailable provider", body = ErrorBody),
    ))]
pub async fn start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    params: QueryResult<StartParams>,
) -> ApiResult<Response> {
    let params = query(params)?;
    let started = sso(&state)
        .start(
            &provider,
            params.return_to.as_deref(),
            params.project.as_deref(),
            params.login_hint.as_deref(),
        )
        .await?;
    let location = HeaderValue::from_str(&started.location)
        .map_err(|_| ApiError::internal("authorization URL is not a header value"))?;
    Ok((
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (
                header::SET_COOKIE,
                state_cookie(&state, &started.cookie, flow::STATE_TTL_SECS),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

/// The upstream's redirect back to us.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by the upstream when it refused or failed the sign-in.
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207 issuer identification; checked when present.
    pub iss: Option<String>,
}

impl From<CallbackParams> for UpstreamAnswer {
    fn from(p: CallbackParams) -> Self {
        Self {
            code: p.code,
            state: p.state,
            error: p.error,
            error_description: p.error_description,
            iss: p.iss,
        }
    }
}

#[utoipa::path(get, path = "/v1/auth/sso/{provider}/callback", tag = "sso",
    params(("provider" = String, Path), CallbackParams),
    security(()),
    responses(
        (status = 302, description = "Signed in: session cookie set, to `return_to`"),
        (status = 400, description = "state_mismatch (state missing, not this browser's, or expired), email_is_missing (the upstream released no email claim, neither in the ID token nor at userinfo), invalid_request (upstream error, bad ID token or userinfo answer)", body = ErrorBody),
        (status = 403, description = "email_not_verified: the upstream did not verify the address, and creating or linking an account needs a verified one; domain_not_verified: an org's provider asserted an address outside the org's verified domains; forbidden: an org's provider tried to sign in a platform admin", body = ErrorBody),
        (status = 404, description = "not_found: unknown or unavailable provider", body = ErrorBody),
        (status = 409, description = "conflict: the account could not be created (another sign-in created it at the same moment); try again", body = ErrorBody),
    ))]
pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    params: QueryResult<CallbackParams>,
) -> Response {
    // The sign-in cookie is single-use: cleared whatever happens.
    let clear = (header::SET_COOKIE, state_cookie(&state, "", 0));
    let params = match query(params) {
        Ok(p) => p,
        Err(e) => return ([clear], e).into_response(),
    };
    let cookie = portcullis_guard::cookie(&headers, flow::cookie_name(state.secure_cookies));
    match sso(&state)
        .complete(&provider, &params.into(), cookie, &meta)
        .await
    {
        Ok(done) => {
            let Ok(location) = HeaderValue::from_str(&done.return_to) else {
                return ApiError::internal("return_to is not a header value").into_response();
            };
            let mut response = (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response();
            let h = response.headers_mut();
            h.append(header::SET_COOKIE, clear.1);
            h.append(
                header::SET_COOKIE,
                session_cookie(&state, done.token.expose()),
            );
            response
        }
        Err(e) => ([clear], ApiError::from(e)).into_response(),
    }
}

// ---- org providers ----------------------------------------------------------------------

/// An org's OIDC provider as the API shows it. The client secret is write-only.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SsoProviderDto {
    pub id: Uuid,
    pub org_id: Uuid,
    /// The id to use in the sign-in routes: `org_<id>`.
    pub sign_in_id: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&OrgSsoProvider> for SsoProviderDto {
    fn from(p: &OrgSsoProvider) -> Self {
        Self {
            id: p.id,
            org_id: p.org_id.0,
            sign_in_id: crate::infra::upstream::org_provider_id(p.id),
            name: p.name.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            scopes: crate::infra::upstream::normalize_scopes(p.scopes.clone()),
            created_at: ts(p.created_at),
            updated_at: ts(p.updated_at),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrgSsoProviderList {
    pub providers: Vec<SsoProviderDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSsoProviderRequest {
    pub name: String,
    /// The issuer URL exactly as the provider's discovery document states it.
    pub issuer: String,
    pub client_id: String,
    /// Stored encrypted; never returned.
    pub client_secret: String,
    /// Defaults to `openid email profile`; `openid` is always requested.
    pub scopes: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchSsoProviderRequest {
    pub name: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Option<Vec<String>>,
}

fn org_id(raw: &str) -> ApiResult<OrgId> {
    OrgId::parse(raw).ok_or_else(|| ApiError::not_found("no such organization"))
}

fn provider_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("no such SSO provider"))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/sso-providers", tag = "sso",
    params(("org_id" = uuid::Uuid, Path)),
    responses((status = 200, description = "The org's SSO providers (never their client secrets)", body = OrgSsoProviderList), (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody), (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody)))]
pub async fn list_org_providers(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<OrgSsoProviderList>> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let rows = sso(&state).org_providers(&access).await?;
    Ok(Json(OrgSsoProviderList {
        providers: rows.iter().map(SsoProviderDto::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/orgs/{org_id}/sso-providers", tag = "sso",
    params(("org_id" = uuid::Uuid, Path)), request_body = CreateSsoProviderRequest,
    responses(
        (status = 201, description = "Created; members sign in at `/v1/auth/sso/{sign_in_id}/start` once its discovery loads", body = SsoProviderDto),
        (status = 400, description = "invalid_request: a bad or unknown field", body = ErrorBody), (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody), (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody),
    ))]
pub async fn create_org_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<CreateSsoProviderRequest>,
) -> ApiResult<(StatusCode, Json<SsoProviderDto>)> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Admin).await?;
    let new = NewOrgProvider {
        name: req.name,
        issuer: req.issuer,
        client_id: req.client_id,
        client_secret: req.client_secret,
        scopes: req.scopes,
    };
    let p = sso(&state)
        .create_org_provider(&access, new, &auth.audit)
        .await?;
    Ok((StatusCode::CREATED, Json((&p).into())))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/sso-providers/{id}", tag = "sso",
    params(("org_id" = uuid::Uuid, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "The provider (never its client secret)", body = SsoProviderDto), (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody), (status = 404, description = "not_found: no such provider in this org", body = ErrorBody)))]
pub async fn get_org_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<Json<SsoProviderDto>> {
    let access = auth.org_access(&state, org_id(&org)?, Role::Admin).await?;
    let p = sso(&state).org_provider(&access, provider_id(&id)?).await?;
    Ok(Json((&p).into()))
}

#[utoipa::path(patch, path = "/v1/orgs/{org_id}/sso-providers/{id}", tag = "sso",
    params(("org_id" = uuid::Uuid, Path), ("id" = uuid::Uuid, Path)), request_body = PatchSsoProviderRequest,
    responses((status = 200, description = "The provider after the change", body = SsoProviderDto), (status = 400, description = "invalid_request: a bad or unknown field", body = ErrorBody), (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody), (status = 404, description = "not_found: no such provider in this org", body = ErrorBody)))]
pub async fn patch_org_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path((org, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PatchSsoProviderRequest>,
) -> ApiResult<Json<SsoProviderDto>> {
    let access = auth.org_access(&state, org_id(&org)?, Role::Admin).await?;
    let id = provider_id(&id)?;
    let changes = OrgProviderChanges {
        name: req.name,
        issuer: req.issuer,
        client_id: req.client_id,
        client_secret: req.client_secret,
        scopes: req.scopes,
    };
    let p = sso(&state)
        .update_org_provider(&access, id, changes, &auth.audit)
        .await?;
    Ok(Json((&p).into()))
}

#[utoipa::path(delete, path = "/v1/orgs/{org_id}/sso-providers/{id}", tag = "sso",
    params(("org_id" = uuid::Uuid, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted, with the identities linked through it: nobody signs in through them again"), (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody), (status = 404, description = "not_found: no such provider in this org", body = ErrorBody)))]
pub async fn delete_org_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = auth.org_access(&state, org_id(&org)?, Role::Admin).await?;
    let id = provider_id(&id)?;
    sso(&state)
        .delete_org_provider(&access, id, &auth.audit)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_api_code() {
        let cases = [
            (SignInError::NotAvailable, 404, "not_found"),
            (SignInError::ReturnToRefused, 400, "invalid_request"),
            (
                SignInError::StateMismatch {
                    cookie_missing: true,
                },
                400,
                "state_mismatch",
            ),
            (SignInError::IssuerMismatch, 400, "invalid_request"),
            (SignInError::CodeMissing, 400, "invalid_request"),
            (
                SignInError::EmailIsMissing {
                    provider: "Upstream".into(),
                    scopes: "openid".into(),
                },
                400,
                "email_is_missing",
            ),
            (
                SignInError::EmailNotVerified {
                    provider: "Upstream".into(),
                },
                403,
                "email_not_verified",
            ),
            (
                SignInError::DomainNotVerified {
                    provider: "Upstream".into(),
                    domain: "example.com".into(),
                },
                403,
                "domain_not_verified",
            ),
            (
                SignInError::PlatformAdmin {
                    provider: "Upstream".into(),
                },
                403,
                "forbidden",
            ),
            (
                SignInError::Upstream(UpstreamError::Internal("x".into())),
                500,
                "internal",
            ),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!((api.status.as_u16(), api.code), (status, code));
        }
    }

    #[test]
    fn what_the_upstream_said_stays_in_the_log() {
        let api = ApiError::from(SignInError::Upstream(UpstreamError::Failed(
            "token endpoint: secret detail".into(),
        )));
        assert_eq!(api.code, "invalid_request");
        assert!(!api.message.contains("secret detail"));
        assert_eq!(
            api.internal.as_deref(),
            Some("token endpoint: secret detail")
        );
    }
}
