//! The developer platform: project keys (`pk_…`, `sk_…` with rotation grace), the public
//! config and backend health checks, and org subscriptions with their plan limits.

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub mod http;
pub mod service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/project/keys", get(http::list_keys))
        .route("/v1/project/keys/rotate", post(http::rotate_key))
        .route("/v1/public/config", get(http::public_config))
        .route("/v1/backend/health", get(http::backend_health))
        .route(
            "/v1/orgs/{org_id}/subscription",
            get(http::get_subscription).put(http::put_subscription),
        )
}
