//! The token endpoint's grants: authorization_code (with PKCE), refresh_token (rotation
//! with reuse detection and a grace window for concurrent retries) and client_credentials.

use portcullis_core::grant::{CodePresentation, CodeRefused};
use portcullis_core::oauth::{ClientType, GrantType, OAuthClient};
use portcullis_core::scope::ScopeSet;
use portcullis_core::{AuditContext, FamilyId, TokenHash};
use portcullis_store::{
    CodeRedemption, CodeRedemptionRequest, FamilyStart, RefreshOutcome, RefreshRotation, StoreError,
};

use super::client_auth::{ClientAuthError, ClientCredentials, authenticate_client};
use super::{MissingParameter, require};
use crate::features::oidc::issue::{self, Grant, IdTokenInput, IssueError};
use crate::state::AppState;

/// The token request's parameters (RFC 6749 §4.1.3, §6, §4.4).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenRequest<'a> {
    pub grant_type: Option<&'a str>,
    pub code: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    pub refresh_token: Option<&'a str>,
    pub scope: Option<&'a str>,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: ScopeSet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Client(#[from] ClientAuthError),
    #[error(transparent)]
    Missing(#[from] MissingParameter),
    #[error("grant_type {0:?} is not supported")]
    UnsupportedGrantType(String),
    #[error("this client may not use the {} grant", .0.as_str())]
    GrantNotAllowed(GrantType),
    #[error("client_credentials needs a confidential client")]
    NotConfidential,
    #[error(transparent)]
    Code(#[from] CodeRefused),
    /// The family is now revoked (the contract's `refresh_token_reused`).
    #[error("refresh token was already used; every token of its family is now revoked")]
    RefreshReused,
    #[error("refresh token has been revoked")]
    RefreshRevoked,
    #[error("refresh token has expired")]
    RefreshExpired,
    #[error("refresh token is invalid")]
    RefreshUnknown,
    #[error("the user no longer exists")]
    UserGone,
    #[error("{0}")]
    UnsupportedScope(String),
    #[error("requested scope exceeds the original grant")]
    ScopeBeyondGrant,
    #[error("openid and offline_access need a user; client_credentials has none")]
    ScopeNeedsUser,
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error("grant store: {0}")]
    Store(#[from] StoreError),
}

/// `POST /oauth2/token`: authenticates the client, then runs the grant it asked for.
pub async fn exchange(
    state: &AppState,
    creds: ClientCredentials<'_>,
    req: &TokenRequest<'_>,
    meta: &AuditContext,
) -> Result<TokenResponse, TokenError> {
    let client = authenticate_client(state, creds).await?;
    let grant_type = require(req.grant_type, "grant_type")?;
    let grant = GrantType::parse(grant_type)
        .map_err(|_| TokenError::UnsupportedGrantType(grant_type.to_owned()))?;
    if !client.allows_grant(grant) {
        return Err(TokenError::GrantNotAllowed(grant));
    }
    match grant {
        GrantType::AuthorizationCode => authorization_code(state, &client, req, meta).await,
        GrantType::RefreshToken => refresh(state, &client, req, meta).await,
        GrantType::ClientCredentials => client_credentials(state, &client, req).await,
    }
}

fn requested_scope(raw: &str) -> Result<ScopeSet, TokenError> {
    ScopeSet::parse(raw).map_err(|e| TokenError::UnsupportedScope(e.message))
}

async fn authorization_code(
    state: &AppState,
    client: &OAuthClient,
    req: &TokenRequest<'_>,
    meta: &AuditContext,
) -> Result<TokenResponse, TokenError> {
    let code = require(req.code, "code")?;
    let redirect_uri = require(req.redirect_uri, "redirect_uri")?;
    let now = portcullis_core::now();
    let code_hash = TokenHash::of(code);
    // The refresh token is drawn before the redemption, so that checking the code, spending
    // it and starting its family commit together or not at all.
    let first_refresh = if client.allows_grant(GrantType::RefreshToken) {
        Some(issue::new_refresh_token()?)
    } else {
        None
    };
    let family_ends = now + state.oidc.refresh_max_lifetime;
    let start = first_refresh.as_ref().map(|(_, hash)| FamilyStart {
        id: FamilyId::new(),
        first: hash,
        first_expires_at: family_ends.min(now + state.oidc.refresh_ttl),
        family_expires_at: Some(family_ends),
    });
    let redemption = state
        .store
        .grants()
        .redeem_code(
            &CodeRedemptionRequest {
                org_id: client.org_id,
                code_hash: &code_hash,
                presented: CodePresentation {
                    client,
                    redirect_uri,
                    code_verifier: req.code_verifier,
                },
                now,
                family: start,
            },
            meta,
        )
        .await?;
    let (code, family) = match redemption {
        CodeRedemption::Redeemed { code, family } => (code, family),
        // A replay has revoked what the code bought and told every node's cache.
        CodeRedemption::Refused(refused) => return Err(refused.into()),
    };
    let user = state
        .store
        .accounts()
        .user_by_id(code.user_id)
        .await?
        .ok_or(TokenError::UserGone)?;
    let scope = ScopeSet::granted(&code.scope);
    let grant = Grant {
        client,
        user: Some(&user),
        scope: &scope,
        org_id: code.org_id,
        project_id: code.project_id,
        session_id: code.session_id,
        family_id: family.as_ref().map(|f| f.id),
    };
    let access = issue::access_token(state, &grant, now).await?;
    let refresh_token = family.and(first_refresh).map(|(raw, _)| raw);
    let id_token = if scope.contains("openid") {
        let input = IdTokenInput {
            client,
            user: &user,
            scope: &scope,
            nonce: code.nonce.as_deref(),
            auth_time: code.auth_time,
            session_id: code.session_id,
            org_id: code.org_id,
            project_id: code.project_id,
        };
        Some(issue::id_token(state, &input, now).await?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        scope,
        refresh_token,
        id_token,
    })
}

async fn refresh(
    state: &AppState,
    client: &OAuthClient,
    req: &TokenRequest<'_>,
    meta: &AuditContext,
) -> Result<TokenResponse, TokenError> {
    let presented = require(req.refresh_token, "refresh_token")?;
    // Not shaped like one of our refresh tokens: no such token, without asking the store.
    if !portcullis_core::token::is_refresh_token(presented) {
        return Err(TokenError::RefreshUnknown);
    }
    let now = portcullis_core::now();
    let (successor, successor_hash) = issue::successor_of(state, presented);
    let outcome = state
        .store
        .grants()
        .rotate_refresh(
            &RefreshRotation {
                org_id: client.org_id,
                client_id: &client.id,
                presented: &TokenHash::of(presented),
                successor: &successor_hash,
                now,
                grace: state.oidc.refresh_grace,
                successor_expires_at: now + state.oidc.refresh_ttl,
                on_success: &[],
                reuse_ends_session: false,
            },
            meta,
        )
        .await?;
    let (family, holder) = match outcome {
        RefreshOutcome::Rotated(f, u) | RefreshOutcome::Retried(f, u) => (f, u),
        RefreshOutcome::ReuseDetected(_) => {
            state
                .metrics
                .refresh_reuse_detected(crate::infra::metrics::RefreshFlow::Oauth);
            return Err(TokenError::RefreshReused);
        }
        RefreshOutcome::Revoked(_) => return Err(TokenError::RefreshRevoked),
        RefreshOutcome::Expired(_) => return Err(TokenError::RefreshExpired),
        RefreshOutcome::Unknown => return Err(TokenError::RefreshUnknown),
    };
    // A narrower scope may be asked for (RFC 6749 §6), never a wider one.
    let granted = ScopeSet::granted(&family.scope);
    let scope = match req.scope {
        None => granted,
        Some(raw) => {
            let requested = requested_scope(raw)?;
            if !granted.covers(&requested) {
                return Err(TokenError::ScopeBeyondGrant);
            }
            requested
        }
    };
    // Read with the rotation, in its statement.
    let user = holder.ok_or(TokenError::UserGone)?;
    let grant = Grant {
        client,
        user: Some(&user),
        scope: &scope,
        org_id: family.org_id,
        project_id: family.project_id,
        session_id: family.session_id,
        family_id: Some(family.id),
    };
    let access = issue::access_token(state, &grant, now).await?;
    let id_token = if scope.contains("openid") {
        let input = IdTokenInput {
            client,
            user: &user,
            scope: &scope,
            nonce: None,
            auth_time: family.auth_time,
            session_id: family.session_id,
            org_id: family.org_id,
            project_id: family.project_id,
        };
        Some(issue::id_token(state, &input, now).await?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        scope,
        refresh_token: Some(successor),
        id_token,
    })
}

async fn client_credentials(
    state: &AppState,
    client: &OAuthClient,
    req: &TokenRequest<'_>,
) -> Result<TokenResponse, TokenError> {
    if client.client_type != ClientType::Confidential {
        return Err(TokenError::NotConfidential);
    }
    let scope = match req.scope {
        None => ScopeSet::default(),
        Some(raw) => requested_scope(raw)?,
    };
    if scope.contains("openid") || scope.contains("offline_access") {
        return Err(TokenError::ScopeNeedsUser);
    }
    let grant = Grant {
        client,
        user: None,
        scope: &scope,
        org_id: client.org_id,
        project_id: client.project_id,
        session_id: None,
        family_id: None,
    };
    let access = issue::access_token(state, &grant, portcullis_core::now()).await?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        scope,
        refresh_token: None,
        id_token: None,
    })
}
