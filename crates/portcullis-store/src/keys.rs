//! The server's JWS signing keys. They belong to the whole server, not to a tenant: every
//! node signs with the active key of an algorithm and publishes every key whose tokens may
//! still be alive. Private keys arrive here already encrypted; the store never sees them
//! in the clear.

use async_trait::async_trait;
use portcullis_core::oauth::SigningAlg;
use portcullis_core::{AuditContext, Timestamp};

use crate::StoreResult;

/// One signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id, as published in the JWKS and in token headers. Unique.
    pub kid: String,
    pub alg: SigningAlg,
    /// The private key, sealed by the server (nonce ‖ ciphertext ‖ tag); opaque here.
    pub encrypted_private_key: Vec<u8>,
    /// The public JWK exactly as published (`kty`, `kid`, `alg`, `use`, public parameters).
    pub public_jwk: serde_json::Value,
    pub created_at: Timestamp,
    /// When it stopped signing; None while it is the active key of its algorithm.
    pub retired_at: Option<Timestamp>,
    /// Until when it stays in the JWKS; None while active (published indefinitely).
    pub publish_until: Option<Timestamp>,
}

impl SigningKeyRecord {
    pub fn is_active(&self) -> bool {
        self.retired_at.is_none()
    }

    pub fn is_published(&self, now: Timestamp) -> bool {
        self.publish_until.is_none_or(|t| t > now)
    }
}

impl std::fmt::Debug for SigningKeyRecord {
    // Sealed bytes are not secret, but they are long and useless in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

/// What a rotation did, for the caller's reply and the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Keys of the algorithm that were active before and are now retired.
    pub retired: Vec<String>,
    pub publish_until: Timestamp,
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Stores a new active key. At most one key per algorithm is active: when another node
    /// stored one first, this fails with `Conflict` and the caller should reload.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;

    /// Keys still published at `now` (active, or retired with `publish_until` in the
    /// future), newest first.
    async fn published_signing_keys(&self, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>>;

    /// In one transaction: retires the active key(s) of `new.alg` (published until
    /// `publish_until`), stores `new` as the active key, and writes `signing_key.rotated`.
    async fn rotate_signing_key(
        &self,
        new: &SigningKeyRecord,
        publish_until: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<Rotation>;
}

/// `signing_key.rotated`: outside any org; names the new key and the ones it replaced.
pub(crate) fn rotated_event(
    ctx: &AuditContext,
    new: &SigningKeyRecord,
    rotation: &Rotation,
) -> portcullis_core::AuditEvent {
    let publish_until = rotation
        .publish_until
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    ctx.event(
        None,
        portcullis_core::Action::SigningKeyRotated,
        format!("signing_key:{}", new.kid),
    )
    .with_details(serde_json::json!({
        "alg": new.alg.as_str(),
        "kid": new.kid,
        "retired": rotation.retired,
        "publish_until": publish_until,
    }))
}
