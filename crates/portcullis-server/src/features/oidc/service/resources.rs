//! What the endpoints that take a token decide: userinfo (the user behind an access
//! token, RFC 6750 errors), introspection (RFC 7662) and revocation (RFC 7009).

use portcullis_core::access_token::AccessTokenClaims;
use portcullis_core::grant::RevocationReason;
use portcullis_core::oauth::{ClientId, OAuthClient};
use portcullis_core::scope::ScopeSet;
use portcullis_core::{AuditContext, OrgId, ProjectId, SessionId, TokenHash};
use portcullis_store::StoreError;

use super::client_auth::{ClientAuthError, ClientCredentials, authenticate_client};
use super::{MissingParameter, require};
use crate::features::oidc::issue::ProfileClaims;
use crate::infra::access_tokens::{self, LiveTokenError};
use crate::infra::keys::{JwtType, KeyError};
use crate::state::AppState;
use portcullis_core::token::is_refresh_token;

/// A live access token's claims (see [`access_tokens::live_access_token`]).
async fn live_access_token(
    state: &AppState,
    token: &str,
) -> Result<Option<std::sync::Arc<AccessTokenClaims>>, LiveTokenError> {
    access_tokens::live_access_token(
        &state.cache,
        &state.keys,
        &*state.store,
        &state.oidc.issuer,
        token,
    )
    .await
}

/// The userinfo response: `sub` and the claims the token's scopes unlock.
#[derive(Debug, serde::Serialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(flatten)]
    pub profile: ProfileClaims,
    pub org_id: OrgId,
    pub project_id: ProjectId,
}

#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    #[error("an access token is required (Authorization: Bearer)")]
    NoToken,
    #[error("the access token is invalid, expired or revoked")]
    InvalidToken,
    #[error("the access token lacks the openid scope")]
    NoOpenidScope,
    #[error("the token's subject is not a user")]
    NotAUser,
    #[error(transparent)]
    Token(#[from] LiveTokenError),
    #[error("user lookup: {0}")]
    Store(#[from] StoreError),
}

pub async fn userinfo(state: &AppState, bearer: Option<&str>) -> Result<UserInfo, UserinfoError> {
    let token = bearer.ok_or(UserinfoError::NoToken)?;
    let claims = live_access_token(state, token)
        .await?
        .ok_or(UserinfoError::InvalidToken)?;
    if !claims.scope.contains("openid") {
        return Err(UserinfoError::NoOpenidScope);
    }
    let user = match claims.user_id() {
        Some(id) => state.store.accounts().user_by_id(id).await?,
        None => None,
    };
    let user = user.ok_or(UserinfoError::NotAUser)?;
    Ok(UserInfo {
        sub: user.id.to_string(),
        profile: ProfileClaims::of(&user, &claims.scope),
        org_id: claims.org_id,
        project_id: claims.project_id,
    })
}

/// An introspection answer (RFC 7662 §2.2): `{"active": false}` or what the token is.
#[derive(Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<ScopeSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<ClientId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<ClientId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<ProjectId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<SessionId>,
}

impl Introspection {
    fn inactive() -> Self {
        Self::default()
    }

    fn of_access_token(c: &AccessTokenClaims) -> Self {
        Self {
            active: true,
            token_type: Some("Bearer"),
            scope: Some(c.scope.clone()),
            client_id: Some(c.client_id.clone()),
            sub: Some(c.sub.clone()),
            aud: Some(c.aud.clone()),
            iss: Some(c.iss.clone()),
            exp: Some(c.exp),
            iat: Some(c.iat),
            jti: Some(c.jti.clone()),
            org_id: Some(c.org_id),
            project_id: Some(c.project_id),
            sid: c.sid,
        }
    }
}

/// Introspection and revocation share these causes (RFC 7662 §2.3, RFC 7009 §2.2.1).
#[derive(Debug, thiserror::Error)]
pub enum TokenInspectionError {
    #[error(transparent)]
    Client(#[from] ClientAuthError),
    #[error("introspection needs an authenticated (confidential) client")]
    NotConfidential,
    #[error(transparent)]
    Missing(#[from] MissingParameter),
    #[error(transparent)]
    Token(#[from] LiveTokenError),
    #[error("signing keys: {0}")]
    Keys(KeyError),
    #[error("grant store: {0}")]
    Store(#[from] StoreError),
}

/// What introspection may say about a token to the calling client: only the client the
/// token was issued to learns anything; to everyone else every token is inactive.
pub async fn introspect(
    state: &AppState,
    creds: ClientCredentials<'_>,
    token: Option<&str>,
) -> Result<Introspection, TokenInspectionError> {
    let client = authenticate_client(state, creds).await?;
    if client.secret_hash.is_none() {
        return Err(TokenInspectionError::NotConfidential);
    }
    let token = require(token, "token")?;
    introspection_of(state, &client, token).await
}

async fn introspection_of(
    state: &AppState,
    client: &OAuthClient,
    token: &str,
) -> Result<Introspection, TokenInspectionError> {
    if is_refresh_token(token) {
        let Some(t) = state
            .store
            .grants()
            .refresh_token_state(client.org_id, &TokenHash::of(token))
            .await?
        else {
            return Ok(Introspection::inactive());
        };
        let now = portcullis_core::now();
        if t.family.client_id != client.id {
            return Ok(Introspection::inactive());
        }
        let session_live = match (t.ends_with_session, t.family.session_id) {
            (false, _) => true,
            (true, Some(sid)) => state.store.grants().session_live(sid, now).await?,
            (true, None) => false,
        };
        if !t.active(now, session_live) {
            return Ok(Introspection::inactive());
        }
        return Ok(Introspection {
            active: true,
            token_type: Some("refresh_token"),
            client_id: Some(client.id.clone()),
            scope: Some(ScopeSet::granted(&t.family.scope)),
            sub: Some(t.family.user_id.to_string()),
            iat: Some(t.created_at.unix_timestamp()),
            exp: Some(t.ends_at().unix_timestamp()),
            iss: Some(state.oidc.issuer.clone()),
            org_id: Some(t.family.org_id),
            project_id: Some(t.family.project_id),
            ..Introspection::default()
        });
    }
    match live_access_token(state, token).await? {
        Some(claims) if claims.client_id == client.id => {
            Ok(Introspection::of_access_token(&claims))
        }
        _ => Ok(Introspection::inactive()),
    }
}

/// Revokes a refresh token's family or an access token, when the calling client owns it;
/// anything else is quietly ignored (RFC 7009 §2.2 answers the same either way).
pub async fn revoke(
    state: &AppState,
    creds: ClientCredentials<'_>,
    token: Option<&str>,
    meta: &AuditContext,
) -> Result<(), TokenInspectionError> {
    let client = authenticate_client(state, creds).await?;
    let token = require(token, "token")?;
    if is_refresh_token(token) {
        if let Some(t) = state
            .store
            .grants()
            .refresh_token_state(client.org_id, &TokenHash::of(token))
            .await?
            && t.family.client_id == client.id
        {
            state
                .store
                .grants()
                .revoke_family(
                    client.org_id,
                    t.family.id,
                    RevocationReason::RevokedByClient,
                    meta,
                )
                .await?;
        }
        return Ok(());
    }
    let claims: AccessTokenClaims = match state.keys.verify(token, JwtType::AccessToken).await {
        Ok(claims) => claims,
        Err(e) if e.is_rejection() => return Ok(()),
        Err(e) => return Err(TokenInspectionError::Keys(e)),
    };
    if claims.client_id == client.id
        && let Some(exp) = claims.expires_at()
    {
        state
            .store
            .grants()
            .revoke_access_token(&claims.jti, exp)
            .await?;
    }
    Ok(())
}
