//! `POST /oauth2/token`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;

use super::{client_credentials, no_store};
use crate::features::oidc::service::token::{self, TokenRequest};
use crate::http::extract::RequestMeta;
use crate::http::oauth_error::OAuthError;
use crate::http::params::Params;
use crate::state::AppState;

#[utoipa::path(post, path = "/oauth2/token", tag = "oidc",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "RFC 6749 §4.1.3 / §6 / §4.4: grant_type=authorization_code|refresh_token|client_credentials"),
    responses(
        (status = 200, description = "access_token, token_type, expires_in, scope; id_token and refresh_token where they apply"),
        (status = 400, description = "invalid_request, invalid_grant (code = refresh_token_reused when a rotated refresh token came back), unauthorized_client, unsupported_grant_type, invalid_scope"),
        (status = 401, description = "invalid_client"),
    ))]
pub async fn token(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = Params::parse(&body)?;
    let req = TokenRequest {
        grant_type: params.get("grant_type"),
        code: params.get("code"),
        redirect_uri: params.get("redirect_uri"),
        code_verifier: params.get("code_verifier"),
        refresh_token: params.get("refresh_token"),
        scope: params.get("scope"),
    };
    let issued =
        token::exchange(&state, client_credentials(&headers, &params), &req, &meta).await?;
    // The exchange succeeded, so the grant type parsed.
    if let Some(grant) = req
        .grant_type
        .and_then(|g| portcullis_core::oauth::GrantType::parse(g).ok())
    {
        state.metrics.token_issued(grant.into());
    }
    let mut response = no_store(issued);
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}
