//! Mobile sign-in: a browser hand-off that ends in a one-time token (OTT) on the app's deep
//! link, the OTT's exchange for an access token and a refresh token, and their rotation.
//! The HTTP handlers live in `http.rs` and `handoff.rs`; the sign-in rules they call are
//! in [`service`], and this module holds what they share.
//!
//! Mobile refresh tokens are refresh families of the OAuth grant store, issued to the
//! reserved first-party client [`MOBILE_CLIENT_ID`], so rotation, the grace window and reuse
//! detection are the provider's own code. Each exchange also creates a session (with the
//! device on it): the access token names it (`sid`), and revoking it stops the token.

use axum::Router;
use axum::routing::{get, post};
use portcullis_core::oauth::{
    ClientType, GrantType, OAuthClient, SigningAlg, TokenEndpointAuthMethod,
};
use portcullis_core::{OrgId, ProjectId};

pub use portcullis_store::MOBILE_CLIENT_ID;

use crate::state::AppState;

pub mod connect;
pub mod handoff;
pub mod http;
pub mod service;

/// What a mobile access token may do: everything the user's session may.
pub const MOBILE_SCOPE: &str = "openid profile email";

/// The in-memory client mobile tokens are issued to, acting in `org_id`/`project_id`.
pub fn client(state: &AppState, org_id: OrgId, project_id: ProjectId) -> OAuthClient {
    let now = portcullis_core::now();
    OAuthClient {
        id: state.mobile.client_id.clone(),
        org_id,
        project_id,
        name: "Portcullis mobile".into(),
        client_type: ClientType::Public,
        secret_hash: None,
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec![GrantType::RefreshToken],
        token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        access_token_ttl_secs: state.mobile.access_token_ttl_secs,
        signing_alg: SigningAlg::EdDSA,
        created_at: now,
        updated_at: now,
    }
}

/// Whether the org may use mobile sign-in. Plans do not exist yet, so every org may; when
/// they do, this is the one place that asks the org's plan (answering `feature_disabled`
/// on the hand-off, the exchange and refresh).
pub async fn allowed_for_org(_state: &AppState, _org_id: OrgId) -> bool {
    true
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
}
