//! Web sign-up, sign-in and sign-out.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::invitation::AcceptRefusal;
use portcullis_core::password::Password;
use portcullis_core::{Email, UserName};
use serde::Deserialize;

use crate::features::auth::accounts;
use crate::features::auth::service::{AuthError, NewAccount};
use crate::http::cookies::{clear_cookie, session_cookie};
use crate::http::dto::{
    JoinedOrg, LoginRequest, LoginResponse, SessionDto, SignupRequest, SignupResponse,
};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, Auth, RequestMeta};
use crate::state::AppState;

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidCredentials => ApiError::unauthenticated(e.to_string()),
            AuthError::EmailTaken => ApiError::conflict(e.to_string()),
            AuthError::PasswordLoginDisabled => ApiError::feature_disabled(e.to_string()),
            AuthError::Invitation(AcceptRefusal::Unavailable) => ApiError::not_found(e.to_string()),
            AuthError::Invitation(AcceptRefusal::WrongAccount) => {
                ApiError::forbidden(e.to_string())
            }
            AuthError::SetupTokenInvalid => ApiError::ott_invalid(e.to_string()),
            AuthError::SignInThrottled(refused) | AuthError::SignupThrottled(refused) => {
                ApiError::rate_limited(e.to_string(), refused.retry_after).with_limit(refused.limit)
            }
            AuthError::Invalid(e) => e.into(),
            AuthError::Password(e) => e.into(),
            AuthError::Store(e) => e.into(),
            AuthError::Randomness(_) => ApiError::internal(e),
        }
    }
}

#[utoipa::path(post, path = "/v1/auth/signup", tag = "auth", request_body = SignupRequest,
    responses(
        (status = 201, description = "Account, personal org and default project created; session cookie set. With `invitation`, the account also joins the inviting org with the invited role (`joined`), in the same transaction", body = SignupResponse),
        (status = 400, description = "invalid_request (details name the field)", body = crate::http::dto::ErrorBody),
        (status = 403, description = "forbidden: the invitation is addressed to another email; nothing was created", body = crate::http::dto::ErrorBody),
        (status = 404, description = "not_found: the invitation is unknown, expired, revoked or already used; nothing was created", body = crate::http::dto::ErrorBody),
        (status = 409, description = "conflict: email already registered", body = crate::http::dto::ErrorBody),
        (status = 413, description = "payload_too_large: body over max_json_body_bytes", body = crate::http::dto::ErrorBody),
        (status = 429, description = "rate_limited: too many sign-ups from this address; Retry-After and RateLimit-* headers", body = crate::http::dto::ErrorBody),
    ))]
pub async fn signup(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    ApiJson(req): ApiJson<SignupRequest>,
) -> ApiResult<Response> {
    let account = NewAccount {
        email: Email::parse(&req.email)?,
        password: Password::new_for_signup(req.password)?,
        name: req.name.as_deref().map(UserName::parse).transpose()?,
        invitation: req.invitation,
    };
    let signed_up = accounts(&state).sign_up(account, &meta).await?;
    let body = SignupResponse {
        user: (&signed_up.user).into(),
        org: (&signed_up.org).into(),
        project: (&signed_up.project).into(),
        joined: signed_up.joined.as_ref().map(|i| JoinedOrg {
            org_id: i.org_id.0,
            role: i.role.as_str().to_owned(),
            invitation_id: i.id.0,
        }),
    };
    Ok((
        StatusCode::CREATED,
        [(
            header::SET_COOKIE,
            session_cookie(&state, signed_up.token.expose()),
        )],
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
        (status = 413, description = "payload_too_large: body over max_json_body_bytes", body = crate::http::dto::ErrorBody),
        (status = 429, description = "rate_limited: too many sign-in attempts from this address or for this account from this address (or too many in progress); Retry-After and RateLimit-* headers", body = crate::http::dto::ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let signed_in = accounts(&state)
        .password_sign_in(&req.email, req.password, &meta)
        .await?;
    let body = LoginResponse {
        user: (&signed_in.user).into(),
        session: SessionDto::new(&signed_in.session, Some(signed_in.session.id)),
    };
    Ok((
        [(
            header::SET_COOKIE,
            session_cookie(&state, signed_in.token.expose()),
        )],
        axum::Json(body),
    )
        .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordSetupRequest {
    /// The `pst_…` token from the `setup_url` an org admin was given.
    pub token: String,
    pub password: String,
}

#[utoipa::path(post, path = "/v1/auth/password-setup", tag = "auth", request_body = PasswordSetupRequest,
    responses(
        (status = 200, description = "First password of an admin-created account set; signed in, session cookie set", body = LoginResponse),
        (status = 400, description = "invalid_request: a bad or unknown field (details name it), e.g. a too short password", body = crate::http::dto::ErrorBody),
        (status = 401, description = "ott_invalid: the password-setup token is unknown, expired or already used", body = crate::http::dto::ErrorBody),
        (status = 403, description = "feature_disabled: password sign-in is switched off", body = crate::http::dto::ErrorBody),
    ))]
pub async fn password_setup(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    ApiJson(req): ApiJson<PasswordSetupRequest>,
) -> ApiResult<Response> {
    let password = Password::new_for_signup(req.password)?;
    let signed_in = accounts(&state)
        .set_first_password(&req.token, password, &meta)
        .await?;
    let body = LoginResponse {
        user: (&signed_in.user).into(),
        session: SessionDto::new(&signed_in.session, Some(signed_in.session.id)),
    };
    Ok((
        [(
            header::SET_COOKIE,
            session_cookie(&state, signed_in.token.expose()),
        )],
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
pub async fn logout(State(state): State<AppState>, auth: Auth) -> ApiResult<Response> {
    accounts(&state)
        .sign_out(auth.principal.user_id, &auth.session.session, &auth.audit)
        .await?;
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, clear_cookie(&state))],
    )
        .into_response())
}
