//! The project addressed by `X-Project-ID`.

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub mod http;
pub mod service;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/project",
        get(http::get_project).patch(http::patch_project),
    )
}
