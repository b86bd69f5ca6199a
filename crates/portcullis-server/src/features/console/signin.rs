//! The console's door: `/` for whoever knocks, the sign-in page (password and the server's
//! SSO providers, then back to `return_to`), sign-out, and the org switcher's redirect.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::OrgId;
use serde::Deserialize;

use crate::features::auth::accounts;
use crate::features::console::guard::{ConsoleUser, see_other};
use crate::features::console::page::{self, Chrome, ORG_SECTIONS, safe_return_to};
use crate::http::cookies::{clear_cookie, session_cookie};
use crate::http::correlation;
use crate::http::error::ApiError;
use crate::http::extract::RequestMeta;
use crate::http::forms::same_origin;
use crate::http::params::Params;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/landing.html")]
struct Landing {
    chrome: Chrome,
}

/// `GET /`: a browser goes to the console; any other client gets a small JSON index of
/// where things are (instead of a 404), so scripts probing the root learn the routes.
pub async fn root(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        return see_other("/console");
    }
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|a| a.contains("json") || a.contains("*/*"));
    if wants_json {
        return axum::Json(serde_json::json!({
            "name": "portcullis",
            "console": "/console",
            "openapi": "/openapi.json",
            "health": "/healthz",
        }))
        .into_response();
    }
    page::render(
        &state,
        StatusCode::OK,
        &Landing {
            chrome: Chrome::anonymous("Portcullis"),
        },
    )
}

/// `GET /console`: the first org's members, or the person's own account without one.
pub async fn home(user: ConsoleUser) -> Response {
    match user.memberships.first() {
        Some(m) => see_other(&format!("/console/orgs/{}/members", m.org.id)),
        None => see_other("/console/account"),
    }
}

#[derive(Deserialize)]
pub struct SwitchQuery {
    org: Option<String>,
    section: Option<String>,
}

/// `GET /console/switch?org=…&section=…`: the org switcher's form (it works without script).
pub async fn switch(_user: ConsoleUser, Query(q): Query<SwitchQuery>) -> Response {
    let Some(org) = q.org.as_deref().and_then(OrgId::parse) else {
        return see_other("/console");
    };
    let section = q
        .section
        .as_deref()
        .and_then(|s| ORG_SECTIONS.iter().find(|(slug, _)| *slug == s))
        .map_or("members", |(slug, _)| slug);
    see_other(&format!("/console/orgs/{org}/{section}"))
}

pub struct ProviderLink {
    pub name: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    chrome: Chrome,
    return_to: String,
    email: String,
    error: Option<String>,
    correlation_id: String,
    ended: bool,
    password_login: bool,
    providers: Vec<ProviderLink>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
    reason: Option<String>,
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    return_to: &str,
    email: &str,
    error: Option<String>,
    ended: bool,
) -> Response {
    let back = safe_return_to(return_to).unwrap_or("/console");
    let providers = state
        .sso
        .available()
        .into_iter()
        .map(|p| {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", back)
                .finish();
            ProviderLink {
                href: format!("/v1/auth/sso/{}/start?{query}", p.id),
                name: p.name,
            }
        })
        .collect();
    page::render(
        state,
        status,
        &LoginPage {
            chrome: Chrome::anonymous("Sign in"),
            return_to: back.to_owned(),
            email: email.to_owned(),
            error,
            correlation_id: correlation::current(),
            ended,
            password_login: state.password_login,
            providers,
        },
    )
}

/// `GET /console/login`.
pub async fn login_form(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    login_page(
        &state,
        StatusCode::OK,
        q.return_to.as_deref().unwrap_or("/console"),
        "",
        None,
        q.reason.as_deref() == Some("ended"),
    )
}

/// `POST /console/login`: the account service's password sign-in (limits, audit and all),
/// then back into the console. A refusal shows on the form, with its correlation id.
pub async fn login(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&state, &headers) {
        return page::failure(
            &state,
            None,
            ApiError::forbidden("this sign-in form was not sent from this console"),
        );
    }
    let Ok(form) = Params::parse(&body) else {
        return page::failure(
            &state,
            None,
            ApiError::invalid_request("malformed sign-in form"),
        );
    };
    let return_to = form.get("return_to").unwrap_or("/console").to_owned();
    let email = form.get("email").unwrap_or_default().to_owned();
    let password = form.get("password").unwrap_or_default().to_owned();
    match accounts(&state)
        .password_sign_in(&email, password, &meta)
        .await
    {
        Ok(signed_in) => {
            let mut r = see_other(safe_return_to(&return_to).unwrap_or("/console"));
            r.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&state, signed_in.token.expose()),
            );
            r
        }
        Err(e) => {
            // The page is drawn with the refusal's status; `into_page` logs it and keeps
            // its `Retry-After` and `RateLimit-*` headers.
            let e = ApiError::from(e);
            let message = e.message.clone();
            e.into_page(|status, _| {
                login_page(&state, status, &return_to, &email, Some(message), false)
            })
        }
    }
}

/// `POST /console/logout`: ends this session (on every node) and drops the cookie.
pub async fn logout(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = user.form(&state, &headers, &body) {
        return page::failure(&state, None, e);
    }
    if let Err(e) = accounts(&state)
        .sign_out(
            user.auth.principal.user_id,
            &user.auth.session.session,
            &user.auth.audit,
        )
        .await
    {
        return page::failure(&state, None, e.into());
    }
    let mut r = see_other("/console/login");
    r.headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(&state));
    r
}

/// Any other path under `/console`: the console's 404 page (with the correlation id), not
/// the API's JSON envelope.
pub async fn unknown(State(state): State<AppState>) -> Response {
    page::failure(&state, None, ApiError::not_found("no such console page"))
}
