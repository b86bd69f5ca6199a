//! Outgoing webhooks of the project addressed by `X-Project-ID`: endpoints, their secrets,
//! test events and the delivery log. Sending is the worker's (`workers::webhooks`).

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub mod dto;
pub mod http;
pub mod service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks/event-types", get(http::event_types))
        .route(
            "/v1/project/webhooks",
            get(http::list_webhooks).post(http::create_webhook),
        )
        .route(
            "/v1/project/webhooks/{id}",
            get(http::get_webhook)
                .patch(http::patch_webhook)
                .delete(http::delete_webhook),
        )
        .route(
            "/v1/project/webhooks/{id}/rotate-secret",
            post(http::rotate_webhook_secret),
        )
        .route("/v1/project/webhooks/{id}/test", post(http::test_webhook))
        .route(
            "/v1/project/webhooks/{id}/deliveries",
            get(http::list_deliveries),
        )
        .route(
            "/v1/project/webhooks/{id}/deliveries/{delivery_id}/retry",
            post(http::retry_delivery),
        )
        .route("/v1/project/webhooks/{id}/recover", post(http::recover))
}
