//! The provider's rules, free of HTTP: each endpoint group takes typed input and returns
//! its own error enum, one variant per cause. `super::http` turns each cause into the RFC
//! 6749 / 6750 / 7009 / 7662 error once.

pub mod authorize;
pub mod client_auth;
pub mod logout;
pub mod resources;
pub mod token;

use std::sync::Arc;

use portcullis_core::oauth::ClientId;
use portcullis_store::StoreError;

use crate::infra::session_cache::CachedClient;
use crate::state::AppState;

/// A required request parameter was not sent (`invalid_request`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("missing parameter {0:?}")]
pub struct MissingParameter(pub &'static str);

pub(crate) fn require<'a>(
    value: Option<&'a str>,
    name: &'static str,
) -> Result<&'a str, MissingParameter> {
    value.ok_or(MissingParameter(name))
}

/// A client by id, with its project's status: from memory while nothing changed (client and
/// project edits and revocations bump the cache epoch on every node), else from the store.
/// Unknown ids are never cached.
pub async fn find_client(
    state: &AppState,
    id: &ClientId,
) -> Result<Option<Arc<CachedClient>>, StoreError> {
    if let Some(c) = state.cache.client(id) {
        return Ok(Some(c));
    }
    let epoch = state.cache.epoch();
    let Some(client) = state.store.clients().client_by_id(id).await? else {
        return Ok(None);
    };
    let status = state
        .store
        .projects()
        .project_status(client.project_id)
        .await?;
    let project_active = status == Some(portcullis_core::ProjectStatus::Active);
    Ok(Some(state.cache.put_client(
        epoch,
        CachedClient {
            client: Arc::new(client),
            project_active,
        },
    )))
}
