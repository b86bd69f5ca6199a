//! `GET /auth/mobile/handoff`: the app opens this in a browser; the user signs in (a browser
//! session already present, an upstream provider, or the password page), and the browser is
//! sent to the app's deep link with a one-time token — for an app scheme only after the
//! person at the browser confirmed it (`confirm.rs`). Every hand-off carries a PKCE S256
//! challenge, so the token is worth nothing without the app's verifier.
//!
//! Until `state` and `redirect_uri` are known good, every problem is an error page — never a
//! redirect, or this would be an open redirector. After that, every problem goes back to the
//! app as `error=…&error_description=…&state=…`, so the user is never left on a dead page.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use portcullis_core::AuditContext;
use portcullis_store::SessionWithUser;

use super::mobile;
use super::page_token::{PageToken, now_secs};
use super::service::MobileError;
use crate::http::extract::{RequestMeta, resolve_session};
use crate::http::forms::{PasswordForm, password_form};
use crate::http::html as pages;
use crate::http::params::Params;
use crate::state::AppState;

pub const PATH: &str = "/auth/mobile/handoff";
pub const LOGIN_PATH: &str = "/auth/mobile/login";
/// Where the confirmation page posts (`confirm.rs`).
pub const CONFIRM_PATH: &str = "/auth/mobile/confirm";

/// A hand-off request whose `state` and `redirect_uri` are good: safe to redirect to.
pub(super) struct Handoff {
    state: String,
    redirect_uri: url::Url,
    provider: Option<String>,
    code_challenge: Option<String>,
    params: Params,
}

/// `redirect_uri` with `pairs` added to its query, as a 302 nobody caches.
fn redirect_to(uri: &url::Url, pairs: &[(&str, &str)]) -> Response {
    let mut url = uri.clone();
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    found(url.as_str())
}

fn found(location: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A refused step as the app's redirect states it: `(error, error_description)`.
fn refusal(e: &MobileError) -> (&'static str, String) {
    match e {
        MobileError::SwitchedOff => (
            "feature_disabled",
            "mobile sign-in is switched off on this server".into(),
        ),
        MobileError::FeatureDisabled { .. } => ("feature_disabled", e.to_string()),
        MobileError::NoOrganization => ("access_denied", e.to_string()),
        other => {
            tracing::error!(error = %other, "mobile hand-off failed");
            ("server_error", "sign-in failed; try again".into())
        }
    }
}

impl Handoff {
    pub(super) fn fail(&self, code: &str, description: &str) -> Response {
        tracing::info!(code, "mobile hand-off refused");
        redirect_to(
            &self.redirect_uri,
            &[
                ("error", code),
                ("error_description", description),
                ("state", &self.state),
            ],
        )
    }
}

/// Checks `state` and `redirect_uri`; what is wrong (for the error page) otherwise.
pub(super) fn validate(state: &AppState, raw_query: &str) -> Result<Handoff, String> {
    let params = Params::parse(raw_query.as_bytes()).map_err(|e| e.to_string())?;
    let Some(app_state) = params.get("state").map(str::to_owned) else {
        return Err(
            "The app did not send a state parameter, so sign-in cannot continue safely (state is required). \
             Start the sign-in again from the app."
                .into(),
        );
    };
    if app_state.len() > 512 {
        return Err("The state parameter is too long (at most 512 characters).".into());
    }
    let Some(raw_redirect) = params.get("redirect_uri") else {
        return Err("The app did not send a redirect_uri.".into());
    };
    let Ok(redirect_uri) = url::Url::parse(raw_redirect) else {
        return Err("The redirect_uri is not a valid URL.".into());
    };
    if !state.mobile.redirect_allowed(&redirect_uri) {
        return Err(
            "The redirect_uri does not use an app scheme or universal link registered on this server \
             (PORTCULLIS_MOBILE_SCHEMES / mobile_universal_links), so sign-in stops here."
                .into(),
        );
    }
    Ok(Handoff {
        state: app_state,
        redirect_uri,
        provider: params.get("provider").map(str::to_owned),
        code_challenge: params.get("code_challenge").map(str::to_owned),
        params,
    })
}

/// What only a good request may learn: refusals that go back to the app, as
/// `(error, error_description)`. The PKCE S256 challenge the token will be bound to otherwise.
pub(super) fn check<'r>(
    state: &AppState,
    headers: &HeaderMap,
    req: &'r Handoff,
) -> Result<&'r str, (&'static str, String)> {
    mobile(state).ensure_enabled().map_err(|e| refusal(&e))?;
    let host = crate::features::mobile::http::request_host(headers);
    if !state.mobile.host_allowed(host) {
        return Err((
            "host_not_allowlisted",
            format!("host {host} is not in PORTCULLIS_MOBILE_HOST_ALLOWLIST"),
        ));
    }
    match (
        req.code_challenge.as_deref(),
        req.params.get("code_challenge_method"),
    ) {
        (Some(c), None | Some("S256")) if portcullis_core::pkce::challenge_well_formed(c) => Ok(c),
        (Some(_), None | Some("S256")) => Err((
            "invalid_request",
            "code_challenge must be a base64url SHA-256 (43 characters)".into(),
        )),
        (Some(_), Some(_)) => Err((
            "invalid_request",
            "code_challenge_method must be S256; plain is not accepted".into(),
        )),
        // Without PKCE, an app that claims the scheme could redeem the token it catches.
        (None, _) => Err((
            "invalid_request",
            "code_challenge is required: send a PKCE S256 challenge (code_challenge_method=S256) \
             and present its code_verifier at the exchange"
                .into(),
        )),
    }
}

/// Sources the sign-in form's redirect chain may end at (Content-Security-Policy).
pub(super) fn form_targets(state: &AppState) -> String {
    let mut out: Vec<String> = state
        .mobile
        .schemes
        .iter()
        .map(|s| format!("{s}:"))
        .collect();
    out.extend(state.mobile.universal_links.iter().filter_map(|l| {
        url::Url::parse(l)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }));
    out.join(" ")
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    cont: &str,
    email: &str,
    message: Option<&str>,
) -> Response {
    pages::login_form(
        LOGIN_PATH,
        &form_targets(state),
        status,
        cont,
        "the mobile app",
        email,
        message,
    )
}

pub(super) async fn browser_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<std::sync::Arc<SessionWithUser>> {
    let (_, token) =
        portcullis_guard::session_cookie(headers, crate::http::cookies::policy(state))?;
    resolve_session(state, token).await.ok()
}

/// The question (`confirm.rs`), for a browser signed in as `session` whose hand-off
/// (`continue_query`) goes to an app scheme.
fn confirmation_page(
    state: &AppState,
    req: &Handoff,
    continue_query: &str,
    session: &SessionWithUser,
) -> Response {
    let token = PageToken::new(&state.mobile.session_key).mint(
        session.session.id,
        continue_query,
        now_secs(),
    );
    pages::mobile_confirm(
        CONFIRM_PATH,
        &form_targets(state),
        req.redirect_uri.scheme(),
        session.user.email.as_str(),
        continue_query,
        &token,
    )
}

#[utoipa::path(get, path = "/auth/mobile/handoff", tag = "mobile",
    params(
        ("state" = String, Query, description = "Required; returned unchanged on the deep link"),
        ("redirect_uri" = String, Query, description = "A registered app scheme (PORTCULLIS_MOBILE_SCHEMES) or universal link"),
        ("provider" = Option<String>, Query, description = "Sign in through this upstream provider"),
        ("code_challenge" = String, Query, description = "Required: PKCE S256 challenge (base64url SHA-256 of the verifier) binding the one-time token"),
        ("code_challenge_method" = Option<String>, Query, description = "S256 (the default; plain is refused)"),
    ),
    responses(
        (status = 302, description = "To a universal-link redirect_uri with ott and state; to redirect_uri with error, error_description and state; or to the upstream provider. Never with ott to an app scheme"),
        (status = 200, description = "The sign-in page, or (signed in, app scheme) the confirmation page that posts to /auth/mobile/confirm"),
        (status = 400, description = "Error page: state missing or redirect_uri not registered (never redirected)"),
    ),
    security(()))]
pub async fn handoff(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let req = match validate(&state, &query) {
        Ok(r) => r,
        Err(problem) => return pages::error(StatusCode::BAD_REQUEST, &problem),
    };
    let challenge = match check(&state, &headers, &req) {
        Ok(challenge) => challenge,
        Err((code, description)) => return req.fail(code, &description),
    };
    if let Some(session) = browser_session(&state, &headers).await {
        // A GET never sends a token to an app scheme: any app may claim one.
        if state.mobile.is_universal_link(&req.redirect_uri) {
            return issue(&state, &req, challenge, &session, &meta).await;
        }
        return confirmation_page(&state, &req, &query, &session);
    }
    if let Some(provider) = &req.provider {
        if !state.sso.available().iter().any(|p| p.id == *provider) {
            return req.fail(
                "provider_unavailable",
                &format!("sign-in provider {provider:?} is not available on this server"),
            );
        }
        let return_to = format!("{}{PATH}?{query}", state.public_url);
        let mut start = url::form_urlencoded::Serializer::new(String::new());
        start.append_pair("return_to", &return_to);
        let provider: String = url::form_urlencoded::byte_serialize(provider.as_bytes()).collect();
        return found(&format!("/v1/auth/sso/{provider}/start?{}", start.finish()));
    }
    if !state.password_login {
        return req.fail(
            "feature_disabled",
            "password sign-in is switched off on this server; choose a sign-in provider",
        );
    }
    login_page(&state, StatusCode::OK, &query, "", None)
}

/// Mints the one-time token for a signed-in browser and sends it to the app: at once for a
/// universal link, after the confirmation for an app scheme.
pub(super) async fn issue(
    state: &AppState,
    req: &Handoff,
    code_challenge: &str,
    session: &SessionWithUser,
    meta: &AuditContext,
) -> Response {
    match mobile(state)
        .issue_ott(session, &req.state, code_challenge, meta)
        .await
    {
        Ok(raw) => redirect_to(&req.redirect_uri, &[("ott", &raw), ("state", &req.state)]),
        Err(e) => {
            let (code, description) = refusal(&e);
            req.fail(code, &description)
        }
    }
}

#[utoipa::path(post, path = "/auth/mobile/login", tag = "mobile", operation_id = "mobile_login",
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "email, password, continue (the hand-off query)"),
    responses(
        (status = 303, description = "Signed in; back to the hand-off, which asks for confirmation (app scheme) or redirects to the app (universal link)"),
        (status = 401, description = "The sign-in page again, with an error"),
        (status = 403, description = "Error page: not sent from this server, or password sign-in is off (feature_disabled)"),
        (status = 413, description = "Error page: the form is over max_form_body_bytes"),
        (status = 429, description = "The sign-in page again: too many attempts from this address or for this account (Retry-After, RateLimit-*)"),
    ),
    security(()))]
pub async fn login(
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
    // The way back must itself be a good hand-off request.
    if let Err(problem) = validate(&state, &cont) {
        return pages::error(StatusCode::BAD_REQUEST, &problem);
    }
    use crate::features::auth::service::AuthError;
    let signed_in = crate::features::auth::accounts(&state)
        .password_sign_in(&email, password, &meta)
        .await;
    match signed_in {
        Ok(signed_in) => {
            let mut r = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, format!("{PATH}?{cont}"))],
            )
                .into_response();
            r.headers_mut().insert(
                header::SET_COOKIE,
                crate::http::cookies::session_cookie(&state, signed_in.token.expose()),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(AuthError::InvalidCredentials) => login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &cont,
            &email,
            Some("Email or password is incorrect."),
        ),
        // A rate limit keeps its Retry-After and RateLimit-* headers on the page.
        Err(e) => crate::http::error::ApiError::from(e)
            .into_page(|status, message| login_page(&state, status, &cont, &email, Some(message))),
    }
}
