//! Mobile sign-in: a browser hand-off that ends in a one-time token (OTT) on the app's deep
//! link, the OTT's exchange for an access token and a refresh token, and their rotation.
//! The HTTP handlers live in `http.rs`, `handoff.rs`, `confirm.rs` and `connect.rs`; the sign-in rules
//! they call are in [`service`], and this module holds what they share.
//!
//! Mobile refresh tokens are refresh families of the OAuth grant store, issued to the
//! reserved first-party client [`MOBILE_CLIENT_ID`], so rotation, the grace window and reuse
//! detection are the provider's own code. Each exchange also creates a session (with the
//! device on it): the access token names it (`sid`), and revoking it stops the token.

use axum::Router;
use axum::routing::{get, post};

pub use portcullis_store::MOBILE_CLIENT_ID;

use crate::state::AppState;
use service::Mobile;

pub mod confirm;
pub mod connect;
pub mod handoff;
pub mod http;
mod page_token;
pub mod provider;
pub mod service;

/// What a mobile access token may do: everything the user's session may.
pub const MOBILE_SCOPE: &str = "openid profile email";

/// The service over the parts of the server state it works with (the console's mobile
/// card uses it too).
pub fn mobile(state: &AppState) -> Mobile<'_> {
    Mobile {
        store: &*state.store,
        cache: &state.cache,
        sessions: &state.sessions,
        metrics: &state.metrics,
        settings: &state.mobile,
        limits: &state.mobile_limits,
        oidc: &state.oidc,
        public_origin: &state.public_origin,
        provider: provider::Provider::new(state),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/mobile/auth/capabilities", get(http::capabilities))
        .route("/api/v1/mobile/auth/exchange", post(http::exchange))
        .route("/api/v1/mobile/auth/refresh", post(http::refresh))
        .route("/api/v1/mobile/auth/revoke", post(http::revoke))
        .route("/v1/mobile/connect", get(connect::connect))
        .route("/v1/mobile/connect.svg", get(connect::connect_svg))
        .route(handoff::PATH, get(handoff::handoff))
        .route(handoff::LOGIN_PATH, post(handoff::login))
        .route(handoff::CONFIRM_PATH, post(confirm::confirm))
}
