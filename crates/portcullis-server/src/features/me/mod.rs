//! The caller's own account: profile and memberships, sessions, OAuth consents.

use axum::Router;
use axum::routing::{delete, get};

use crate::state::AppState;

pub mod http;
pub mod service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(http::me))
        .route("/v1/sessions", get(http::list_sessions))
        .route("/v1/sessions/{id}", delete(http::revoke_session))
        .route("/v1/me/consents", get(http::list_consents))
        .route("/v1/me/consents/{client_id}", delete(http::revoke_consent))
}
