//! `GET /oauth2/logout`: RP-initiated logout, and `POST /oauth2/logout`: the confirmation
//! it asks for when nothing proves the signed-in user's application sent the browser. Ends
//! the browser's own session, then returns to a post-logout redirect URI registered by the
//! hint's client — or shows a signed-out page, never an unregistered redirect.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;

use crate::features::oidc::service::logout::{self, LogoutError, LogoutParams, LogoutPlan};
use crate::http::extract::RequestMeta;
use crate::http::forms::same_origin;
use crate::http::html as pages;
use crate::http::params::Params;
use crate::state::AppState;

fn refused(e: LogoutError) -> Response {
    match e {
        LogoutError::HintNotOurs
        | LogoutError::HintNotAnIdToken
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

fn logout_params(params: &Params) -> LogoutParams<'_> {
    LogoutParams {
        id_token_hint: params.get("id_token_hint"),
        post_logout_redirect_uri: params.get("post_logout_redirect_uri"),
        state: params.get("state"),
        client_id: params.get("client_id"),
    }
}

/// Plans the logout `query` asks for and carries it out: the confirmation page, or the
/// browser's session ended, its cookie cleared and the browser sent on.
async fn run(
    state: &AppState,
    headers: &HeaderMap,
    meta: &portcullis_core::AuditContext,
    query: &str,
    confirmed: bool,
) -> Response {
    let params = match Params::parse(query.as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let token = portcullis_guard::session_cookie(headers, crate::http::cookies::policy(state))
        .map(|(_, token)| token);
    let browser = match logout::browser_session(state, token).await {
        Ok(b) => b,
        Err(e) => return refused(e),
    };
    let plan = logout::plan(state, &logout_params(&params), browser.as_ref(), confirmed).await;
    let redirect = match plan {
        Ok(LogoutPlan::Confirm { redirect }) => {
            let target = redirect.as_ref().map(super::csp_source);
            return pages::confirm_sign_out(query, target.as_deref());
        }
        Ok(LogoutPlan::SignOut { redirect }) => redirect,
        Err(e) => return refused(e),
    };
    if let Err(e) = logout::sign_out(state, browser.as_ref(), meta).await {
        return refused(e);
    }
    let mut response = match redirect {
        Some(url) => Redirect::to(url.as_str()).into_response(),
        None => pages::signed_out(),
    };
    response.headers_mut().insert(
        header::SET_COOKIE,
        crate::http::cookies::clear_cookie(state),
    );
    response
}

#[utoipa::path(get, path = "/oauth2/logout", tag = "oidc", operation_id = "oidc_logout",
    params(("id_token_hint" = Option<String>, Query, description = "An ID token this server issued (expired ones are accepted); access tokens are refused"),
           ("post_logout_redirect_uri" = Option<String>, Query, description = "Registered by the client the id_token_hint was issued to"),
           ("state" = Option<String>, Query), ("client_id" = Option<String>, Query)),
    responses((status = 303, description = "The browser's session ended; to the post-logout redirect URI the hint's client registered, with state"),
              (status = 200, description = "Signed-out page; or, when no ID token hint of the signed-in user came with the request, a page asking to confirm (a form posting to POST /oauth2/logout), with nothing ended yet"),
              (status = 400, description = "Error page: a hint that is not an ID token of this server, a client_id that is not the hint's, or an unregistered post-logout redirect URI")))]
pub async fn logout(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    run(&state, &headers, &meta, &query.unwrap_or_default(), false).await
}

#[utoipa::path(post, path = "/oauth2/logout", tag = "oidc", operation_id = "oidc_logout_confirm",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "continue: the query of the logout request being confirmed"),
    responses((status = 303, description = "The browser's session ended; to the post-logout redirect URI the hint's client registered, with state"),
              (status = 200, description = "Signed-out page"),
              (status = 400, description = "Error page: a malformed form, or a logout request refused as on GET"),
              (status = 403, description = "Error page: the form was not posted from this server's own page")))]
pub async fn confirm_logout(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&state, &headers) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "This sign-out form was not sent from this server.",
        );
    }
    let Ok(form) = Params::parse(&body) else {
        return pages::error(StatusCode::BAD_REQUEST, "The sign-out form was malformed.");
    };
    let query = form.get("continue").unwrap_or_default().to_owned();
    run(&state, &headers, &meta, &query, true).await
}
