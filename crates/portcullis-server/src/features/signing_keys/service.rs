//! The signing keys: what the JWKS publishes, and the platform admins' view and rotation.

use bytes::Bytes;
use portcullis_core::AuditContext;
use portcullis_core::oauth::SigningAlg;

use crate::infra::keys::{JWKS_MAX_AGE, KeyError, KeyInfo, KeyRing, Rotated};

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// The published key set (`{"keys": [...]}`, serialized), refreshed from the store when it
/// is older than [`JWKS_MAX_AGE`]. Stale beats absent: when the database is unreachable the
/// keys already loaded are served.
pub async fn published(keys: &KeyRing) -> Result<Bytes, SigningKeyError> {
    if let Err(e) = keys.reload_if_older_than(JWKS_MAX_AGE).await {
        tracing::warn!(error = %e, "could not refresh signing keys for the JWKS; serving the loaded ones");
    }
    Ok(keys.jwks_body()?)
}

/// Every published key, newest first, without private material.
pub async fn list(keys: &KeyRing) -> Result<Vec<KeyInfo>, SigningKeyError> {
    Ok(keys.list().await?)
}

/// A new active key of `alg` (EdDSA unless named); the keys it replaces stay published
/// until every token they signed has expired. Audited as `signing_key.rotated`.
pub async fn rotate(
    keys: &KeyRing,
    alg: Option<SigningAlg>,
    audit: &AuditContext,
) -> Result<Rotated, SigningKeyError> {
    Ok(keys
        .rotate_detailed(alg.unwrap_or(SigningAlg::EdDSA), audit)
        .await?)
}
