//! Mobile sign-in over HTTP: capabilities, the one-time-token exchange, refresh and revoke
//! (JSON, `/api/v1/mobile/auth/*`). The browser hand-off is in `mobile/handoff.rs`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::{Action, AuditContext, DeviceInfo, OrgId, TokenHash, User};
use portcullis_store::{RefreshFamily, RefreshOutcome};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::dto::{OrgDto, ProjectDto, UserDto};
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestMeta;
use crate::mobile::{self, MOBILE_SCOPE};
use crate::oidc::issue::{self, Grant, REFRESH_PREFIX};
use crate::rate_limit::Quota;
use crate::state::AppState;

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
    pub providers: Vec<crate::sso::ProviderSummary>,
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
    /// PKCE verifier, required when the hand-off got a `code_challenge`.
    pub code_verifier: Option<String>,
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

fn check_enabled(state: &AppState) -> ApiResult<()> {
    if state.mobile.enabled {
        Ok(())
    } else {
        Err(ApiError::feature_disabled(
            "mobile sign-in is switched off on this server (PORTCULLIS_MOBILE_ENABLED)",
        ))
    }
}

fn org_disabled() -> ApiError {
    ApiError::feature_disabled("mobile sign-in is not available to this organization")
}

#[utoipa::path(get, path = "/api/v1/mobile/auth/capabilities", tag = "mobile",
    responses(
        (status = 200, description = "What the app may offer; `enabled: false` when mobile sign-in is off", body = Capabilities),
        (status = 403, description = "host_not_allowlisted", body = crate::dto::ErrorBody),
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
            version: crate::routes::health::VERSION.into(),
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

fn limited(quota: Quota, what: &str) -> ApiError {
    ApiError::rate_limited(
        format!("too many sign-in attempts from this {what}; retry after the Retry-After seconds"),
        quota.reset_secs,
    )
}

/// A failed step, in the trail support reads (`mobile.ott.exchanged` / `mobile.refresh.failed`
/// with outcome failure and the reason).
async fn audit_failure(
    state: &AppState,
    meta: &AuditContext,
    org: Option<OrgId>,
    action: Action,
    target: String,
    reason: &str,
) -> ApiResult<()> {
    let event = meta
        .event(org, action, target)
        .failed()
        .with_details(json!({"reason": reason}));
    state.store.record_audit(&event).await?;
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/mobile/auth/exchange", tag = "mobile", request_body = ExchangeRequest,
    responses(
        (status = 200, description = "Signed in: an access token, a refresh token, the user and the org", body = ExchangeResponse),
        (status = 400, description = "invalid_request (details.field names the field)", body = crate::dto::ErrorBody),
        (status = 401, description = "ott_invalid: unknown, expired or spent one-time token, wrong state or PKCE verifier", body = crate::dto::ErrorBody),
        (status = 403, description = "host_not_allowlisted or feature_disabled", body = crate::dto::ErrorBody),
        (status = 429, description = "rate_limited, with Retry-After and RateLimit-* headers", body = crate::dto::ErrorBody),
    ),
    security(()))]
pub async fn exchange(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // Every answer tells the app where it stands (RateLimit-* headers), refusals included.
    let mut quota = None;
    let mut r = match exchange_inner(&state, meta, headers, body, &mut quota).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if let Some(q) = quota {
        q.write_headers(r.headers_mut());
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
    check_host(state, &headers)?;
    check_enabled(state)?;
    let ip = meta.ip.as_deref().unwrap_or("unknown");
    match state.mobile_limits.per_ip.check(&format!("ip:{ip}")) {
        Ok(q) => *quota = Some(q),
        Err(q) => {
            *quota = Some(q);
            return Err(limited(q, "address"));
        }
    }
    let req: ExchangeRequest = parse_json(&headers, &body)?;
    if req.state.is_empty() {
        return Err(ApiError::invalid_field("state", "state is required"));
    }
    let device = device_info(req.device)?;
    match state.mobile_limits.per_client.check(&format!(
        "state:{}",
        URL_SAFE_NO_PAD.encode(TokenHash::of(&req.state).as_bytes())
    )) {
        // The tighter of the two limits is the one the app must respect.
        Ok(q) if quota.is_none_or(|ip| q.remaining < ip.remaining) => *quota = Some(q),
        Ok(_) => {}
        Err(q) => {
            *quota = Some(q);
            return Err(limited(q, "app"));
        }
    }
    let now = portcullis_core::now();
    let invalid =
        || ApiError::ott_invalid("the one-time token is invalid, expired or already used");
    if !req.ott.starts_with(mobile::OTT_PREFIX) {
        return Err(invalid());
    }
    let Some(ott) = state
        .store
        .mobile()
        .consume_ott(&TokenHash::of(&req.ott), now)
        .await?
    else {
        audit_failure(
            state,
            &meta,
            None,
            Action::MobileOttExchanged,
            "ott:unknown".into(),
            "unknown_or_used",
        )
        .await?;
        return Err(invalid());
    };
    // The token is spent from here on: whatever fails below, it cannot be tried again.
    let meta = meta.with_actor(ott.user_id);
    let target = format!("user:{}", ott.user_id);
    let failure = if ott.expires_at <= now {
        Some("expired")
    } else if !ott.state_hash.ct_eq(&TokenHash::of(&req.state)) {
        Some("state_mismatch")
    } else {
        match (&ott.code_challenge, &req.code_verifier) {
            (Some(challenge), Some(verifier)) if mobile::pkce_matches(verifier, challenge) => None,
            (Some(_), _) => Some("pkce_mismatch"),
            (None, _) => None,
        }
    };
    if let Some(reason) = failure {
        audit_failure(
            state,
            &meta,
            Some(ott.org_id),
            Action::MobileOttExchanged,
            target,
            reason,
        )
        .await?;
        return Err(invalid());
    }
    if !mobile::allowed_for_org(state, ott.org_id).await {
        return Err(org_disabled());
    }
    let Some(user) = state.store.user_by_id(ott.user_id).await? else {
        return Err(invalid());
    };
    let memberships = state.store.memberships_of_user(user.id).await?;
    let Some(membership) = memberships.iter().find(|m| m.org.id == ott.org_id) else {
        return Err(ApiError::forbidden(
            "your membership of this organization has ended",
        ));
    };
    let Some(project) = membership
        .projects
        .iter()
        .find(|p| p.project.id == ott.project_id)
    else {
        return Err(ApiError::forbidden(
            "you no longer have access to this project",
        ));
    };

    // The device's session: its token is derived from its id and never leaves the server.
    let mut session = state.sessions.new_session(
        user.id,
        TokenHash::of(""),
        now,
        meta.ip.clone(),
        meta.user_agent.clone(),
    );
    session.token_hash = TokenHash::of(&mobile::session_token(state, session.id));
    session.device = Some(device.clone());
    let exchanged = meta
        .event(
            Some(ott.org_id),
            Action::MobileOttExchanged,
            format!("session:{}", session.id),
        )
        .with_details(json!({
            "platform": device.platform,
            "model": device.model,
            "app_version": device.app_version,
            "pkce": ott.code_challenge.is_some(),
        }));
    // Session events belong to no org; the exchange belongs to the token's org (a separate
    // write: on PostgreSQL the two live under different row-level security contexts).
    state.store.create_session(&session, &meta, &[]).await?;
    state.store.record_audit(&exchanged).await?;

    let (refresh_token, refresh_hash) =
        issue::new_refresh_token().map_err(|e| ApiError::internal(e.description))?;
    let family = RefreshFamily {
        id: uuid::Uuid::now_v7(),
        client_id: state.mobile.client_id.clone(),
        org_id: ott.org_id,
        project_id: ott.project_id,
        user_id: user.id,
        session_id: Some(session.id),
        scope: MOBILE_SCOPE.into(),
        auth_time: ott.auth_time,
        created_at: now,
    };
    state
        .store
        .grants()
        .start_family(&family, &refresh_hash, now + state.oidc.refresh_ttl, None)
        .await?;
    let (access_token, expires_in) = access_token_for(state, &user, &family).await?;
    let body = ExchangeResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in,
        refresh_token,
        user: (&user).into(),
        org: (&membership.org).into(),
        project: (&project.project).into(),
    };
    Ok(no_store(Json(body).into_response()))
}

fn parse_json<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> ApiResult<T> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::invalid_request(
            "request body must be JSON (Content-Type: application/json)",
        ));
    }
    crate::extract::parse_json_body(body)
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}

async fn access_token_for(
    state: &AppState,
    user: &User,
    family: &RefreshFamily,
) -> ApiResult<(String, i64)> {
    let client = mobile::client(state, family.org_id, family.project_id);
    let grant = Grant {
        client: &client,
        user: Some(user),
        scope: &family.scope,
        org_id: family.org_id,
        project_id: family.project_id,
        session_id: family.session_id,
        family_id: Some(family.id),
    };
    let token = issue::access_token(state, &grant, portcullis_core::now())
        .await
        .map_err(|e| ApiError::internal(e.description))?;
    Ok((token.token, token.expires_in))
}

/// Ends a family's session too: the device is signed out, not just its refresh tokens.
async fn end_session(
    state: &AppState,
    family: &RefreshFamily,
    meta: &AuditContext,
) -> ApiResult<()> {
    if let Some(sid) = family.session_id {
        state
            .store
            .revoke_user_session(family.user_id, sid, meta)
            .await?;
    }
    state.cache.invalidate();
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/mobile/auth/refresh", tag = "mobile", request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token and the rotated refresh token", body = TokenPair),
        (status = 400, description = "invalid_request", body = crate::dto::ErrorBody),
        (status = 401, description = "refresh_token_reused (family and session revoked) or unauthenticated (unknown, expired or revoked)", body = crate::dto::ErrorBody),
        (status = 403, description = "host_not_allowlisted or feature_disabled", body = crate::dto::ErrorBody),
    ),
    security(()))]
pub async fn refresh(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    check_host(&state, &headers)?;
    check_enabled(&state)?;
    let req: RefreshRequest = parse_json(&headers, &body)?;
    let presented = req.refresh_token.as_str();
    let unauthenticated = || {
        ApiError::unauthenticated("the refresh token is invalid, expired or revoked; sign in again")
    };
    let hash = TokenHash::of(presented);
    let org = if presented.starts_with(REFRESH_PREFIX) {
        state.store.mobile().refresh_token_org(&hash).await?
    } else {
        None
    };
    let Some(org) = org else {
        audit_failure(
            &state,
            &meta,
            None,
            Action::MobileRefreshFailed,
            "refresh_family:unknown".into(),
            "unknown",
        )
        .await?;
        return Err(unauthenticated());
    };
    let now = portcullis_core::now();
    let (successor, successor_hash) =
        issue::successor_of(&state, presented).map_err(|e| ApiError::internal(e.description))?;
    let outcome = state
        .store
        .grants()
        .rotate_refresh(
            org,
            &state.mobile.client_id,
            &hash,
            &successor_hash,
            now,
            state.oidc.refresh_grace,
            now + state.oidc.refresh_ttl,
            &meta,
        )
        .await?;
    let (family, reason) = match outcome {
        RefreshOutcome::Rotated(f) | RefreshOutcome::Retried(f) => (f, None),
        RefreshOutcome::ReuseDetected(f) => {
            // The store revoked the family and wrote mobile.refresh.reuse_detected.
            end_session(&state, &f, &meta.with_actor(f.user_id)).await?;
            return Err(ApiError::refresh_token_reused(
                "this refresh token was already used; the sign-in it belonged to has been revoked — sign in again",
            ));
        }
        RefreshOutcome::Revoked(f) => (f, Some("revoked")),
        RefreshOutcome::Expired(f) => (f, Some("expired")),
        RefreshOutcome::Unknown => {
            audit_failure(
                &state,
                &meta,
                Some(org),
                Action::MobileRefreshFailed,
                "refresh_family:unknown".into(),
                "unknown",
            )
            .await?;
            return Err(unauthenticated());
        }
    };
    let meta = meta.with_actor(family.user_id);
    let target = format!("refresh_family:{}", family.id);
    if let Some(reason) = reason {
        audit_failure(
            &state,
            &meta,
            Some(org),
            Action::MobileRefreshFailed,
            target,
            reason,
        )
        .await?;
        return Err(unauthenticated());
    }
    // The session must still be live (signed out elsewhere, expired, user removed): then
    // the family ends with it. Resolving it also slides its expiry.
    let session_live = match family.session_id {
        Some(sid) => crate::extract::resolve_session(&state, &mobile::session_token(&state, sid))
            .await
            .is_ok(),
        None => false,
    };
    if !session_live || !mobile::allowed_for_org(&state, org).await {
        state
            .store
            .grants()
            .revoke_family(org, family.id, "session_ended", &meta)
            .await?;
        state.cache.invalidate();
        audit_failure(
            &state,
            &meta,
            Some(org),
            Action::MobileRefreshFailed,
            target,
            "session_ended",
        )
        .await?;
        if session_live {
            return Err(org_disabled());
        }
        return Err(unauthenticated());
    }
    let Some(user) = state.store.user_by_id(family.user_id).await? else {
        return Err(unauthenticated());
    };
    let (access_token, expires_in) = access_token_for(&state, &user, &family).await?;
    state
        .store
        .record_audit(&meta.event(Some(org), Action::MobileRefreshSucceeded, target))
        .await?;
    Ok(no_store(
        Json(TokenPair {
            access_token,
            token_type: "Bearer".into(),
            expires_in,
            refresh_token: successor,
        })
        .into_response(),
    ))
}

#[utoipa::path(post, path = "/api/v1/mobile/auth/revoke", tag = "mobile", request_body = RefreshRequest,
    responses(
        (status = 204, description = "Signed out: the refresh family and its session are revoked (also answered for unknown tokens)"),
        (status = 400, description = "invalid_request", body = crate::dto::ErrorBody),
        (status = 403, description = "host_not_allowlisted or feature_disabled", body = crate::dto::ErrorBody),
    ),
    security(()))]
pub async fn revoke(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    check_host(&state, &headers)?;
    check_enabled(&state)?;
    let req: RefreshRequest = parse_json(&headers, &body)?;
    let hash = TokenHash::of(&req.refresh_token);
    if !req.refresh_token.starts_with(REFRESH_PREFIX) {
        return Ok(StatusCode::NO_CONTENT);
    }
    let Some(org) = state.store.mobile().refresh_token_org(&hash).await? else {
        return Ok(StatusCode::NO_CONTENT);
    };
    let Some(t) = state.store.grants().refresh_token_state(org, &hash).await? else {
        return Ok(StatusCode::NO_CONTENT);
    };
    if t.family.client_id != state.mobile.client_id {
        return Ok(StatusCode::NO_CONTENT);
    }
    let meta = meta.with_actor(t.family.user_id);
    state
        .store
        .grants()
        .revoke_family(org, t.family.id, "logout", &meta)
        .await?;
    end_session(&state, &t.family, &meta).await?;
    state
        .store
        .record_audit(&meta.event(
            Some(org),
            Action::MobileLogout,
            format!("refresh_family:{}", t.family.id),
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
