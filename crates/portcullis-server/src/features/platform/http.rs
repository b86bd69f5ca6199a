//! Handlers of the developer platform: project keys, public config, backend health, and
//! org subscriptions.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{OrgId, Role};
use portcullis_store::platform::{SecretKeyRecord, SubscriptionState};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::features::platform::service::{PlatformError, PlatformService};
use crate::http::dto::{ErrorBody, ts};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth, KeyAuth, ProjectCtx};
use crate::state::AppState;

impl From<PlatformError> for ApiError {
    fn from(e: PlatformError) -> Self {
        match e {
            PlatformError::Invalid(v) => v.into(),
            PlatformError::NotAdmin | PlatformError::NotOperator => {
                ApiError::forbidden(e.to_string())
            }
            PlatformError::UnknownPublishableKey => ApiError::not_found(e.to_string()),
            PlatformError::Random(e) => ApiError::internal(e),
            PlatformError::Store(e) => e.into(),
        }
    }
}

fn service(state: &AppState) -> PlatformService<'_> {
    PlatformService {
        store: &*state.store,
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SecretKeyDto {
    /// The key's first characters (`sk_live_abcd1234`); the key itself is never shown again.
    pub prefix: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// When a newer key superseded this one: the end of its grace period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl From<&SecretKeyRecord> for SecretKeyDto {
    fn from(k: &SecretKeyRecord) -> Self {
        Self {
            prefix: k.prefix.clone(),
            created_at: ts(k.created_at),
            last_used_at: k.last_used_at.map(ts),
            expires_at: k.expires_at.map(ts),
        }
    }
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProjectKeysDto {
    /// `pk_live_…` / `pk_test_…`: for browsers and apps; not a secret.
    pub publishable_key: String,
    #[schema(example = "live")]
    pub mode: String,
    /// Working secret keys, newest first.
    pub secret_keys: Vec<SecretKeyDto>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyRequest {
    /// How long the project's current secret keys keep working (0 = stop now; at most
    /// 30 days).
    pub grace_seconds: u64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RotatedKeyDto {
    /// The new secret key: shown once, store it now.
    pub secret_key: String,
    pub prefix: String,
    pub created_at: String,
    /// The keys this one superseded, with the end of their grace period.
    pub superseded: Vec<SecretKeyDto>,
}

#[utoipa::path(get, path = "/v1/project/keys", tag = "platform",
    params(("X-Project-ID" = Option<uuid::Uuid>, Header, description = "The project to act on (not needed with a secret key)")),
    responses(
        (status = 200, description = "The project's publishable key and working secret keys (prefixes only)", body = ProjectKeysDto),
        (status = 400, description = "invalid_request: X-Project-ID missing or malformed", body = ErrorBody),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 403, description = "forbidden: not an admin of the project; project_disabled (secret key of a disabled project)", body = ErrorBody),
        (status = 404, description = "not_found: no such project visible to the caller", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ),
    security(("session_cookie" = []), ("bearer" = []), ("secret_key" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    ctx: ProjectCtx,
) -> ApiResult<Json<ProjectKeysDto>> {
    let keys = service(&state).keys(&ctx.project_access).await?;
    Ok(Json(ProjectKeysDto {
        publishable_key: keys.publishable_key,
        mode: keys.mode.as_str().to_owned(),
        secret_keys: keys.secret_keys.iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/project/keys/rotate", tag = "platform", request_body = RotateKeyRequest,
    params(("X-Project-ID" = Option<uuid::Uuid>, Header, description = "The project to act on (not needed with a secret key)")),
    responses(
        (status = 201, description = "The new secret key (shown once); older keys work until their grace ends", body = RotatedKeyDto),
        (status = 400, description = "invalid_request: grace_seconds missing or over 30 days", body = ErrorBody),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 403, description = "forbidden: not an admin of the project; project_disabled", body = ErrorBody),
        (status = 404, description = "not_found: no such project visible to the caller", body = ErrorBody),
        (status = 409, description = "conflict: the rotation would leave more than 10 secret keys working (details: limit, resource); rotate with grace_seconds = 0 or wait for an older key's grace to end", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ),
    security(("session_cookie" = []), ("bearer" = []), ("secret_key" = [])))]
pub async fn rotate_key(
    State(state): State<AppState>,
    ctx: ProjectCtx,
    ApiJson(req): ApiJson<RotateKeyRequest>,
) -> ApiResult<(StatusCode, Json<RotatedKeyDto>)> {
    let issued = service(&state)
        .rotate(&ctx.project_access, req.grace_seconds, &ctx.auth.audit)
        .await?;
    tracing::info!(prefix = %issued.rotated.key.prefix, project = %ctx.record.project.id, "secret key rotated");
    Ok((
        StatusCode::CREATED,
        Json(RotatedKeyDto {
            secret_key: issued.secret.expose().to_owned(),
            prefix: issued.rotated.key.prefix.clone(),
            created_at: ts(issued.rotated.key.created_at),
            superseded: issued.rotated.superseded.iter().map(Into::into).collect(),
        }),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublicConfigQuery {
    /// The project's publishable key (`pk_live_…` or `pk_test_…`).
    pub publishable_key: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SignInProviderDto {
    /// The provider's id in the sign-in routes: `google`, a configured id, or `org_<uuid>`
    /// for the org's own provider.
    pub id: String,
    /// The display name for the sign-in button.
    pub name: String,
    /// `server` (offered to everyone) or `org` (the project's org's own provider).
    #[schema(example = "org")]
    pub scope: String,
    /// Where to send the browser to sign in (add `return_to`, a URL on one of the project's
    /// allowed origins or a path on this server).
    pub start_url: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SignInMethodsDto {
    pub password: bool,
    /// Upstream providers available now: the server-wide ones, then the project's org's
    /// own (credentials that open and a discovery document that loads).
    pub sso: Vec<SignInProviderDto>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PublicConfigDto {
    pub project_id: uuid::Uuid,
    pub name: String,
    #[schema(example = "live")]
    pub mode: String,
    #[schema(example = "active")]
    pub status: String,
    pub redirect_uris: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub sign_in_methods: SignInMethodsDto,
}

/// The providers a project's users may sign in with: the server-wide ones, then its org's
/// own. The org is the project's, so no other org's provider can appear here.
async fn sign_in_providers(
    state: &AppState,
    project: &portcullis_core::Project,
) -> ApiResult<Vec<SignInProviderDto>> {
    let start = |id: &str| {
        format!(
            "{}/v1/auth/sso/{id}/start?project={}",
            state.public_url, project.id
        )
    };
    let mut out: Vec<SignInProviderDto> = state
        .sso
        .available()
        .into_iter()
        .map(|p| SignInProviderDto {
            start_url: start(&p.id),
            id: p.id,
            name: p.name,
            scope: "server".to_owned(),
        })
        .collect();
    let org = state.sso.org_available_by_id(project.org_id).await?;
    out.extend(org.into_iter().map(|p| SignInProviderDto {
        start_url: start(&p.id),
        id: p.id,
        name: p.name,
        scope: "org".to_owned(),
    }));
    Ok(out)
}

/// How long browsers and CDNs may reuse a public config answer.
const PUBLIC_CONFIG_MAX_AGE: &str = "public, max-age=60";

#[utoipa::path(get, path = "/v1/public/config", tag = "platform", params(PublicConfigQuery),
    responses(
        (status = 200, description = "The project's public sign-in config; CORS open, cacheable for 60 s, with an ETag", body = PublicConfigDto),
        (status = 304, description = "Not modified (If-None-Match matched the ETag)"),
        (status = 400, description = "invalid_request: publishable_key missing", body = ErrorBody),
        (status = 404, description = "not_found: no project has this publishable key", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ),
    security(()))]
pub async fn public_config(
    State(state): State<AppState>,
    Query(q): Query<PublicConfigQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some(pk) = q.publishable_key.as_deref() else {
        return Err(ApiError::invalid_field(
            "publishable_key",
            "publishable_key is required (pk_live_… or pk_test_…)",
        ));
    };
    let (project, mode) = service(&state).public_project(pk).await?;
    let body = PublicConfigDto {
        project_id: project.id.0,
        name: project.name.as_str().to_owned(),
        mode: mode.as_str().to_owned(),
        status: project.status.as_str().to_owned(),
        redirect_uris: project
            .redirect_uris
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect(),
        allowed_origins: project
            .allowed_origins
            .iter()
            .map(|o| o.as_str().to_owned())
            .collect(),
        sign_in_methods: SignInMethodsDto {
            password: state.password_login,
            sso: sign_in_providers(&state, &project).await?,
        },
    };
    let json = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let digest = Sha256::digest(&json);
    let etag = format!(
        "\"{}\"",
        digest[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let matched = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matched {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(PUBLIC_CONFIG_MAX_AGE),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(response)
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct BackendHealthDto {
    pub ok: bool,
    pub project_id: uuid::Uuid,
    pub key_prefix: String,
    pub key_created_at: String,
    /// When the presented key is superseded: when it stops working. Otherwise, when the
    /// project's older keys in their grace period stop working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_key_expires_at: Option<String>,
    /// Present when a newer secret key exists: switch the backend to it before this date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

#[utoipa::path(get, path = "/v1/backend/health", tag = "platform",
    responses(
        (status = 200, description = "The secret key works; a warning when a newer key exists", body = BackendHealthDto),
        (status = 401, description = "unauthenticated: no secret key, a mistyped one, or one past its grace period", body = ErrorBody),
        (status = 403, description = "project_disabled: the key's project is disabled", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ),
    security(("secret_key" = [])))]
pub async fn backend_health(
    State(state): State<AppState>,
    key: KeyAuth,
) -> ApiResult<Json<BackendHealthDto>> {
    let project_id = key.holder.project.id;
    let (expires, warning) = match key.superseded_until {
        Some(until) => (
            Some(until),
            Some(format!(
                "a newer secret key ({}) exists; this key stops working at {}",
                key.holder.newest.prefix,
                ts(until)
            )),
        ),
        None => (
            service(&state)
                .superseded_until(&key.project_access, key.holder.key.id)
                .await?,
            None,
        ),
    };
    Ok(Json(BackendHealthDto {
        ok: true,
        project_id: project_id.0,
        key_prefix: key.holder.key.prefix.clone(),
        key_created_at: ts(key.holder.key.created_at),
        superseded_key_expires_at: expires.map(ts),
        warning,
    }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UsageDto {
    pub used: u64,
    /// None: unlimited.
    pub limit: Option<u32>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SubscriptionDto {
    #[schema(example = "free")]
    pub plan: String,
    #[schema(example = "active")]
    pub status: String,
    /// Active memberships plus pending invitations.
    pub seats: UsageDto,
    pub projects: UsageDto,
    pub features: Vec<String>,
    pub current_period_start: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<String>,
}

impl From<&SubscriptionState> for SubscriptionDto {
    fn from(s: &SubscriptionState) -> Self {
        Self {
            plan: s.subscription.plan.as_str().to_owned(),
            status: s.subscription.status.as_str().to_owned(),
            seats: UsageDto {
                used: s.usage.seats,
                limit: s.plan.seat_limit,
            },
            projects: UsageDto {
                used: s.usage.projects,
                limit: s.plan.project_limit,
            },
            features: s
                .plan
                .features
                .iter()
                .map(|f| f.as_str().to_owned())
                .collect(),
            current_period_start: ts(s.subscription.current_period_start),
            current_period_end: s.subscription.current_period_end.map(ts),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutSubscriptionRequest {
    #[schema(example = "team")]
    pub plan: String,
    /// `active | trialing | past_due | canceled | inactive`
    #[schema(example = "active")]
    pub status: String,
    /// RFC 3339; in the future.
    pub current_period_end: Option<String>,
}

fn org_id(raw: &str) -> ApiResult<OrgId> {
    OrgId::parse(raw).ok_or_else(|| ApiError::not_found("no such organization"))
}

#[utoipa::path(get, path = "/v1/orgs/{org_id}/subscription", tag = "platform",
    params(("org_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The org's plan, status and usage", body = SubscriptionDto),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 403, description = "forbidden: membership ended", body = ErrorBody),
        (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ))]
pub async fn get_subscription(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriptionDto>> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Member).await?;
    let s = service(&state).subscription(&access).await?;
    Ok(Json((&s).into()))
}

#[utoipa::path(put, path = "/v1/orgs/{org_id}/subscription", tag = "platform", request_body = PutSubscriptionRequest,
    params(("org_id" = uuid::Uuid, Path)),
    responses(
        (status = 200, description = "The subscription after the change (audited as subscription.changed)", body = SubscriptionDto),
        (status = 400, description = "invalid_request: unknown plan or status, or a bad date", body = ErrorBody),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 403, description = "forbidden: only platform admins change subscriptions", body = ErrorBody),
        (status = 404, description = "not_found: no such org visible to the caller", body = ErrorBody),
        (status = 429, description = "rate_limited", body = ErrorBody),
    ))]
pub async fn put_subscription(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PutSubscriptionRequest>,
) -> ApiResult<Json<SubscriptionDto>> {
    let access = auth.org_access(&state, org_id(&id)?, Role::Member).await?;
    let end = req
        .current_period_end
        .as_deref()
        .map(|raw| {
            time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    ApiError::invalid_field(
                        "current_period_end",
                        "current_period_end must be an RFC 3339 timestamp",
                    )
                })
        })
        .transpose()?;
    let s = service(&state)
        .set_subscription(&access, &req.plan, &req.status, end, &auth.audit)
        .await?;
    Ok(Json((&s).into()))
}
