//! The two steps of an upstream sign-in, on top of the protocol pieces: `start` sends the
//! browser to the upstream; `complete` checks what comes back, decides who the user is
//! (see [`super::link`]), and opens a session exactly as a password sign-in does.

use portcullis_core::{Action, AuditContext, Email, SessionToken, User, UserId, UserName};
use portcullis_store::{SignupBootstrap, UserIdentity};
use serde_json::json;

use super::flow::{self, PendingSignIn, ReturnTo};
use super::id_token::{self, IdTokenError, IdentityClaims};
use super::link::{self, Decision};
use super::{Ready, SsoError};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The upstream's redirect back to us.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
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

pub struct Started {
    pub location: String,
    /// The sealed state cookie's value.
    pub cookie: String,
}

pub struct Completed {
    pub user: User,
    pub token: SessionToken,
    pub return_to: String,
}

pub fn not_available() -> ApiError {
    ApiError::not_found("no such SSO provider, or it is not available right now")
}

pub fn callback_uri(state: &AppState, provider: &str) -> String {
    format!("{}/v1/auth/sso/{provider}/callback", state.public_url)
}

fn upstream_failure(e: SsoError) -> ApiError {
    match e {
        SsoError::Internal(m) => ApiError::internal(m),
        SsoError::Upstream(m) => {
            let mut err = ApiError::invalid_request(
                "the identity provider could not complete the sign-in; try again, and quote the correlation id if it persists",
            );
            err.internal = Some(m);
            err
        }
    }
}

/// Checks `return_to` (relative, this server, or an allowed origin of a project).
pub async fn check_return_to(state: &AppState, raw: Option<&str>) -> ApiResult<String> {
    match flow::classify_return_to(raw, &state.public_origin) {
        ReturnTo::Ok(url) => Ok(url),
        ReturnTo::NeedsOrigin { url, origin } => {
            if state.store.sso().origin_allowed(&origin).await? {
                Ok(url)
            } else {
                Err(ApiError::invalid_field(
                    "return_to",
                    "return_to must be a path on this server, this server's URL, or an allowed origin of a project",
                ))
            }
        }
        ReturnTo::Refused => Err(ApiError::invalid_field(
            "return_to",
            "return_to must be a path on this server, this server's URL, or an allowed origin of a project",
        )),
    }
}

/// Step one: the authorization redirect and the cookie binding it to this browser.
pub async fn start(
    state: &AppState,
    provider: &str,
    return_to: Option<&str>,
    login_hint: Option<&str>,
) -> ApiResult<Started> {
    let ready = state
        .sso
        .resolve(provider)
        .await
        .ok_or_else(not_available)?;
    let return_to = check_return_to(state, return_to).await?;
    let pending = PendingSignIn::new(&ready.upstream.id, return_to).map_err(upstream_failure)?;
    let location = flow::authorize_url(
        &ready.meta,
        &ready.upstream,
        &callback_uri(state, &ready.upstream.id),
        &pending,
        login_hint.map(|h| h.trim()).filter(|h| h.len() <= 256),
    )
    .map_err(upstream_failure)?;
    Ok(Started {
        location,
        cookie: pending.seal(&state.master_key).map_err(upstream_failure)?,
    })
}

/// Records `login.failed` for an SSO sign-in; never fails the request over it.
async fn audit_failure(
    state: &AppState,
    meta: &AuditContext,
    provider: &str,
    user: Option<UserId>,
    reason: &str,
) {
    let mut event = meta
        .event(None, Action::LoginFailed, "user:unknown")
        .failed()
        .with_details(json!({"method": "sso", "provider": provider, "reason": reason}));
    if let Some(id) = user {
        event.actor_id = Some(id);
        event.target = Some(format!("user:{id}"));
    }
    if let Err(e) = state.store.record_audit(&event).await {
        tracing::error!(error = %e, "cannot record login.failed");
    }
}

async fn validate_id_token(
    state: &AppState,
    ready: &Ready,
    token: &str,
    nonce: &str,
) -> Result<IdentityClaims, IdTokenError> {
    let rule = ready.upstream.issuer_rule(&ready.meta);
    let expected = id_token::Expected {
        issuer: &rule,
        client_id: &ready.upstream.client_id,
        nonce,
    };
    match id_token::validate(token, &ready.meta.keys(), &expected) {
        Err(IdTokenError::UnknownKey) => {
            // The upstream may have rotated its keys since we fetched them.
            if let Some(http) = state.sso.http()
                && ready.meta.refresh_keys(http, state.sso.dev()).await
            {
                return id_token::validate(token, &ready.meta.keys(), &expected);
            }
            Err(IdTokenError::UnknownKey)
        }
        other => other,
    }
}

/// Step two: the callback. `cookie` is the state cookie's value, if the browser sent one.
pub async fn complete(
    state: &AppState,
    provider: &str,
    params: &CallbackParams,
    cookie: Option<&str>,
    meta: &AuditContext,
) -> ApiResult<Completed> {
    let pending = cookie.and_then(|c| PendingSignIn::open(&state.master_key, c));
    let state_ok = match (&pending, params.state.as_deref()) {
        (Some(p), Some(s)) => p.provider == provider && p.state_matches(s),
        _ => false,
    };
    let Some(pending) = pending.filter(|_| state_ok) else {
        audit_failure(state, meta, provider, None, "state_mismatch").await;
        let why = if cookie.is_none() {
            "this browser has no sign-in in progress (the sign-in cookie is missing); start the sign-in again"
        } else {
            "the sign-in state does not match the one this browser started, or it expired (10 minutes); start the sign-in again"
        };
        return Err(ApiError::state_mismatch(why));
    };
    if let Some(error) = &params.error {
        audit_failure(state, meta, provider, None, "upstream_error").await;
        let clean = |s: &str| -> String {
            s.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        };
        let description = params
            .error_description
            .as_deref()
            .map(|d| format!(": {}", clean(d)))
            .unwrap_or_default();
        return Err(ApiError::invalid_request(format!(
            "the identity provider did not sign you in ({}{description})",
            clean(error)
        ))
        .with_details(json!({"upstream_error": clean(error)})));
    }
    let ready = state
        .sso
        .resolve(provider)
        .await
        .ok_or_else(not_available)?;
    // RFC 9207: an upstream that names itself in the response must be the one we sent the
    // browser to (mix-up defense). Microsoft's multi-tenant template cannot be compared.
    if let Some(iss) = params.iss.as_deref()
        && !ready.meta.discovery.issuer.contains("{tenantid}")
        && iss != ready.meta.discovery.issuer
    {
        audit_failure(state, meta, provider, None, "issuer_mismatch").await;
        return Err(ApiError::invalid_field(
            "iss",
            "the authorization response names another issuer than this provider",
        ));
    }
    let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
        audit_failure(state, meta, provider, None, "code_missing").await;
        return Err(ApiError::invalid_field(
            "code",
            "the identity provider's answer carries no code",
        ));
    };
    let http = state.sso.http().ok_or_else(not_available)?;
    let id_token = match flow::exchange_code(
        http,
        &ready.meta,
        &ready.upstream,
        code,
        &callback_uri(state, &ready.upstream.id),
        &pending.verifier,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            audit_failure(state, meta, provider, None, "code_exchange_failed").await;
            return Err(upstream_failure(e));
        }
    };
    let claims = match validate_id_token(state, &ready, &id_token, &pending.nonce).await {
        Ok(c) => c,
        Err(e) => {
            audit_failure(state, meta, provider, None, "id_token_invalid").await;
            return Err(ApiError::invalid_request(format!(
                "the identity provider's ID token was refused: {e}"
            )));
        }
    };
    let Some(raw_email) = claims.email.as_deref() else {
        audit_failure(state, meta, provider, None, "email_is_missing").await;
        return Err(ApiError::email_is_missing(format!(
            "{} returned no `email` claim in the ID token; the operator must request the `email` scope \
             (scopes: {}) and make the provider release the `email` claim to this client",
            ready.upstream.name,
            ready.upstream.scopes.join(" ")
        )));
    };
    let email = Email::parse(raw_email).map_err(|_| {
        ApiError::invalid_request("the identity provider's `email` claim is not a valid address")
    })?;
    let user = resolve_user(state, &ready, &claims, email, meta).await?;
    if let Some((org_id, provider_id)) = ready.upstream.org {
        state
            .store
            .sso()
            .join_org_via_sso(org_id, &user, provider_id, meta)
            .await?;
    }
    let token = open_session(state, &user, meta, &ready.upstream.id).await?;
    Ok(Completed {
        user,
        token,
        return_to: pending.return_to,
    })
}

/// Who the upstream identity is here: linked, linked now, or created now.
async fn resolve_user(
    state: &AppState,
    ready: &Ready,
    claims: &IdentityClaims,
    email: Email,
    meta: &AuditContext,
) -> ApiResult<User> {
    let sso = state.store.sso();
    let by_identity = sso
        .user_by_identity(&claims.issuer, &claims.subject)
        .await?;
    let by_email = if by_identity.is_none() {
        state.store.user_by_email(&email).await?.map(|c| c.user)
    } else {
        None
    };
    let email_text = email.as_str().to_owned();
    let identity = |user_id: UserId| UserIdentity {
        user_id,
        issuer: claims.issuer.clone(),
        subject: claims.subject.clone(),
        email: email_text.clone(),
        provider_id: ready.upstream.org.map(|(_, id)| id),
        created_at: portcullis_core::now(),
    };
    match link::decide(by_identity, by_email, claims.email_verified) {
        Decision::SignIn(user) => Ok(user),
        Decision::Link(user) => {
            sso.link_identity(&identity(user.id), meta).await?;
            Ok(user)
        }
        Decision::RefuseUnverified => {
            audit_failure(state, meta, &ready.upstream.id, None, "email_not_verified").await;
            Err(ApiError::conflict(format!(
                "an account with this email exists, and {} does not confirm that the email is verified; \
                 sign in with your password instead — {} is linked to an existing account only once the \
                 provider marks the email as verified",
                ready.upstream.name, ready.upstream.name
            )))
        }
        Decision::Create => {
            let name = claims.name.as_deref().and_then(|n| UserName::parse(n).ok());
            let (org, project) = crate::routes::auth::personal_org(&email, name.as_ref())?;
            let user_id = UserId::new();
            let bootstrap = SignupBootstrap {
                user_id,
                email,
                name,
                password_hash: None,
                org,
                project,
                self_signup: true,
            };
            Ok(sso
                .signup_with_identity(&bootstrap, &identity(user_id), meta)
                .await?)
        }
    }
}

/// A session like password sign-in makes: `session.created` with `login.succeeded`
/// (method `sso`), one transaction.
async fn open_session(
    state: &AppState,
    user: &User,
    meta: &AuditContext,
    provider: &str,
) -> ApiResult<SessionToken> {
    let meta = meta.with_actor(user.id);
    let succeeded = meta
        .event(None, Action::LoginSucceeded, format!("user:{}", user.id))
        .with_details(json!({"method": "sso", "provider": provider}));
    let token = SessionToken::generate().map_err(ApiError::internal)?;
    let session = state.sessions.new_session(
        user.id,
        token.hash(),
        portcullis_core::now(),
        meta.ip.clone(),
        meta.user_agent.clone(),
    );
    state
        .store
        .create_session(&session, &meta, &[succeeded])
        .await?;
    Ok(token)
}
