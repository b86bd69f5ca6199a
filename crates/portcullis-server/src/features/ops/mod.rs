//! Liveness, readiness and metrics.

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub mod http;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/metrics", get(http::metrics))
}
