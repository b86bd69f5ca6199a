//! The route table, grouped by surface.

use axum::Router;
use axum::routing::{get, patch, post};

use crate::error::ApiError;
use crate::state::AppState;

pub mod auth;
pub mod clients;
pub mod connect;
pub mod health;
pub mod me;
pub mod mobile;
pub mod orgs;
pub mod project;
pub mod signing_keys;
pub mod sso;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi))
        .route("/.well-known/jwks.json", get(signing_keys::jwks))
        .route(
            "/v1/admin/signing-keys",
            get(signing_keys::list_signing_keys),
        )
        .route(
            "/v1/admin/signing-keys/rotate",
            post(signing_keys::rotate_signing_key),
        )
        .route("/v1/auth/signup", post(auth::signup))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/auth/sso/providers", get(sso::list_available))
        .route("/v1/auth/sso/{provider}/start", get(sso::start))
        .route("/v1/auth/sso/{provider}/callback", get(sso::callback))
        .route(
            "/v1/orgs/{org_id}/sso-providers",
            get(sso::list_org_providers).post(sso::create_org_provider),
        )
        .route(
            "/v1/orgs/{org_id}/sso-providers/{id}",
            get(sso::get_org_provider)
                .patch(sso::patch_org_provider)
                .delete(sso::delete_org_provider),
        )
        .route("/v1/me", get(me::me))
        .route("/v1/sessions", get(me::list_sessions))
        .route("/v1/me/consents", get(me::list_consents))
        .route(
            "/v1/me/consents/{client_id}",
            axum::routing::delete(me::revoke_consent),
        )
        .route(
            "/v1/sessions/{id}",
            axum::routing::delete(me::revoke_session),
        )
        .route("/v1/orgs", get(orgs::list_orgs).post(orgs::create_org))
        .route("/v1/orgs/{org_id}", get(orgs::get_org))
        .route(
            "/v1/orgs/{org_id}/members",
            get(orgs::list_members).post(orgs::add_member),
        )
        .route(
            "/v1/orgs/{org_id}/members/{user_id}",
            patch(orgs::change_role).delete(orgs::remove_member),
        )
        .route("/v1/orgs/{org_id}/sessions", get(orgs::list_org_sessions))
        .route(
            "/v1/orgs/{org_id}/sessions/{id}",
            axum::routing::delete(orgs::revoke_org_session),
        )
        .route(
            "/v1/orgs/{org_id}/projects",
            get(orgs::list_projects).post(orgs::create_project),
        )
        .route("/v1/orgs/{org_id}/audit", get(orgs::audit))
        .route(
            "/v1/project",
            get(project::get_project).patch(project::patch_project),
        )
        .route(
            "/v1/project/clients",
            get(clients::list_clients).post(clients::create_client),
        )
        .route(
            "/v1/project/clients/{client_id}",
            get(clients::get_client)
                .patch(clients::patch_client)
                .delete(clients::delete_client),
        )
        .route(
            "/v1/project/clients/{client_id}/rotate-secret",
            post(clients::rotate_client_secret),
        )
        .route(
            "/api/v1/mobile/auth/capabilities",
            get(mobile::capabilities),
        )
        .route("/v1/mobile/connect", get(connect::connect))
        .route("/v1/mobile/connect.svg", get(connect::connect_svg))
        .route("/api/v1/mobile/auth/exchange", post(mobile::exchange))
        .route("/api/v1/mobile/auth/refresh", post(mobile::refresh))
        .route("/api/v1/mobile/auth/revoke", post(mobile::revoke))
        .route(
            crate::mobile::handoff::PATH,
            get(crate::mobile::handoff::handoff),
        )
        .route(
            crate::mobile::handoff::LOGIN_PATH,
            post(crate::mobile::handoff::login),
        )
        .merge(crate::oidc::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .with_state(state)
}
