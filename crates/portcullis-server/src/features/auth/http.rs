//! Web sign-up, sign-in and sign-out.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::bootstrap::personal_org;
use portcullis_core::password::Password;
use portcullis_core::{Email, UserId, UserName};
use portcullis_store::SignupBootstrap;

use crate::features::auth::service::{password_sign_in, start_session};
use crate::http::cookies::{clear_cookie, session_cookie};
use crate::http::dto::{LoginRequest, LoginResponse, SessionDto, SignupRequest, SignupResponse};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth, RequestMeta};
use crate::state::AppState;

#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "Account, personal org and default project created; session cookie set", body = SignupResponse),
        (status = 400, description = "invalid_request (details name the field)", body = crate::http::dto::ErrorBody),
        (status = 409, description = "conflict: email already registered", body = crate::http::dto::ErrorBody),
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
        (status = 400, description = "invalid_request", body = crate::http::dto::ErrorBody),
        (status = 401, description = "unauthenticated: wrong email or password (indistinguishable)", body = crate::http::dto::ErrorBody),
        (status = 403, description = "feature_disabled: password sign-in is switched off", body = crate::http::dto::ErrorBody),
        (status = 429, description = "rate_limited: too many sign-ins in progress", body = crate::http::dto::ErrorBody),
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

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses(
        (status = 204, description = "Current session revoked; cookie cleared"),
        (status = 401, description = "unauthenticated", body = crate::http::dto::ErrorBody),
        (status = 403, description = "forbidden: CSRF check failed", body = crate::http::dto::ErrorBody),
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
    state.cache.invalidate();
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie(&state))],
    )
        .into_response())
}
