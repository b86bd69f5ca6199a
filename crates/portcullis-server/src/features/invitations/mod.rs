//! Invitations to join an org: made, listed and revoked by its admins, accepted by the
//! invited person (signed in here, or while signing up through `features::auth`).

use axum::Router;
use axum::routing::{delete, get, post};

use crate::state::AppState;

pub mod dto;
pub mod http;
pub mod service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/orgs/{org_id}/invitations",
            get(http::list_invitations).post(http::create_invitation),
        )
        .route(
            "/v1/orgs/{org_id}/invitations/{id}",
            delete(http::revoke_invitation),
        )
        .route("/v1/invitations/accept", post(http::accept_invitation))
}

/// Where the invited person accepts: the console's page, which posts the token to
/// `POST /v1/invitations/accept` (signed in) or signs up with it. The token rides in the
/// fragment, which browsers never send to a server.
pub fn accept_url(public_url: &str, token: &str) -> String {
    format!(
        "{}/invitations/accept#token={token}",
        public_url.trim_end_matches('/')
    )
}
