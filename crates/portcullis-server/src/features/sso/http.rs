//! Upstream SSO: the public provider list, the sign-in redirect and callback, and the org
//! admins' management of their org's own OIDC providers. Protocol logic is in `crate::infra::upstream`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{OrgId, Role};
use portcullis_store::{OrgSsoProvider, SsoProviderPatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::features::sso::flow;
use crate::features::sso::service::{self, CallbackParams};
use crate::http::cookies::session_cookie;
use crate::http::dto::{ErrorBody, ts};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth, RequestMeta};
use crate::infra::upstream::ProviderSummary;
use crate::state::AppState;

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
    let mut providers = state.sso.available();
    if let Some(slug) = params
        .org
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        providers.extend(state.sso.org_available(slug).await?);
    }
    Ok(Json(SsoProviderList { providers }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartParams {
    /// Where to send the browser after sign-in: a path on this server, this server's URL,
    /// or a URL on an allowed origin of a project. Defaults to `/`.
    pub return_to: Option<String>,
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
        (status = 400, description = "invalid_request: return_to not allowed", body = ErrorBody),
        (status = 404, description = "not_found: unknown or unavailable provider", body = ErrorBody),
    ))]
pub async fn start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    params: QueryResult<StartParams>,
) -> ApiResult<Response> {
    let params = query(params)?;
    let started = service::start(
        &state,
        &provider,
        params.return_to.as_deref(),
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

#[utoipa::path(get, path = "/v1/auth/sso/{provider}/callback", tag = "sso",
    params(("provider" = String, Path), CallbackParams),
    security(()),
    responses(
        (status = 302, description = "Signed in: session cookie set, to `return_to`"),
        (status = 400, description = "state_mismatch (state missing, not this browser's, or expired), email_is_missing (the upstream released no email claim), invalid_request (upstream error, bad ID token)", body = ErrorBody),
        (status = 404, description = "not_found: unknown or unavailable provider", body = ErrorBody),
        (status = 409, description = "conflict: an account has this email and the upstream does not say it is verified", body = ErrorBody),
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
    match service::complete(&state, &provider, &params, cookie, &meta).await {
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
        Err(e) => ([clear], e).into_response(),
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

fn text(field: &str, v: &str, max: usize) -> ApiResult<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be 1 to {max} characters"),
        ));
    }
    Ok(v.to_owned())
}

fn issuer(state: &AppState, v: &str) -> ApiResult<String> {
    let v = text("issuer", v, 512)?;
    let parsed = url::Url::parse(&v).ok();
    let shape_ok = parsed
        .as_ref()
        .is_some_and(|u| u.query().is_none() && u.fragment().is_none());
    if !shape_ok || !crate::infra::upstream::discovery::url_allowed(&v, state.dev) {
        return Err(ApiError::invalid_field(
            "issuer",
            "issuer must be an https:// URL without query or fragment (http:// only for loopback hosts or in development mode)",
        ));
    }
    Ok(v)
}

fn scopes(v: Vec<String>) -> ApiResult<Vec<String>> {
    if v.len() > 20
        || v.iter().any(|s| {
            s.is_empty()
                || s.len() > 64
                || !s
                    .chars()
                    .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        })
    {
        return Err(ApiError::invalid_field(
            "scopes",
            "scopes must be up to 20 scope tokens (no spaces or quotes)",
        ));
    }
    Ok(crate::infra::upstream::normalize_scopes(v))
}

fn seal(state: &AppState, id: Uuid, secret: &str) -> ApiResult<Vec<u8>> {
    let secret = text("client_secret", secret, 4096)?;
    crate::infra::upstream::seal_client_secret(&state.master_key, id, &secret)
        .map_err(ApiError::internal)
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
    let rows = state.store.sso().list_providers(&access).await?;
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
    let now = portcullis_core::now();
    let id = Uuid::now_v7();
    let p = OrgSsoProvider {
        id,
        org_id: access.org_id(),
        name: text("name", &req.name, 100)?,
        issuer: issuer(&state, &req.issuer)?,
        client_id: text("client_id", &req.client_id, 512)?,
        client_secret_sealed: seal(&state, id, &req.client_secret)?,
        scopes: scopes(req.scopes.unwrap_or_default())?,
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .sso()
        .create_provider(&access, &p, &auth.audit)
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
    let p = state
        .store
        .sso()
        .get_provider(&access, provider_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("no such SSO provider"))?;
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
    let patch = SsoProviderPatch {
        name: req
            .name
            .as_deref()
            .map(|v| text("name", v, 100))
            .transpose()?,
        issuer: req
            .issuer
            .as_deref()
            .map(|v| issuer(&state, v))
            .transpose()?,
        client_id: req
            .client_id
            .as_deref()
            .map(|v| text("client_id", v, 512))
            .transpose()?,
        client_secret_sealed: req
            .client_secret
            .as_deref()
            .map(|v| seal(&state, id, v))
            .transpose()?,
        scopes: req.scopes.map(scopes).transpose()?,
    };
    let p = state
        .store
        .sso()
        .update_provider(&access, id, &patch, &auth.audit)
        .await?;
    state.sso.forget_org(id);
    Ok(Json((&p).into()))
}

#[utoipa::path(delete, path = "/v1/orgs/{org_id}/sso-providers/{id}", tag = "sso",
    params(("org_id" = uuid::Uuid, Path), ("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted; identities linked through it stay with their users"), (status = 403, description = "forbidden: not an admin of the org", body = ErrorBody), (status = 404, description = "not_found: no such provider in this org", body = ErrorBody)))]
pub async fn delete_org_provider(
    State(state): State<AppState>,
    auth: Auth,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = auth.org_access(&state, org_id(&org)?, Role::Admin).await?;
    let id = provider_id(&id)?;
    state
        .store
        .sso()
        .delete_provider(&access, id, &auth.audit)
        .await?;
    state.sso.forget_org(id);
    Ok(StatusCode::NO_CONTENT)
}
