//! The OpenID Connect provider: discovery, the authorization code flow with its login and
//! consent pages, the token endpoint, userinfo, introspection, revocation and logout.
//!
//! `service` holds the rules (no HTTP types, one error enum per endpoint group), `http`
//! the handlers and the one mapping of those errors to the RFC error responses; `issue`
//! mints tokens for this feature and for mobile sign-in.

pub mod discovery;
pub mod http;
pub mod issue;
pub mod service;

/// The provider's routes (the JWKS route lives with the key ring's).
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/oauth2/authorize", get(http::authorize::authorize))
        .route("/oauth2/login", post(http::authorize::login_form))
        .route("/oauth2/consent", post(http::authorize::consent_form))
        .route("/oauth2/token", post(http::token::token))
        .route(
            "/oauth2/userinfo",
            get(http::resources::userinfo).post(http::resources::userinfo),
        )
        .route("/oauth2/introspect", post(http::resources::introspect))
        .route("/oauth2/revoke", post(http::resources::revoke))
        .route(
            "/oauth2/logout",
            get(http::logout::logout).post(http::logout::confirm_logout),
        )
}
