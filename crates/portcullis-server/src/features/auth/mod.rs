//! Web sign-in with email and password: signup (optionally with an invitation), login,
//! logout, and the first password of an admin-created account.

use axum::Router;
use axum::routing::post;

use crate::state::AppState;

pub mod http;
pub mod service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/signup", post(http::signup))
        .route("/v1/auth/login", post(http::login))
        .route("/v1/auth/logout", post(http::logout))
        .route("/v1/auth/password-setup", post(http::password_setup))
}

/// The account service over the app state; the sign-in pages of other features use it too.
pub fn accounts(state: &AppState) -> service::Accounts<'_> {
    service::Accounts {
        store: &*state.store,
        cache: &state.cache,
        hasher: &state.hasher,
        sessions: &state.sessions,
        metrics: &state.metrics,
        limits: &state.sign_in_limits,
        password_login: state.password_login,
    }
}
