//! OAuth clients (applications) of the project addressed by `X-Project-ID`.

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub mod http;
pub mod service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/project/clients",
            get(http::list_clients).post(http::create_client),
        )
        .route(
            "/v1/project/clients/{client_id}",
            get(http::get_client)
                .patch(http::patch_client)
                .delete(http::delete_client),
        )
        .route(
            "/v1/project/clients/{client_id}/rotate-secret",
            post(http::rotate_client_secret),
        )
}
