//! Organizations, their members, members' sessions, projects and audit trail.

use axum::Router;
use axum::routing::{delete, get, patch};

use crate::state::AppState;

pub mod http;
pub mod service;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/orgs", get(http::list_orgs).post(http::create_org))
        .route("/v1/orgs/{org_id}", get(http::get_org))
        .route(
            "/v1/orgs/{org_id}/members",
            get(http::list_members).post(http::add_member),
        )
        .route(
            "/v1/orgs/{org_id}/members/{user_id}",
            patch(http::change_role).delete(http::remove_member),
        )
        .route("/v1/orgs/{org_id}/sessions", get(http::list_org_sessions))
        .route(
            "/v1/orgs/{org_id}/sessions/{id}",
            delete(http::revoke_org_session),
        )
        .route(
            "/v1/orgs/{org_id}/projects",
            get(http::list_projects).post(http::create_project),
        )
        .route("/v1/orgs/{org_id}/audit", get(http::audit))
}
