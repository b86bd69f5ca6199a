//! The hand-off's confirmation step. Any installed app may claim an app scheme, so a
//! malicious one could open the hand-off itself and collect the one-time token of whoever
//! is signed in on the browser. Before a token goes to an app scheme, the person at the
//! browser is asked "Continue to <app> on this device?", and only a `POST` from that page
//! mints it: same origin, and a per-page token bound to the browser's session and to the
//! exact hand-off request. Universal links skip the question: the operating system gives
//! them only to the app that proved it owns the domain.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::handoff;
use super::page_token::{PageToken, now_secs};
use crate::http::extract::RequestMeta;
use crate::http::forms::{ConfirmForm, confirm_form};
use crate::http::html as pages;
use crate::state::AppState;

#[utoipa::path(post, path = "/auth/mobile/confirm", tag = "mobile", operation_id = "mobile_confirm",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "decision (continue or cancel), continue (the hand-off query), csrf_token (from the confirmation page)"),
    responses(
        (status = 302, description = "Continue: to redirect_uri with ott and state; Cancel: to redirect_uri with error=access_denied, error_description and state; other refusals after state and redirect_uri are good: to redirect_uri with error, error_description and state"),
        (status = 303, description = "The browser session ended: back to the hand-off, which asks to sign in again"),
        (status = 400, description = "Error page: the hand-off query is bad (state missing, redirect_uri not registered) or the form is malformed (never redirected)"),
        (status = 403, description = "Error page: not sent from this server (Origin), or the page's token is missing, wrong, expired or for another browser session; no one-time token is minted"),
    ),
    security(()))]
pub async fn confirm(
    State(state): State<AppState>,
    RequestMeta(meta): RequestMeta,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ConfirmForm {
        continue_query,
        csrf_token,
        decision,
    } = match confirm_form(&state, &headers, &body) {
        Ok(form) => form,
        Err(refused) => return refused.into_response(),
    };
    let req = match handoff::validate(&state, &continue_query) {
        Ok(req) => req,
        Err(problem) => return pages::error(StatusCode::BAD_REQUEST, &problem),
    };
    let challenge = match handoff::check(&state, &headers, &req) {
        Ok(challenge) => challenge,
        Err((code, description)) => return req.fail(code, &description),
    };
    match decision.as_str() {
        "cancel" => {
            return req.fail(
                "access_denied",
                "the person at the browser cancelled signing in to the app",
            );
        }
        "continue" => {}
        _ => {
            return pages::error(
                StatusCode::BAD_REQUEST,
                "The confirmation form was malformed (decision must be continue or cancel).",
            );
        }
    }
    let Some(session) = handoff::browser_session(&state, &headers).await else {
        // Signed out since the page was shown: the hand-off asks to sign in again.
        return (
            StatusCode::SEE_OTHER,
            [
                (
                    header::LOCATION,
                    format!("{}?{continue_query}", handoff::PATH),
                ),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response();
    };
    if !PageToken::new(&state.mobile.session_key).verify(
        session.session.id,
        &continue_query,
        &csrf_token,
        now_secs(),
    ) {
        tracing::info!("mobile hand-off confirmation refused: page token missing or invalid");
        return pages::error(
            StatusCode::FORBIDDEN,
            "This confirmation is not valid for this browser: it expired or was not sent from this \
             server's page. Start signing in again from the app.",
        );
    }
    handoff::issue(&state, &req, challenge, &session, &meta).await
}
