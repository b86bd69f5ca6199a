//! `GET /oauth2/authorize` (code flow), and the sign-in and consent forms it leads through.
//! The service decides; this edge turns its decisions into pages and redirects.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use portcullis_core::oauth::ClientId;
use portcullis_store::SessionWithUser;

use crate::features::oidc::service::authorize::{
    self, AuthorizeError, AuthorizeParams, AuthorizeRequest, ClientRefusal, Decision, Prompt,
};
use crate::features::oidc::service::find_client;
use crate::http::extract::{RequestMeta, resolve_session};
use crate::http::forms::{PasswordForm, password_form, same_origin};
use crate::http::html as pages;
use crate::http::oauth_error::OAuthError;
use crate::http::params::Params;
use crate::state::AppState;

fn authorize_params(params: &Params) -> AuthorizeParams<'_> {
    AuthorizeParams {
        client_id: params.get("client_id"),
        redirect_uri: params.get("redirect_uri"),
        state: params.get("state"),
        response_type: params.get("response_type"),
        scope: params.get("scope"),
        nonce: params.get("nonce"),
        code_challenge: params.get("code_challenge"),
        code_challenge_method: params.get("code_challenge_method"),
        prompt: params.get("prompt"),
        max_age: params.get("max_age"),
        request_object: params.get("request").is_some() || params.get("request_uri").is_some(),
    }
}

/// The client's redirect URI with `pairs` added to its query.
fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return pages::error(
            StatusCode::BAD_REQUEST,
            "the redirect URI is not a valid URL",
        );
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    let mut r = Redirect::to(url.as_str()).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn refusal_redirect(state: &AppState, r: &ClientRefusal) -> Response {
    let mut pairs = vec![
        ("error", r.error.as_str()),
        ("error_description", r.description.as_str()),
        ("iss", state.oidc.issuer.as_str()),
    ];
    if let Some(s) = &r.state {
        pairs.push(("state", s));
    }
    redirect_with(&r.redirect_uri, &pairs)
}

/// An authorization error as the browser sees it: a page until the redirect URI is
/// trusted, the client's redirect URI after.
fn refused(state: &AppState, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Refused(r) => refusal_redirect(state, &r),
        AuthorizeError::ProjectDisabled | AuthorizeError::PasswordSignInOff => {
            pages::error(StatusCode::FORBIDDEN, &e.to_string())
        }
        AuthorizeError::NoClient
        | AuthorizeError::UnknownClient
        | AuthorizeError::NoRedirectUri
        | AuthorizeError::UnregisteredRedirectUri => {
            pages::error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        AuthorizeError::Issue(cause) => OAuthError::server_error(cause).into_response(),
        AuthorizeError::Store(cause) => OAuthError::server_error(cause).into_response(),
    }
}

/// The browser's session, if its cookie names a live one. Only cookies count here: a
/// bearer token is not how a browser arrives at the authorization endpoint.
async fn browser_session(state: &AppState, headers: &HeaderMap) -> Option<Arc<SessionWithUser>> {
    let (_, token) =
        portcullis_guard::session_cookie(headers, crate::http::cookies::policy(state))?;
    resolve_session(state, token).await.ok()
}

#[utoipa::path(get, path = "/oauth2/authorize", tag = "oidc",
    params(
        ("response_type" = String, Query, description = "code"),
        ("client_id" = String, Query), ("redirect_uri" = String, Query), ("scope" = String, Query),
        ("state" = Option<String>, Query), ("nonce" = Option<String>, Query),
        ("code_challenge" = Option<String>, Query), ("code_challenge_method" = Option<String>, Query, description = "S256 (plain is refused)"),
        ("prompt" = Option<String>, Query, description = "none | login | consent"), ("max_age" = Option<i64>, Query),
    ),
    responses(
        (status = 303, description = "To the client's redirect URI with code (or error), state and iss"),
        (status = 200, description = "The sign-in or consent page"),
        (status = 400, description = "Error page: unknown client or unregistered redirect URI (never redirected)"),
    ))]
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let req = match authorize::validate(&state, &authorize_params(&params)).await {
        Ok(r) => r,
        Err(e) => return refused(&state, e),
    };
    let now = portcullis_core::now();
    let session = browser_session(&state, &headers).await;
    match authorize::decide(&state, &req, session.as_deref(), now).await {
        Ok(Decision::SignIn) => {
            // After signing in the browser comes back without prompt=login, or it would loop.
            let drop: &[&str] = if req.prompt == Some(Prompt::Login) {
                &["prompt"]
            } else {
                &[]
            };
            let cont = params.to_query_without(drop);
            pages::login(StatusCode::OK, &cont, &req.client.name, "", None)
        }
        Ok(Decision::Consent) => consent_page(&req, &params),
        Ok(Decision::Issued {
            redirect_uri,
            code,
            state: client_state,
        }) => {
            let mut pairs = vec![("code", code.as_str()), ("iss", state.oidc.issuer.as_str())];
            if let Some(s) = &client_state {
                pairs.push(("state", s));
            }
            redirect_with(&redirect_uri, &pairs)
        }
        Err(e) => refused(&state, e),
    }
}

fn consent_page(req: &AuthorizeRequest, params: &Params) -> Response {
    let scopes: Vec<&str> = req.scope.iter().collect();
    let target = url::Url::parse(&req.redirect_uri)
        .map(|u| super::csp_source(&u))
        .unwrap_or_default();
    pages::consent(
        &params.to_query_without(&["prompt"]),
        &req.client.name,
        &scopes,
        &target,
    )
}

fn back_to_authorize(cont: &str) -> Response {
    let mut r = Redirect::to(&format!("/oauth2/authorize?{cont}")).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[utoipa::path(post, path = "/oauth2/login", tag = "oidc",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "email, password, continue (the authorization request)"),
    responses((status = 303, description = "Signed in; back to /oauth2/authorize"), (status = 401, description = "The sign-in page again, with an error"),
        (status = 413, description = "Error page: the form is over max_form_body_bytes"),
        (status = 429, description = "The sign-in page again: too many attempts from this address or for this account (Retry-After, RateLimit-*)")))]
pub async fn login_form(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let PasswordForm {
        continue_query: cont,
        email,
        password,
    } = match password_form(&state, &headers, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let client_name = match Params::parse(cont.as_bytes())
        .ok()
        .and_then(|p| p.get("client_id").and_then(ClientId::parse))
    {
        Some(id) => find_client(&state, &id)
            .await
            .ok()
            .flatten()
            .map(|c| c.client.name.clone())
            .unwrap_or_default(),
        None => String::new(),
    };
    use crate::features::auth::service::AuthError;
    let signed_in = crate::features::auth::accounts(&state)
        .password_sign_in(&email, password, &meta)
        .await;
    match signed_in {
        Ok(signed_in) => {
            let mut r = back_to_authorize(&cont);
            r.headers_mut().insert(
                header::SET_COOKIE,
                crate::http::cookies::session_cookie(&state, signed_in.token.expose()),
            );
            r
        }
        Err(AuthError::InvalidCredentials) => pages::login(
            StatusCode::UNAUTHORIZED,
            &cont,
            &client_name,
            &email,
            Some("Email or password is incorrect."),
        ),
        // A rate limit keeps its Retry-After and RateLimit-* headers on the page.
        Err(e) => crate::http::error::ApiError::from(e).into_page(|status, message| {
            pages::login(status, &cont, &client_name, &email, Some(message))
        }),
    }
}

#[utoipa::path(post, path = "/oauth2/consent", tag = "oidc",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "continue (the authorization request), decision = allow | deny"),
    responses((status = 303, description = "Allowed: back to /oauth2/authorize. Denied: to the client with error=access_denied")))]
pub async fn consent_form(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&state, &headers) {
        return pages::error(
            StatusCode::FORBIDDEN,
            "This consent form was not sent from this server.",
        );
    }
    let Ok(form) = Params::parse(&body) else {
        return pages::error(StatusCode::BAD_REQUEST, "The consent form was malformed.");
    };
    let cont = form.get("continue").unwrap_or_default().to_owned();
    let params = match Params::parse(cont.as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let req = match authorize::validate(&state, &authorize_params(&params)).await {
        Ok(r) => r,
        Err(e) => return refused(&state, e),
    };
    let Some(session) = browser_session(&state, &headers).await else {
        return pages::login(StatusCode::OK, &cont, &req.client.name, "", None);
    };
    if form.get("decision") != Some("allow") {
        return refusal_redirect(&state, &authorize::denied(&req));
    }
    match authorize::grant_consent(&state, &req, &session, &meta).await {
        Ok(()) => back_to_authorize(&cont),
        Err(e) => refused(&state, e),
    }
}
