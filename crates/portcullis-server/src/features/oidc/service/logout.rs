//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): which sessions end, and
//! where the browser may be sent afterwards — only to a registered post-logout redirect URI.

use portcullis_core::oauth::{ClientId, OAuthClient};
use portcullis_core::{AuditContext, SessionId, TokenHash, UserId};
use portcullis_store::StoreError;

use crate::infra::keys::KeyError;
use crate::state::AppState;

/// The logout request's parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogoutParams<'a> {
    pub id_token_hint: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    pub client_id: Option<&'a str>,
}

/// What logout reads from an `id_token_hint`: who, in which session, for which client.
#[derive(Debug, serde::Deserialize)]
struct IdTokenHint {
    iss: String,
    aud: String,
    sub: String,
    #[serde(default)]
    sid: Option<SessionId>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("The id_token_hint was not issued by this server.")]
    HintNotOurs,
    #[error("client_id does not match the id_token_hint.")]
    ClientMismatch,
    #[error(
        "The post_logout_redirect_uri is not registered for this application (and without id_token_hint or client_id none can be)."
    )]
    UnregisteredRedirectUri,
    #[error("signing keys: {0}")]
    Keys(KeyError),
    #[error("logout store: {0}")]
    Store(#[from] StoreError),
}

/// Ends the browser's session (its cookie's `browser_token`) and the session the ID token
/// hint names; returns where to send the browser, if anywhere.
pub async fn logout(
    state: &AppState,
    p: &LogoutParams<'_>,
    browser_token: Option<&str>,
    meta: &AuditContext,
) -> Result<Option<url::Url>, LogoutError> {
    // The hint names the client and the session; it must have been signed by us.
    let hint = match p.id_token_hint {
        Some(t) => match state.keys.verify::<IdTokenHint>(t).await {
            Ok(claims) if claims.iss == state.oidc.issuer => Some(claims),
            Ok(_) => return Err(LogoutError::HintNotOurs),
            Err(e) if e.is_rejection() => return Err(LogoutError::HintNotOurs),
            Err(e) => return Err(LogoutError::Keys(e)),
        },
        None => None,
    };
    let hinted_client = hint.as_ref().and_then(|c| ClientId::parse(&c.aud));
    let client_id = match (p.client_id.and_then(ClientId::parse), hinted_client) {
        (Some(a), Some(b)) if a != b => return Err(LogoutError::ClientMismatch),
        (a, b) => a.or(b),
    };
    let client = match &client_id {
        Some(id) => super::find_client(state, id)
            .await?
            .map(|c| OAuthClient::clone(&c.client)),
        None => None,
    };
    let redirect = match p.post_logout_redirect_uri {
        None => None,
        Some(uri) => match &client {
            Some(c) if c.post_logout_redirect_allowed(uri) => url::Url::parse(uri).ok(),
            _ => return Err(LogoutError::UnregisteredRedirectUri),
        },
    };

    // End the browser's own session, and the session the ID token was issued in.
    if let Some(token) = browser_token
        && let Some(found) = state.store.session_by_token(&TokenHash::of(token)).await?
    {
        let meta = meta.with_actor(found.user.id);
        state
            .store
            .revoke_user_session(found.user.id, found.session.id, &meta)
            .await?;
    }
    if let Some(claims) = &hint
        && let (Some(sid), Some(sub)) = (claims.sid, UserId::parse(&claims.sub))
    {
        state
            .store
            .revoke_user_session(sub, sid, &meta.with_actor(sub))
            .await?;
    }

    Ok(redirect.map(|mut url| {
        if let Some(s) = p.state {
            url.query_pairs_mut().append_pair("state", s);
        }
        url
    }))
}
