//! Endpoints that take a token: `GET|POST /oauth2/userinfo`, `POST /oauth2/introspect`
//! (RFC 7662) and `POST /oauth2/revoke` (RFC 7009).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use super::{client_credentials, no_store};
use crate::features::oidc::service::resources;
use crate::http::extract::RequestMeta;
use crate::http::oauth_error::OAuthError;
use crate::http::params::Params;
use crate::state::AppState;

#[utoipa::path(get, path = "/oauth2/userinfo", tag = "oidc",
    responses((status = 200, description = "sub and the claims the token's scopes unlock"), (status = 401, description = "invalid_token"), (status = 403, description = "insufficient_scope")),
    security(("bearer" = [])))]
pub async fn userinfo(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let info = resources::userinfo(&state, portcullis_guard::bearer(&headers)).await?;
    Ok(no_store(info))
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
    let creds = client_credentials(&headers, &params);
    let answer = resources::introspect(&state, creds, params.get("token")).await?;
    Ok(no_store(answer))
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
    let creds = client_credentials(&headers, &params);
    resources::revoke(&state, creds, params.get("token"), &meta).await?;
    Ok(no_store(serde_json::json!({})))
}
