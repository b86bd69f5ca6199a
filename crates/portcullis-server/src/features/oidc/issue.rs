//! Minting what the token endpoint hands out: access tokens and ID tokens (JWTs signed by
//! the key ring) and refresh tokens (opaque, stored as digests, rotated deterministically).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::oauth::OAuthClient;
use portcullis_core::{OrgId, ProjectId, SessionId, Timestamp, TokenHash, User};
use serde_json::{Value, json};

use uuid::Uuid;

use crate::http::oauth_error::OAuthError;
use crate::state::AppState;

pub const REFRESH_PREFIX: &str = "rt_";

/// A refresh token fresh from the random source: `rt_` + 256 bits.
pub fn new_refresh_token() -> Result<(String, TokenHash), OAuthError> {
    let bytes = portcullis_core::token::random_bytes::<32>().map_err(OAuthError::server_error)?;
    let raw = format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = TokenHash::of(&raw);
    Ok((raw, hash))
}

/// The one successor a refresh token can have: an HMAC of the presented token under a key
/// derived from the master key. Deterministic, so a retry inside the grace window receives
/// the very token the first request got — without the server ever storing it — and
/// unpredictable to anyone without both the old token and the key.
pub fn successor_of(state: &AppState, presented: &str) -> Result<(String, TokenHash), OAuthError> {
    let mac = crate::infra::crypto::mac(&state.oidc.rotation_key, presented.as_bytes());
    let raw = format!("{REFRESH_PREFIX}{}", URL_SAFE_NO_PAD.encode(mac));
    let hash = TokenHash::of(&raw);
    Ok((raw, hash))
}

fn unix(t: Timestamp) -> i64 {
    t.unix_timestamp()
}

/// Who an access token speaks for, and within what.
pub struct Grant<'a> {
    pub client: &'a OAuthClient,
    /// The user, or None for client_credentials (the client is the subject).
    pub user: Option<&'a User>,
    pub scope: &'a str,
    pub org_id: OrgId,
    pub project_id: ProjectId,
    pub session_id: Option<SessionId>,
    pub family_id: Option<Uuid>,
}

pub struct AccessToken {
    pub token: String,
    pub expires_in: i64,
}

/// The access token's claims, serialized straight from this struct: the token endpoint's
/// hottest path, so no intermediate JSON map.
#[derive(serde::Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    client_id: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    scope: &'a str,
    org_id: OrgId,
    project_id: ProjectId,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<SessionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fid: Option<Uuid>,
}

pub async fn access_token(
    state: &AppState,
    g: &Grant<'_>,
    now: Timestamp,
) -> Result<AccessToken, OAuthError> {
    let ttl = i64::from(g.client.access_token_ttl_secs);
    let user_sub = g.user.map(|u| u.id.to_string());
    let claims = AccessClaims {
        iss: &state.oidc.issuer,
        sub: user_sub.as_deref().unwrap_or(g.client.id.as_str()),
        aud: g.client.id.as_str(),
        client_id: g.client.id.as_str(),
        iat: unix(now),
        exp: unix(now) + ttl,
        jti: crate::http::correlation::new_id(),
        scope: g.scope,
        org_id: g.org_id,
        project_id: g.project_id,
        sid: g.session_id,
        fid: g.family_id,
    };
    let token = state
        .keys
        .sign(g.client.signing_alg, &claims)
        .await
        .map_err(OAuthError::server_error)?;
    Ok(AccessToken {
        token,
        expires_in: ttl,
    })
}

pub struct IdTokenInput<'a> {
    pub client: &'a OAuthClient,
    pub user: &'a User,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: Timestamp,
    pub session_id: Option<SessionId>,
    pub org_id: OrgId,
    pub project_id: ProjectId,
}

/// Claims a scope unlocks, shared by ID tokens and userinfo.
pub fn user_claims(user: &User, scope: &str, claims: &mut Value) {
    let has = |s: &str| scope.split(' ').any(|x| x == s);
    if has("email") {
        claims["email"] = json!(user.email.as_str());
        // Portcullis does not verify addresses yet; say so rather than pretend.
        claims["email_verified"] = json!(false);
    }
    if has("profile") {
        claims["name"] = json!(user.name.as_ref().map(|n| n.as_str()));
    }
}

pub async fn id_token(
    state: &AppState,
    i: &IdTokenInput<'_>,
    now: Timestamp,
) -> Result<String, OAuthError> {
    let mut claims = json!({
        "iss": state.oidc.issuer,
        "sub": i.user.id.to_string(),
        "aud": i.client.id.as_str(),
        "azp": i.client.id.as_str(),
        "iat": unix(now),
        "exp": unix(now) + state.oidc.id_token_ttl.whole_seconds(),
        "auth_time": unix(i.auth_time),
        "org_id": i.org_id,
        "project_id": i.project_id,
    });
    if let Some(n) = i.nonce {
        claims["nonce"] = json!(n);
    }
    if let Some(sid) = i.session_id {
        claims["sid"] = json!(sid);
    }
    user_claims(i.user, i.scope, &mut claims);
    state
        .keys
        .sign(i.client.signing_alg, &claims)
        .await
        .map_err(OAuthError::server_error)
}

pub fn random_code() -> Result<(String, TokenHash), OAuthError> {
    let bytes = portcullis_core::token::random_bytes::<32>().map_err(OAuthError::server_error)?;
    let raw = format!("ac_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = TokenHash::of(&raw);
    Ok((raw, hash))
}
