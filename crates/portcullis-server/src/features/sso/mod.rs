//! Sign-in through upstream identity providers, and org admins' providers.

use axum::Router;
use axum::routing::get;

use crate::state::AppState;
use service::Sso;

pub mod flow;
pub mod http;
pub mod service;

/// The service over the parts of the server state it works with.
fn sso(state: &AppState) -> Sso<'_> {
    Sso {
        store: &*state.store,
        cache: &state.cache,
        sessions: &state.sessions,
        metrics: &state.metrics,
        providers: &state.sso,
        master_key: &state.master_key,
        public_url: &state.public_url,
        public_origin: &state.public_origin,
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/sso/providers", get(http::list_available))
        .route("/v1/auth/sso/{provider}/start", get(http::start))
        .route("/v1/auth/sso/{provider}/callback", get(http::callback))
        .route(
            "/v1/orgs/{org_id}/sso-providers",
            get(http::list_org_providers).post(http::create_org_provider),
        )
        .route(
            "/v1/orgs/{org_id}/sso-providers/{id}",
            get(http::get_org_provider)
                .patch(http::patch_org_provider)
                .delete(http::delete_org_provider),
        )
}
