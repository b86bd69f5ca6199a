//! Minting what the token endpoint hands out: access tokens (`typ: at+jwt`, RFC 9068) and ID
//! tokens (`typ: JWT`), both signed by the key ring, and refresh tokens (opaque, stored as
//! digests, rotated deterministically).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::access_token::AccessTokenClaims;
use portcullis_core::oauth::OAuthClient;
use portcullis_core::scope::ScopeSet;
use portcullis_core::{FamilyId, OrgId, ProjectId, SessionId, Timestamp, TokenHash, User};

use crate::infra::keys::{JwtType, KeyError};
use crate::state::AppState;

/// Minting failed: always the server's fault.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("no randomness for a new token: {0}")]
    Random(#[from] getrandom::Error),
    #[error("cannot sign: {0}")]
    Sign(#[from] KeyError),
}

/// A refresh token fresh from the random source: `rt_` + 256 bits.
pub fn new_refresh_token() -> Result<(String, TokenHash), IssueError> {
    Ok(portcullis_core::token::new_refresh_token()?)
}

/// The one successor a refresh token can have: an HMAC of the presented token under a key
/// derived from the master key. Deterministic, so a retry inside the grace window receives
/// the very token the first request got — without the server ever storing it — and
/// unpredictable to anyone without both the old token and the key.
pub fn successor_of(state: &AppState, presented: &str) -> (String, TokenHash) {
    portcullis_core::token::refresh_token_from(crate::infra::crypto::mac(
        &state.oidc.rotation_key,
        presented.as_bytes(),
    ))
}

fn unix(t: Timestamp) -> i64 {
    t.unix_timestamp()
}

/// Who an access token speaks for, and within what.
pub struct Grant<'a> {
    pub client: &'a OAuthClient,
    /// The user, or None for client_credentials (the client is the subject).
    pub user: Option<&'a User>,
    pub scope: &'a ScopeSet,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub session_id: Option<SessionId>,
    pub family_id: Option<FamilyId>,
}

pub struct AccessToken {
    pub token: String,
    pub expires_in: i64,
}

pub async fn access_token(
    state: &AppState,
    g: &Grant<'_>,
    now: Timestamp,
) -> Result<AccessToken, IssueError> {
    let ttl = i64::from(g.client.access_token_ttl_secs);
    let claims = AccessTokenClaims {
        iss: state.oidc.issuer.clone(),
        sub: match g.user {
            Some(u) => u.id.to_string(),
            None => g.client.id.as_str().to_owned(),
        },
        aud: g.client.id.clone(),
        client_id: g.client.id.clone(),
        iat: unix(now),
        exp: unix(now) + ttl,
        jti: crate::http::correlation::new_id(),
        scope: g.scope.clone(),
        org_id: g.org_id,
        project_id: g.project_id,
        sid: g.session_id,
        fid: g.family_id,
    };
    let token = state
        .keys
        .sign(g.client.signing_alg, JwtType::AccessToken, &claims)
        .await?;
    Ok(AccessToken {
        token,
        expires_in: ttl,
    })
}

/// Claims a scope unlocks, shared by ID tokens and userinfo.
#[derive(Debug, Default, serde::Serialize)]
pub struct ProfileClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Present (possibly null) exactly when `profile` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<String>>,
}

impl ProfileClaims {
    pub fn of(user: &User, scope: &ScopeSet) -> Self {
        let mut claims = Self::default();
        if scope.contains("email") {
            claims.email = Some(user.email.as_str().to_owned());
            // Portcullis does not verify addresses yet; say so rather than pretend.
            claims.email_verified = Some(false);
        }
        if scope.contains("profile") {
            claims.name = Some(user.name.as_ref().map(|n| n.as_str().to_owned()));
        }
        claims
    }
}

#[derive(serde::Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    azp: &'a str,
    iat: i64,
    exp: i64,
    auth_time: i64,
    org_id: OrgId,
    project_id: ProjectId,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<SessionId>,
    #[serde(flatten)]
    profile: ProfileClaims,
}

pub struct IdTokenInput<'a> {
    pub client: &'a OAuthClient,
    pub user: &'a User,
    pub scope: &'a ScopeSet,
    pub nonce: Option<&'a str>,
    pub auth_time: Timestamp,
    pub session_id: Option<SessionId>,
    pub org_id: OrgId,
    pub project_id: ProjectId,
}

pub async fn id_token(
    state: &AppState,
    i: &IdTokenInput<'_>,
    now: Timestamp,
) -> Result<String, IssueError> {
    let claims = IdTokenClaims {
        iss: &state.oidc.issuer,
        sub: i.user.id.to_string(),
        aud: i.client.id.as_str(),
        azp: i.client.id.as_str(),
        iat: unix(now),
        exp: unix(now) + state.oidc.id_token_ttl.whole_seconds(),
        auth_time: unix(i.auth_time),
        org_id: i.org_id,
        project_id: i.project_id,
        nonce: i.nonce,
        sid: i.session_id,
        profile: ProfileClaims::of(i.user, i.scope),
    };
    Ok(state
        .keys
        .sign(i.client.signing_alg, JwtType::Jwt, &claims)
        .await?)
}

pub fn random_code() -> Result<(String, TokenHash), IssueError> {
    let bytes = portcullis_core::token::random_bytes::<32>()?;
    let raw = format!("ac_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = TokenHash::of(&raw);
    Ok((raw, hash))
}
