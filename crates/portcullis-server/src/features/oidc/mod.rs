//! The OpenID Connect provider: discovery, the authorization code flow with its login and
//! consent pages, the token endpoint, userinfo, introspection, revocation and logout.

pub mod authorize;
pub mod discovery;
pub mod issue;
pub mod logout;
pub mod params;
pub mod resources;
pub mod token;

/// The provider's routes (the JWKS route lives with the key ring's).
pub fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/oauth2/authorize", get(authorize::authorize))
        .route("/oauth2/login", post(authorize::login_form))
        .route("/oauth2/consent", post(authorize::consent_form))
        .route("/oauth2/token", post(token::token))
        .route(
            "/oauth2/userinfo",
            get(resources::userinfo).post(resources::userinfo),
        )
        .route("/oauth2/introspect", post(resources::introspect))
        .route("/oauth2/revoke", post(resources::revoke))
        .route("/oauth2/logout", get(logout::logout))
}

/// A client by id, with its project's status: from memory while nothing changed (client and
/// project edits and revocations bump the cache epoch on every node), else from the store.
/// Unknown ids are never cached.
pub async fn find_client(
    state: &crate::state::AppState,
    id: &portcullis_core::oauth::ClientId,
) -> Result<
    Option<std::sync::Arc<crate::infra::session_cache::CachedClient>>,
    portcullis_store::StoreError,
> {
    if let Some(c) = state.cache.client(id) {
        return Ok(Some(c));
    }
    let epoch = state.cache.epoch();
    let Some(client) = state.store.clients().client_by_id(id).await? else {
        return Ok(None);
    };
    let status = state.store.project_status(client.project_id).await?;
    let project_active = status == Some(portcullis_core::ProjectStatus::Active);
    Ok(Some(state.cache.put_client(
        epoch,
        crate::infra::session_cache::CachedClient {
            client: std::sync::Arc::new(client),
            project_active,
        },
    )))
}
