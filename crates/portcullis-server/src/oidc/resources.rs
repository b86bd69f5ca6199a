//! Endpoints that take a token: userinfo (the user behind an access token), introspection
//! (RFC 7662) and revocation (RFC 7009).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use portcullis_core::TokenHash;
use portcullis_core::oauth::OAuthClient;
use serde_json::{Value, json};

use super::issue::{REFRESH_PREFIX, user_claims};
use super::oauth_error::OAuthError;
use super::params::{Params, authenticate_client};
use crate::extract::RequestMeta;
use crate::state::AppState;

/// A Portcullis access token that verifies, is unexpired, was issued here, and has not been
/// revoked (by itself, or through its refresh family).
pub async fn live_access_token(state: &AppState, token: &str) -> Result<Option<Value>, OAuthError> {
    let hash = TokenHash::of(token);
    let now = portcullis_core::now().unix_timestamp();
    if let Some(claims) = state.cache.live_token(&hash) {
        if claims["exp"].as_i64().is_some_and(|exp| exp > now) {
            return Ok(Some(Value::clone(&claims)));
        }
        return Ok(None);
    }
    // Read before the checks: a revocation landing meanwhile makes this entry stale at once.
    let epoch = state.cache.epoch();
    let Ok(claims) = state.keys.verify(token).await else {
        return Ok(None);
    };
    if claims["iss"] != json!(state.oidc.issuer) || claims.get("client_id").is_none() {
        return Ok(None);
    }
    if let Some(jti) = claims["jti"].as_str()
        && state.store.grants().access_token_revoked(jti).await?
    {
        return Ok(None);
    }
    if let (Some(fid), Some(org)) = (claims["fid"].as_str(), claims["org_id"].as_str())
        && let (Ok(fid), Some(org)) = (
            uuid::Uuid::parse_str(fid),
            portcullis_core::OrgId::parse(org),
        )
        && state.store.grants().family_revoked(org, fid).await?
    {
        return Ok(None);
    }
    state.cache.put_live_token(epoch, hash, claims.clone());
    Ok(Some(claims))
}

fn no_store(body: Value) -> Response {
    let mut r = axum::Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[utoipa::path(get, path = "/oauth2/userinfo", tag = "oidc",
    responses((status = 200, description = "sub and the claims the token's scopes unlock"), (status = 401, description = "invalid_token"), (status = 403, description = "insufficient_scope")),
    security(("bearer" = [])))]
pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let token = portcullis_guard::bearer(&headers).ok_or_else(|| {
        OAuthError::invalid_token("an access token is required (Authorization: Bearer)")
    })?;
    let claims = live_access_token(&state, token).await?.ok_or_else(|| {
        OAuthError::invalid_token("the access token is invalid, expired or revoked")
    })?;
    let scope = claims["scope"].as_str().unwrap_or_default().to_owned();
    if !scope.split(' ').any(|s| s == "openid") {
        return Err(OAuthError::insufficient_scope(
            "the access token lacks the openid scope",
        ));
    }
    let user_id = claims["sub"]
        .as_str()
        .and_then(portcullis_core::UserId::parse);
    let user = match user_id {
        Some(id) => state.store.user_by_id(id).await?,
        None => None,
    };
    let user =
        user.ok_or_else(|| OAuthError::invalid_token("the token's subject is not a user"))?;
    let mut body = json!({"sub": user.id.to_string()});
    user_claims(&user, &scope, &mut body);
    body["org_id"] = claims["org_id"].clone();
    body["project_id"] = claims["project_id"].clone();
    Ok(no_store(body))
}

/// What introspection may say about a token to this client: only the client the token was
/// issued to learns anything; to everyone else every token is inactive.
async fn introspection_of(
    state: &AppState,
    client: &OAuthClient,
    token: &str,
) -> Result<Value, OAuthError> {
    let inactive = json!({"active": false});
    if token.starts_with(REFRESH_PREFIX) {
        let Some(t) = state
            .store
            .grants()
            .refresh_token_state(client.org_id, &TokenHash::of(token))
            .await?
        else {
            return Ok(inactive);
        };
        let now = portcullis_core::now();
        if t.family.client_id != client.id || t.used || t.family_revoked || t.expires_at <= now {
            return Ok(inactive);
        }
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": client.id.as_str(),
            "scope": t.family.scope,
            "sub": t.family.user_id.to_string(),
            "iat": t.created_at.unix_timestamp(),
            "exp": t.expires_at.unix_timestamp(),
            "iss": state.oidc.issuer,
            "org_id": t.family.org_id,
            "project_id": t.family.project_id,
        }));
    }
    let Some(claims) = live_access_token(state, token).await? else {
        return Ok(inactive);
    };
    if claims["client_id"] != json!(client.id.as_str()) {
        return Ok(inactive);
    }
    let mut body = json!({"active": true, "token_type": "Bearer"});
    for k in [
        "scope",
        "client_id",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "jti",
        "org_id",
        "project_id",
        "sid",
    ] {
        if let Some(v) = claims.get(k) {
            body[k] = v.clone();
        }
    }
    Ok(body)
}

#[utoipa::path(post, path = "/oauth2/introspect", tag = "oidc",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "token, token_type_hint?; client authentication"),
    responses((status = 200, description = "RFC 7662 response; `active: false` for tokens of other clients"), (status = 401, description = "invalid_client")))]
pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = Params::parse(&body)?;
    let client = authenticate_client(&state, &headers, &params).await?;
    if client.secret_hash.is_none() {
        return Err(OAuthError::invalid_client(
            "introspection needs an authenticated (confidential) client",
            false,
        ));
    }
    let token = params.require("token")?;
    Ok(no_store(introspection_of(&state, &client, token).await?))
}

#[utoipa::path(post, path = "/oauth2/revoke", tag = "oidc",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "token, token_type_hint?; client authentication"),
    responses((status = 200, description = "Revoked, or nothing to revoke (RFC 7009 answers the same)"), (status = 401, description = "invalid_client")))]
pub async fn revoke(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = Params::parse(&body)?;
    let client = authenticate_client(&state, &headers, &params).await?;
    let token = params.require("token")?;
    if token.starts_with(REFRESH_PREFIX) {
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
                .revoke_family(client.org_id, t.family.id, "revoked_by_client", &meta)
                .await?;
        }
    } else if let Ok(claims) = state.keys.verify(token).await
        && claims["client_id"] == json!(client.id.as_str())
        && let (Some(jti), Some(exp)) = (claims["jti"].as_str(), claims["exp"].as_i64())
    {
        let exp =
            time::OffsetDateTime::from_unix_timestamp(exp).map_err(OAuthError::server_error)?;
        state.store.grants().revoke_access_token(jti, exp).await?;
    }
    Ok(no_store(json!({})))
}
