//! Signing keys on SQLite. A rotation is one unit, so the retired
//! key, the new key and the audit event appear together or not at all.

use async_trait::async_trait;
use portcullis_core::oauth::SigningAlg;
use portcullis_core::{AuditContext, Timestamp};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::rows::{from_micros, micros, opt_micros};
use super::unit::Unit;
use crate::keys::{Rotation, SigningKeyRecord, SigningKeyStore, rotated_event};
use crate::unit::Scope;
use crate::{StoreError, StoreResult};

macro_rules! key_cols {
    () => {
        "kid, alg, encrypted_private_key, public_jwk, created_at, retired_at, publish_until"
    };
}

fn key_from(row: &SqliteRow) -> StoreResult<SigningKeyRecord> {
    let jwk: String = row.try_get("public_jwk")?;
    Ok(SigningKeyRecord {
        kid: row.try_get("kid")?,
        alg: SigningAlg::parse(row.try_get::<&str, _>("alg")?)?,
        encrypted_private_key: row.try_get("encrypted_private_key")?,
        public_jwk: serde_json::from_str(&jwk)
            .map_err(|e| StoreError::Corrupt(format!("signing key JWK: {e}")))?,
        created_at: from_micros(row.try_get("created_at")?)?,
        retired_at: opt_micros(row.try_get("retired_at")?)?,
        publish_until: opt_micros(row.try_get("publish_until")?)?,
    })
}

async fn insert(unit: &mut Unit<'_>, k: &SigningKeyRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, encrypted_private_key, public_jwk, created_at, retired_at, publish_until) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&k.kid)
    .bind(k.alg.as_str())
    .bind(&k.encrypted_private_key)
    .bind(k.public_jwk.to_string())
    .bind(micros(k.created_at))
    .bind(k.retired_at.map(micros))
    .bind(k.publish_until.map(micros))
    .execute(&mut **unit)
    .await?;
    Ok(())
}

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Nobody).await?;
        insert(&mut unit, key).await?;
        unit.commit().await?;
        Ok(())
    }

    async fn published_signing_keys(&self, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            key_cols!(),
            " FROM signing_keys WHERE publish_until IS NULL OR publish_until > ? \
             ORDER BY created_at DESC, kid"
        ))
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from).collect()
    }

    async fn rotate_signing_key(
        &self,
        new: &SigningKeyRecord,
        publish_until: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<Rotation> {
        let mut unit = self.unit(Scope::Nobody).await?;
        let retired: Vec<String> = sqlx::query_scalar(
            "UPDATE signing_keys SET retired_at = ?, publish_until = ? \
             WHERE alg = ? AND retired_at IS NULL RETURNING kid",
        )
        .bind(micros(new.created_at))
        .bind(micros(publish_until))
        .bind(new.alg.as_str())
        .fetch_all(&mut *unit)
        .await?;
        insert(&mut unit, new).await?;
        let rotation = Rotation {
            retired,
            publish_until,
        };
        unit.audit(rotated_event(ctx, new, &rotation));
        unit.commit().await?;
        Ok(rotation)
    }
}
