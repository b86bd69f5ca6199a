//! `GET /oauth2/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//! Ends the browser's session and the one the ID token names, then returns to a registered
//! post-logout redirect URI — or shows a signed-out page, never an unregistered redirect.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use portcullis_core::oauth::ClientId;
use portcullis_core::{SessionId, TokenHash, UserId};

use super::pages;
use super::params::Params;
use crate::extract::RequestMeta;
use crate::state::AppState;

#[utoipa::path(get, path = "/oauth2/logout", tag = "oidc",
    params(("id_token_hint" = Option<String>, Query), ("post_logout_redirect_uri" = Option<String>, Query),
           ("state" = Option<String>, Query), ("client_id" = Option<String>, Query)),
    responses((status = 303, description = "To the registered post-logout redirect URI, with state"),
              (status = 200, description = "Signed-out page"), (status = 400, description = "Error page: unregistered redirect")))]
pub async fn logout(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::error(StatusCode::BAD_REQUEST, &e.description),
    };
    // The hint names the client and the session; it may have expired (logout often comes
    // late), but it must have been signed by us.
    let hint = match params.get("id_token_hint") {
        Some(t) => match state.keys.verify(t).await {
            Ok(claims) if claims["iss"] == serde_json::json!(state.oidc.issuer) => Some(claims),
            _ => {
                return pages::error(
                    StatusCode::BAD_REQUEST,
                    "The id_token_hint was not issued by this server.",
                );
            }
        },
        None => None,
    };
    let hinted_client = hint
        .as_ref()
        .and_then(|c| c["aud"].as_str())
        .and_then(ClientId::parse);
    let client_id = match (
        params.get("client_id").and_then(ClientId::parse),
        hinted_client,
    ) {
        (Some(a), Some(b)) if a != b => {
            return pages::error(
                StatusCode::BAD_REQUEST,
                "client_id does not match the id_token_hint.",
            );
        }
        (a, b) => a.or(b),
    };
    let client = match &client_id {
        Some(id) => super::find_client(&state, id)
            .await
            .ok()
            .flatten()
            .map(|c| portcullis_core::oauth::OAuthClient::clone(&c.client)),
        None => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => match &client {
            Some(c) if c.post_logout_redirect_allowed(uri) => Some(uri.to_owned()),
            _ => {
                return pages::error(
                    StatusCode::BAD_REQUEST,
                    "The post_logout_redirect_uri is not registered for this application (and without id_token_hint or client_id none can be).",
                );
            }
        },
    };

    // End the browser's own session, and the session the ID token was issued in.
    if let Some((_, token)) = portcullis_guard::session_cookie(&headers)
        && let Ok(Some(found)) = state.store.session_by_token(&TokenHash::of(token)).await
    {
        let meta = meta.with_actor(found.user.id);
        let _ = state
            .store
            .revoke_user_session(found.user.id, found.session.id, &meta)
            .await;
    }
    if let Some(claims) = &hint
        && let (Some(sid), Some(sub)) = (
            claims["sid"].as_str().and_then(SessionId::parse),
            claims["sub"].as_str().and_then(UserId::parse),
        )
    {
        let _ = state
            .store
            .revoke_user_session(sub, sid, &meta.with_actor(sub))
            .await;
    }

    let mut response = match redirect {
        Some(uri) => match url::Url::parse(&uri) {
            Ok(mut url) => {
                if let Some(s) = params.get("state") {
                    url.query_pairs_mut().append_pair("state", s);
                }
                Redirect::to(url.as_str()).into_response()
            }
            Err(_) => pages::signed_out(),
        },
        None => pages::signed_out(),
    };
    response.headers_mut().insert(
        header::SET_COOKIE,
        crate::routes::auth::clear_cookie(&state),
    );
    response
}
