//! Web sign-up, sign-in and sign-out.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::password::Password;
use portcullis_core::{
    Email, Org, OrgId, OrgName, Project, ProjectId, ProjectName, ProjectStatus, SessionToken, Slug,
    User, UserId, UserName,
};
use portcullis_store::SignupBootstrap;

use crate::dto::{LoginRequest, LoginResponse, SessionDto, SignupRequest, SignupResponse};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Auth, RequestMeta};
use crate::state::AppState;

/// Builds the `Set-Cookie` value for a new session, per api.md: `__Host-` + `Secure`
/// behind https, the bare name over plain http.
pub fn session_cookie(state: &AppState, token: &str) -> HeaderValue {
    let max_age = state.sessions.absolute_ttl.whole_seconds();
    let value = if state.secure_cookies {
        format!(
            "__Host-portcullis_session={token}; HttpOnly; Secure; Path=/; SameSite=Lax; Max-Age={max_age}"
        )
    } else {
        format!("portcullis_session={token}; HttpOnly; Path=/; SameSite=Lax; Max-Age={max_age}")
    };
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn clear_cookie(state: &AppState) -> HeaderValue {
    HeaderValue::from_static(if state.secure_cookies {
        "__Host-portcullis_session=; HttpOnly; Secure; Path=/; SameSite=Lax; Max-Age=0"
    } else {
        "portcullis_session=; HttpOnly; Path=/; SameSite=Lax; Max-Age=0"
    })
}

/// Signs a user in: a new session row (audited) and its token for the cookie.
async fn start_session(
    state: &AppState,
    user: &User,
    meta: &portcullis_core::AuditContext,
    also: &[portcullis_core::AuditEvent],
) -> ApiResult<(SessionToken, portcullis_core::Session)> {
    let token = SessionToken::generate().map_err(ApiError::internal)?;
    let session = state.sessions.new_session(
        user.id,
        token.hash(),
        portcullis_core::now(),
        meta.ip.clone(),
        meta.user_agent.clone(),
    );
    state.store.create_session(&session, meta, also).await?;
    Ok((token, session))
}

/// The personal org and default project self-signup creates for a new user.
pub fn personal_org(email: &Email, name: Option<&UserName>) -> ApiResult<(Org, Project)> {
    let now = portcullis_core::now();
    let label = name.map(|n| n.as_str()).unwrap_or(email.local_part());
    let org_id = OrgId::new();
    // A short random suffix keeps personal slugs unique without a lookup-then-insert race.
    let suffix = &org_id.0.simple().to_string()[24..];
    let org = Org {
        id: org_id,
        name: OrgName::parse(&format!("{label}'s organization"))
            .or_else(|_| OrgName::parse("Personal organization"))?,
        slug: Slug::derive(label).with_suffix(suffix),
        personal: true,
        created_at: now,
    };
    Ok((org, default_project(org_id, now)?))
}

pub fn default_project(org_id: OrgId, now: portcullis_core::Timestamp) -> ApiResult<Project> {
    Ok(Project {
        id: ProjectId::new(),
        org_id,
        name: ProjectName::parse("Default project")?,
        status: ProjectStatus::Active,
        redirect_uris: Vec::new(),
        allowed_origins: Vec::new(),
        created_at: now,
        updated_at: now,
    })
}

#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "Account, personal org and default project created; session cookie set", body = SignupResponse),
        (status = 400, description = "invalid_request (details name the field)", body = crate::dto::ErrorBody),
        (status = 409, description = "conflict: email already registered", body = crate::dto::ErrorBody),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    ApiJson(req): ApiJson<SignupRequest>,
) -> ApiResult<Response> {
    let email = Email::parse(&req.email)?;
    let password = Password::new_for_signup(req.password)?;
    let name = req.name.as_deref().map(UserName::parse).transpose()?;
    if state.store.user_by_email(&email).await?.is_some() {
        return Err(ApiError::conflict(
            "an account with this email already exists",
        ));
    }
    let password_hash = state.hasher.hash(password).await?;
    let (org, project) = personal_org(&email, name.as_ref())?;
    let bootstrap = SignupBootstrap {
        user_id: UserId::new(),
        email,
        name,
        password_hash: Some(password_hash),
        org,
        project,
        self_signup: true,
    };
    // The unique index decides races: of two concurrent signups one gets the conflict.
    let user = state.store.bootstrap_signup(&bootstrap, &meta).await?;
    let meta = meta.with_actor(user.id);
    let (token, _) = start_session(&state, &user, &meta, &[]).await?;
    let body = SignupResponse {
        user: (&user).into(),
        org: (&bootstrap.org).into(),
        project: (&bootstrap.project).into(),
    };
    Ok((
        StatusCode::CREATED,
        [(header::SET_COOKIE, session_cookie(&state, token.expose()))],
        axum::Json(body),
    )
        .into_response())
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in; session cookie set", body = LoginResponse),
        (status = 400, description = "invalid_request", body = crate::dto::ErrorBody),
        (status = 401, description = "unauthenticated: wrong email or password (indistinguishable)", body = crate::dto::ErrorBody),
        (status = 403, description = "feature_disabled: password sign-in is switched off", body = crate::dto::ErrorBody),
        (status = 429, description = "rate_limited: too many sign-ins in progress", body = crate::dto::ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    if !state.password_login {
        return Err(ApiError::feature_disabled(
            "password sign-in is switched off on this server (password_login); use a sign-in provider",
        ));
    }
    let Some((user, token, session)) =
        password_sign_in(&state, &req.email, req.password, &meta).await?
    else {
        return Err(ApiError::unauthenticated("email or password is incorrect"));
    };
    let body = LoginResponse {
        user: (&user).into(),
        session: SessionDto::new(&session, Some(session.id)),
    };
    Ok((
        [(header::SET_COOKIE, session_cookie(&state, token.expose()))],
        axum::Json(body),
    )
        .into_response())
}

/// Email + password sign-in, shared by the JSON API and the provider's login page. None
/// when the credentials are wrong — unknown, malformed or wrong alike, after the same
/// hashing work — and the failure is audited.
pub async fn password_sign_in(
    state: &AppState,
    email: &str,
    password: String,
    meta: &portcullis_core::AuditContext,
) -> ApiResult<Option<(User, SessionToken, portcullis_core::Session)>> {
    let password = Password::for_login(password)?;
    let account = match Email::parse(email) {
        Ok(email) => state.store.user_by_email(&email).await?,
        Err(_) => None,
    };
    let ok = state
        .hasher
        .verify(
            password,
            account.as_ref().and_then(|a| a.password_hash.clone()),
        )
        .await?;
    let account = match account {
        Some(a) if ok => a,
        account => {
            let mut event = meta
                .event(None, portcullis_core::Action::LoginFailed, "user:unknown")
                .failed();
            if let Some(a) = &account {
                event.actor_id = Some(a.user.id);
                event.target = Some(format!("user:{}", a.user.id));
            }
            state.store.record_audit(&event).await?;
            return Ok(None);
        }
    };
    let user = account.user;
    let meta = meta.with_actor(user.id);
    let succeeded = meta.event(
        None,
        portcullis_core::Action::LoginSucceeded,
        format!("user:{}", user.id),
    );
    let (token, session) = start_session(state, &user, &meta, &[succeeded]).await?;
    Ok(Some((user, token, session)))
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Current session revoked; cookie cleared"),
        (status = 401, description = "unauthenticated", body = crate::dto::ErrorBody),
        (status = 403, description = "forbidden: CSRF check failed", body = crate::dto::ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    auth: Auth,
    _headers: HeaderMap,
) -> ApiResult<Response> {
    let session = &auth.session.session;
    state
        .store
        .revoke_user_session(auth.principal.user_id, session.id, &auth.audit)
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie(&state))],
    )
        .into_response())
}
