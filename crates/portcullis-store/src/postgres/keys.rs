//! Signing keys on PostgreSQL. The table is server-wide, without row-level security; a
//! rotation runs in the `Nobody` scope, which may write the org-less audit event. Two nodes
//! rotating at once: the second one's insert meets the first one's new key in the unique
//! index of active keys and fails with `Conflict`, rolling its retirement back.

use async_trait::async_trait;
use portcullis_core::oauth::SigningAlg;
use portcullis_core::{AuditContext, Timestamp};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use super::unit::Unit;
use crate::StoreResult;
use crate::keys::{Rotation, SigningKeyRecord, SigningKeyStore, rotated_event};
use crate::unit::Scope;

macro_rules! key_cols {
    () => {
        "kid, alg, encrypted_private_key, public_jwk, created_at, retired_at, publish_until"
    };
}

fn key_from(row: &PgRow) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: row.try_get("kid")?,
        alg: SigningAlg::parse(row.try_get::<&str, _>("alg")?)?,
        encrypted_private_key: row.try_get("encrypted_private_key")?,
        public_jwk: row.try_get("public_jwk")?,
        created_at: row.try_get("created_at")?,
        retired_at: row.try_get("retired_at")?,
        publish_until: row.try_get("publish_until")?,
    })
}

async fn insert(unit: &mut Unit<'_>, k: &SigningKeyRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, alg, encrypted_private_key, public_jwk, created_at, retired_at, publish_until) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&k.kid)
    .bind(k.alg.as_str())
    .bind(&k.encrypted_private_key)
    .bind(&k.public_jwk)
    .bind(k.created_at)
    .bind(k.retired_at)
    .bind(k.publish_until)
    .execute(&mut **unit)
    .await?;
    Ok(())
}

#[async_trait]
impl SigningKeyStore for PgStore {
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
            " FROM signing_keys WHERE publish_until IS NULL OR publish_until > $1 \
             ORDER BY created_at DESC, kid"
        ))
        .bind(now)
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
            "UPDATE signing_keys SET retired_at = $1, publish_until = $2 \
             WHERE alg = $3 AND retired_at IS NULL RETURNING kid",
        )
        .bind(new.created_at)
        .bind(publish_until)
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
