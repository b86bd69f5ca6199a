//! `GET /oauth2/logout`: RP-initiated logout. Ends the sessions, then returns to a
//! registered post-logout redirect URI — or shows a signed-out page, never an unregistered
//! redirect.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use crate::features::oidc::service::logout::{self, LogoutError, LogoutParams};
use crate::http::extract::RequestMeta;
use crate::http::html as pages;
use crate::http::params::Params;
use crate::state::AppState;

fn refused(e: LogoutError) -> Response {
    match e {
        LogoutError::HintNotOurs
        | LogoutError::ClientMismatch
        | LogoutError::UnregisteredRedirectUri => {
            pages::error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        LogoutError::Keys(_) | LogoutError::Store(_) => {
            tracing::error!(cause = %e, "logout failed");
            pages::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Signing out failed on our side; please try again.",
            )
        }
    }
}

#[utoipa::path(get, path = "/oauth2/logout", tag = "oidc", operation_id = "oidc_logout",
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
        Err(e) => return pages::error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let p = LogoutParams {
        id_token_hint: params.get("id_token_hint"),
        post_logout_redirect_uri: params.get("post_logout_redirect_uri"),
        state: params.get("state"),
        client_id: params.get("client_id"),
    };
    let browser_token =
        portcullis_guard::session_cookie(&headers, crate::http::cookies::policy(&state))
            .map(|(_, token)| token);
    let mut response = match logout::logout(&state, &p, browser_token, &meta).await {
        Ok(Some(url)) => Redirect::to(url.as_str()).into_response(),
        Ok(None) => pages::signed_out(),
        Err(e) => return refused(e),
    };
    response.headers_mut().insert(
        header::SET_COOKIE,
        crate::http::cookies::clear_cookie(&state),
    );
    response
}
