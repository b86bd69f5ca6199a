//! The public JWKS and the platform admins' key management.

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub mod http;
pub mod service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(http::jwks))
        .route("/v1/admin/signing-keys", get(http::list_signing_keys))
        .route(
            "/v1/admin/signing-keys/rotate",
            post(http::rotate_signing_key),
        )
}
