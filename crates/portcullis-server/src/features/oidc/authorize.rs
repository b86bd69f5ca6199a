//! `GET /oauth2/authorize` (code flow), and the login and consent pages it leads through.
//!
//! Until the client and its redirect URI are known to be registered, every problem is an
//! error page — never a redirect, or the endpoint would be an open redirector. After that,
//! problems go back to the client as `error=…&state=…` on its redirect URI.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use portcullis_core::Timestamp;
use portcullis_core::oauth::{ClientId, ClientType, GrantType, OAuthClient, parse_scopes};
use portcullis_store::{AuthCode, SessionWithUser};
use std::sync::Arc;

use super::issue;
use super::params::Params;
use crate::http::extract::{RequestMeta, resolve_session};
use crate::http::html as pages;
use crate::http::oauth_error::OAuthError;
use crate::state::AppState;

const CODE_TTL: time::Duration = time::Duration::seconds(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prompt {
    None,
    Login,
    Consent,
}

struct AuthorizeRequest {
    client: OAuthClient,
    redirect_uri: String,
    state: Option<String>,
    scope: Vec<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt: Option<Prompt>,
    max_age: Option<i64>,
    params: Params,
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

fn redirect_error(
    state: &AppState,
    req_redirect: &str,
    req_state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut pairs = vec![
        ("error", error),
        ("error_description", description),
        ("iss", state.oidc.issuer.as_str()),
    ];
    if let Some(s) = req_state {
        pairs.push(("state", s));
    }
    redirect_with(req_redirect, &pairs)
}

async fn validate(state: &AppState, params: Params) -> Result<AuthorizeRequest, Response> {
    let page = |m: &str| pages::error(StatusCode::BAD_REQUEST, m);
    let Some(client_id) = params.get("client_id").and_then(ClientId::parse) else {
        return Err(page("The request names no client (client_id is missing)."));
    };
    let client = match super::find_client(state, &client_id).await {
        Ok(Some(c)) if !c.project_active => {
            return Err(pages::error(
                StatusCode::FORBIDDEN,
                "This application's project is disabled, so sign-in stops here (project_disabled).",
            ));
        }
        Ok(Some(c)) => OAuthClient::clone(&c.client),
        Ok(None) => {
            return Err(page(
                "The application asking you to sign in is not known here (unknown client_id).",
            ));
        }
        Err(e) => return Err(OAuthError::server_error(e).into_response()),
    };
    let Some(redirect_uri) = params.get("redirect_uri").map(str::to_owned) else {
        return Err(page("The request has no redirect_uri."));
    };
    if !client.redirect_uri_allowed(&redirect_uri) {
        return Err(page(
            "The redirect_uri is not registered for this application, so sign-in stops here.",
        ));
    }
    let req_state = params.get("state").map(str::to_owned);
    let fail = |error: &str, description: &str| {
        redirect_error(
            state,
            &redirect_uri,
            req_state.as_deref(),
            error,
            description,
        )
    };
    if params.get("request").is_some() || params.get("request_uri").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if params.get("response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    let scope = match parse_scopes(params.get("scope").unwrap_or_default()) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => return Err(fail("invalid_scope", "scope is required")),
        Err(e) => return Err(fail("invalid_scope", &e.message)),
    };
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(c), Some("S256")) => {
            let well_formed = (43..=128).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
            if !well_formed {
                return Err(fail(
                    "invalid_request",
                    "code_challenge is not a base64url SHA-256",
                ));
            }
            Some(c.to_owned())
        }
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256; plain is not accepted",
            ));
        }
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ));
        }
        (None, None) if client.client_type == ClientType::Public => {
            return Err(fail(
                "invalid_request",
                "PKCE (code_challenge with S256) is required for public clients",
            ));
        }
        (None, None) => None,
    };
    let prompt = match params.get("prompt") {
        None => None,
        Some("none") => Some(Prompt::None),
        Some("login") => Some(Prompt::Login),
        Some("consent") => Some(Prompt::Consent),
        Some(other) => {
            return Err(fail(
                "invalid_request",
                &format!("prompt {other:?} is not supported"),
            ));
        }
    };
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "max_age must be a non-negative integer",
                ));
            }
        },
    };
    Ok(AuthorizeRequest {
        nonce: params.get("nonce").map(str::to_owned),
        client,
        redirect_uri,
        state: req_state,
        scope,
        code_challenge,
        prompt,
        max_age,
        params,
    })
}

/// The browser's session, if its cookie names a live one. Only cookies count here: a
/// bearer token is not how a browser arrives at the authorization endpoint.
async fn browser_session(state: &AppState, headers: &HeaderMap) -> Option<Arc<SessionWithUser>> {
    let (_, token) = portcullis_guard::session_cookie(headers)?;
    resolve_session(state, token).await.ok()
}

fn needs_login(req: &AuthorizeRequest, session: Option<&SessionWithUser>, now: Timestamp) -> bool {
    let Some(s) = session else { return true };
    if req.prompt == Some(Prompt::Login) {
        return true;
    }
    req.max_age
        .is_some_and(|max| (now - s.session.created_at).whole_seconds() > max)
}

/// First-party: the user belongs to the client's project, so no consent is asked.
async fn is_first_party(
    state: &AppState,
    client: &OAuthClient,
    session: &SessionWithUser,
) -> Result<bool, OAuthError> {
    let access = state
        .store
        .project_access(client.project_id, session.user.id)
        .await?;
    Ok(access.is_some_and(|a| {
        a.org_membership
            .filter(|m| m.is_active())
            .and_then(|m| portcullis_core::project::effective_project_role(m.role, a.project_role))
            .is_some()
    }))
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
        Err(e) => return pages::error(StatusCode::BAD_REQUEST, &e.description),
    };
    let req = match validate(&state, params).await {
        Ok(r) => r,
        Err(page) => return page,
    };
    let now = portcullis_core::now();
    let session = browser_session(&state, &headers).await;
    if needs_login(&req, session.as_deref(), now) {
        if req.prompt == Some(Prompt::None) {
            return redirect_error(
                &state,
                &req.redirect_uri,
                req.state.as_deref(),
                "login_required",
                "the user is not signed in",
            );
        }
        if !state.password_login {
            return pages::error(
                StatusCode::FORBIDDEN,
                "Password sign-in is switched off on this server (feature_disabled).",
            );
        }
        // After signing in the browser comes back without prompt=login, or it would loop.
        let cont = req
            .params
            .to_query_without(if req.prompt == Some(Prompt::Login) {
                &["prompt"]
            } else {
                &[]
            });
        return pages::login(StatusCode::OK, &cont, &req.client.name, "", None);
    }
    let Some(session) = session else {
        return pages::error(StatusCode::INTERNAL_SERVER_ERROR, "session vanished");
    };
    match issue_code(&state, &req, &session, now).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn issue_code(
    state: &AppState,
    req: &AuthorizeRequest,
    session: &SessionWithUser,
    now: Timestamp,
) -> Result<Response, OAuthError> {
    let scope = req.scope.join(" ");
    if !is_first_party(state, &req.client, session).await? {
        let granted = state
            .store
            .grants()
            .consent(req.client.org_id, session.user.id, &req.client.id)
            .await?;
        let covered =
            granted.is_some_and(|g| req.scope.iter().all(|s| g.split(' ').any(|x| x == s)));
        if !covered || req.prompt == Some(Prompt::Consent) {
            if req.prompt == Some(Prompt::None) {
                return Ok(redirect_error(
                    state,
                    &req.redirect_uri,
                    req.state.as_deref(),
                    "consent_required",
                    "the user has not consented",
                ));
            }
            let scopes: Vec<&str> = req.scope.iter().map(String::as_str).collect();
            return Ok(pages::consent(
                &req.params.to_query_without(&["prompt"]),
                &req.client.name,
                &scopes,
            ));
        }
    }
    let (raw, hash) = issue::random_code()?;
    let code = AuthCode {
        code_hash: hash,
        client_id: req.client.id.clone(),
        org_id: req.client.org_id,
        project_id: req.client.project_id,
        user_id: session.user.id,
        session_id: Some(session.session.id),
        redirect_uri: req.redirect_uri.clone(),
        scope,
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: session.session.created_at,
        created_at: now,
        expires_at: now + CODE_TTL,
    };
    state.store.grants().insert_code(&code).await?;
    let mut pairs = vec![("code", raw.as_str()), ("iss", state.oidc.issuer.as_str())];
    if let Some(s) = &req.state {
        pairs.push(("state", s));
    }
    Ok(redirect_with(&req.redirect_uri, &pairs))
}

/// Form posts from our own pages must come from our own origin (login CSRF).
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(o) => o == state.public_origin,
        // Browsers send Origin on every form POST; without one, fall back to Referer.
        None => headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .is_some_and(|u| u.origin().ascii_serialization() == state.public_origin),
    }
}

/// A sign-in form posted from one of our pages: the way back, and the credentials.
pub(crate) struct PasswordForm {
    /// The query of the request that led to the sign-in page.
    pub continue_query: String,
    pub email: String,
    pub password: String,
}

/// Why a posted sign-in form is refused; answered as an error page.
pub(crate) struct FormRefused {
    status: StatusCode,
    message: &'static str,
}

impl IntoResponse for FormRefused {
    fn into_response(self) -> Response {
        pages::error(self.status, self.message)
    }
}

/// Reads a posted sign-in form (the provider's or the mobile hand-off's), unless it was not
/// sent from this server, password sign-in is off, or it is malformed.
pub(crate) fn password_form(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PasswordForm, FormRefused> {
    if !same_origin(state, headers) {
        return Err(FormRefused {
            status: StatusCode::FORBIDDEN,
            message: "This sign-in form was not sent from this server.",
        });
    }
    if !state.password_login {
        return Err(FormRefused {
            status: StatusCode::FORBIDDEN,
            message: "Password sign-in is switched off on this server (feature_disabled).",
        });
    }
    let Ok(form) = Params::parse(body) else {
        return Err(FormRefused {
            status: StatusCode::BAD_REQUEST,
            message: "The sign-in form was malformed.",
        });
    };
    Ok(PasswordForm {
        continue_query: form.get("continue").unwrap_or_default().to_owned(),
        email: form.get("email").unwrap_or_default().to_owned(),
        password: form.get("password").unwrap_or_default().to_owned(),
    })
}

fn back_to_authorize(cont: &str) -> Response {
    let mut r = Redirect::to(&format!("/oauth2/authorize?{cont}")).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[utoipa::path(post, path = "/oauth2/login", tag = "oidc",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "email, password, continue (the authorization request)"),
    responses((status = 303, description = "Signed in; back to /oauth2/authorize"), (status = 401, description = "The sign-in page again, with an error")))]
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
        Some(id) => super::find_client(&state, &id)
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
        Err(e) => match crate::http::error::ApiError::from(e) {
            e if e.status == StatusCode::TOO_MANY_REQUESTS => pages::login(
                StatusCode::TOO_MANY_REQUESTS,
                &cont,
                &client_name,
                &email,
                Some("Too many sign-ins right now; try again shortly."),
            ),
            e => pages::login(e.status, &cont, &client_name, &email, Some(&e.message)),
        },
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
    let req = match Params::parse(cont.as_bytes()) {
        Ok(p) => match validate(&state, p).await {
            Ok(r) => r,
            Err(page) => return page,
        },
        Err(e) => return pages::error(StatusCode::BAD_REQUEST, &e.description),
    };
    let Some(session) = browser_session(&state, &headers).await else {
        return pages::login(StatusCode::OK, &cont, &req.client.name, "", None);
    };
    if form.get("decision") != Some("allow") {
        return redirect_error(
            &state,
            &req.redirect_uri,
            req.state.as_deref(),
            "access_denied",
            "the user denied access",
        );
    }
    let meta = meta.with_actor(session.user.id);
    let scope = req.scope.join(" ");
    if let Err(e) = state
        .store
        .grants()
        .grant_consent(
            req.client.org_id,
            session.user.id,
            &req.client.id,
            &scope,
            &meta,
        )
        .await
    {
        return OAuthError::server_error(e).into_response();
    }
    back_to_authorize(&cont)
}
