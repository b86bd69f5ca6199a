//! Verified domains: an org claims a DNS domain, proves it with a TXT record (or a platform
//! admin vouches for it), and from then on its SSO providers vouch for addresses there.

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub mod http;
pub mod service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/orgs/{org_id}/domains",
            get(http::list_domains).post(http::create_domain),
        )
        .route(
            "/v1/orgs/{org_id}/domains/{domain}",
            axum::routing::delete(http::delete_domain),
        )
        .route(
            "/v1/orgs/{org_id}/domains/{domain}/verify",
            post(http::verify_domain),
        )
}
