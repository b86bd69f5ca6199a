//! Password sign-in and the session it opens, shared by the JSON API, the provider's login
//! page and the mobile hand-off.

use portcullis_core::password::Password;
use portcullis_core::{Email, SessionToken, User};

use crate::http::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Signs a user in: a new session row (audited) and its token for the cookie.
pub async fn start_session(
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
            state
                .metrics
                .sign_in(crate::infra::metrics::SignInMethod::Password, false);
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
    state
        .metrics
        .sign_in(crate::infra::metrics::SignInMethod::Password, true);
    Ok(Some((user, token, session)))
}
