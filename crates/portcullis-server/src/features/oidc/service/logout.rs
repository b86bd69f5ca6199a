//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): whether the browser's
//! session ends at once or only after the user confirms, and where the browser may be sent
//! afterwards — only to a post-logout redirect URI registered by the client an ID token
//! hint was issued to.
//!
//! Logout ends the session of the browser's own cookie, never another: an ID token hint
//! identifies the application asking, it does not name a session to end.

use portcullis_core::oauth::{ClientId, OAuthClient};
use portcullis_core::{AuditContext, TokenHash, UserId};
use portcullis_store::{SessionWithUser, StoreError};

use crate::infra::keys::{Expiry, JwtType, KeyError};
use crate::state::AppState;

/// The logout request's parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogoutParams<'a> {
    pub id_token_hint: Option<&'a str>,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    pub client_id: Option<&'a str>,
}

/// What logout reads from an `id_token_hint`: who, for which client. An access token has
/// a `client_id` claim, an ID token never does: besides the `typ` header, that tells apart
/// an access token minted before access tokens carried `typ: at+jwt`.
#[derive(Debug, serde::Deserialize)]
struct IdTokenHint {
    iss: String,
    aud: String,
    sub: String,
    #[serde(default)]
    client_id: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("The id_token_hint was not issued by this server.")]
    HintNotOurs,
    #[error("The id_token_hint is not an ID token (an access token cannot be used to sign out).")]
    HintNotAnIdToken,
    #[error("client_id does not match the id_token_hint.")]
    ClientMismatch,
    #[error(
        "The post_logout_redirect_uri is not registered for the application the id_token_hint was issued to (and without a valid id_token_hint none can be used)."
    )]
    UnregisteredRedirectUri,
    #[error("signing keys: {0}")]
    Keys(KeyError),
    #[error("logout store: {0}")]
    Store(#[from] StoreError),
}

/// What a logout request leads to.
#[derive(Debug)]
pub enum LogoutPlan {
    /// End the browser's session (if it has one), then send the browser to `redirect`, or
    /// show the signed-out page.
    SignOut { redirect: Option<url::Url> },
    /// Ask the user first: nothing proves that an application of the signed-in user sent
    /// the browser here (no ID token hint, or one of somebody else). `redirect` is where
    /// the browser goes once they confirm.
    Confirm { redirect: Option<url::Url> },
}

/// The hint, when there is one: an ID token signed by this server for this issuer.
/// Expired ones still identify (the RP's session may long be over); access tokens never do.
async fn verified_hint(
    state: &AppState,
    hint: Option<&str>,
) -> Result<Option<IdTokenHint>, LogoutError> {
    let Some(token) = hint else { return Ok(None) };
    let claims = match state
        .keys
        .verify_with::<IdTokenHint>(token, JwtType::Jwt, Expiry::Ignore)
        .await
    {
        Ok(claims) => claims,
        Err(KeyError::WrongType { .. }) => return Err(LogoutError::HintNotAnIdToken),
        Err(e) if e.is_rejection() => return Err(LogoutError::HintNotOurs),
        Err(e) => return Err(LogoutError::Keys(e)),
    };
    if claims.iss != state.oidc.issuer {
        return Err(LogoutError::HintNotOurs);
    }
    if claims.client_id.is_some() {
        return Err(LogoutError::HintNotAnIdToken);
    }
    Ok(Some(claims))
}

/// Decides a logout request for the browser's live session (if any), ending nothing.
/// `confirmed`: the user confirmed on our own page.
pub async fn plan(
    state: &AppState,
    p: &LogoutParams<'_>,
    browser: Option<&SessionWithUser>,
    confirmed: bool,
) -> Result<LogoutPlan, LogoutError> {
    let hint = verified_hint(state, p.id_token_hint).await?;
    let hinted_client = hint.as_ref().and_then(|c| ClientId::parse(&c.aud));
    if let (Some(asked), Some(hinted)) = (p.client_id.and_then(ClientId::parse), &hinted_client)
        && asked != *hinted
    {
        return Err(LogoutError::ClientMismatch);
    }
    // Only the client the hint was issued to can name where to go afterwards: a bare
    // client_id proves nothing, so anyone could otherwise bounce a user through here.
    let redirect = match p.post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let client = match &hinted_client {
                Some(id) => super::find_client(state, id)
                    .await?
                    .map(|c| OAuthClient::clone(&c.client)),
                None => None,
            };
            match client {
                Some(c) if c.post_logout_redirect_allowed(uri) => {
                    let mut url =
                        url::Url::parse(uri).map_err(|_| LogoutError::UnregisteredRedirectUri)?;
                    if let Some(s) = p.state {
                        url.query_pairs_mut().append_pair("state", s);
                    }
                    Some(url)
                }
                _ => return Err(LogoutError::UnregisteredRedirectUri),
            }
        }
    };
    let hinted_user = hint.as_ref().and_then(|h| UserId::parse(&h.sub));
    let asked_by_users_app = browser.is_some_and(|b| hinted_user == Some(b.user.id));
    if browser.is_some() && !asked_by_users_app && !confirmed {
        return Ok(LogoutPlan::Confirm { redirect });
    }
    Ok(LogoutPlan::SignOut { redirect })
}

/// The browser's session, when its cookie names a live one.
pub async fn browser_session(
    state: &AppState,
    token: Option<&str>,
) -> Result<Option<SessionWithUser>, LogoutError> {
    let Some(token) = token else { return Ok(None) };
    let found = state
        .store
        .sessions()
        .session_by_token(&TokenHash::of(token))
        .await?;
    let now = portcullis_core::now();
    Ok(found.filter(|s| s.session.is_active(now)))
}

/// Ends the browser's own session — and with it the refresh tokens granted in it without
/// `offline_access`, in the same transaction.
pub async fn sign_out(
    state: &AppState,
    browser: Option<&SessionWithUser>,
    meta: &AuditContext,
) -> Result<(), LogoutError> {
    if let Some(found) = browser {
        let meta = meta.with_actor(found.user.id);
        state
            .store
            .sessions()
            .revoke_user_session(found.user.id, found.session.id, &meta)
            .await?;
    }
    Ok(())
}
