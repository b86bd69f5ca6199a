//! OAuth grants on SQLite. Rotation and redemption run in `BEGIN IMMEDIATE` transactions,
//! which SQLite serializes: of many concurrent presentations of one token exactly one sees
//! it unused.

use async_trait::async_trait;
use portcullis_core::oauth::ClientId;
use portcullis_core::{AuditContext, OrgId, ProjectId, SessionId, Timestamp, TokenHash, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};
use uuid::Uuid;

use super::SqliteStore;
use super::rows::{from_micros, micros};
use super::statements::insert_audit;
use crate::grants::{
    AuthCode, CodeRedemption, GrantStore, RefreshFamily, RefreshOutcome, RefreshTokenState,
};
use crate::{StoreError, StoreResult};

fn client_id(s: String) -> StoreResult<ClientId> {
    ClientId::parse(&s).ok_or_else(|| StoreError::Corrupt("client id".into()))
}

fn hash(bytes: Vec<u8>) -> StoreResult<TokenHash> {
    TokenHash::from_slice(&bytes).ok_or_else(|| StoreError::Corrupt("hash length".into()))
}

macro_rules! family_cols {
    () => {
        "f.id AS f_id, f.client_id AS f_client_id, f.org_id AS f_org_id, f.project_id AS f_project_id, \
         f.user_id AS f_user_id, f.session_id AS f_session_id, f.scope AS f_scope, f.auth_time AS f_auth_time, \
         f.created_at AS f_created_at, f.revoked_at AS f_revoked_at"
    };
}

fn family_from(row: &SqliteRow) -> StoreResult<RefreshFamily> {
    Ok(RefreshFamily {
        id: row.try_get("f_id")?,
        client_id: client_id(row.try_get("f_client_id")?)?,
        org_id: OrgId(row.try_get("f_org_id")?),
        project_id: ProjectId(row.try_get("f_project_id")?),
        user_id: UserId(row.try_get("f_user_id")?),
        session_id: row
            .try_get::<Option<Uuid>, _>("f_session_id")?
            .map(SessionId),
        scope: row.try_get("f_scope")?,
        auth_time: from_micros(row.try_get("f_auth_time")?)?,
        created_at: from_micros(row.try_get("f_created_at")?)?,
    })
}

fn code_from(row: &SqliteRow) -> StoreResult<AuthCode> {
    Ok(AuthCode {
        code_hash: hash(row.try_get("code_hash")?)?,
        client_id: client_id(row.try_get("client_id")?)?,
        org_id: OrgId(row.try_get("org_id")?),
        project_id: ProjectId(row.try_get("project_id")?),
        user_id: UserId(row.try_get("user_id")?),
        session_id: row.try_get::<Option<Uuid>, _>("session_id")?.map(SessionId),
        redirect_uri: row.try_get("redirect_uri")?,
        scope: row.try_get("scope")?,
        nonce: row.try_get("nonce")?,
        code_challenge: row.try_get("code_challenge")?,
        auth_time: from_micros(row.try_get("auth_time")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        expires_at: from_micros(row.try_get("expires_at")?)?,
    })
}

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

async fn revoke_family_in(
    tx: &mut Tx,
    family: Uuid,
    reason: &str,
    now: Timestamp,
) -> StoreResult<bool> {
    let n = sqlx::query("UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL")
        .bind(micros(now))
        .bind(reason)
        .bind(family)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(n > 0)
}

/// A refresh family and its first token, inside the caller's transaction.
pub(super) async fn insert_family(
    tx: &mut Transaction<'static, Sqlite>,
    f: &RefreshFamily,
    first: &TokenHash,
    expires_at: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO refresh_families (id, client_id, org_id, project_id, user_id, session_id, scope, auth_time, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(f.id)
    .bind(f.client_id.as_str())
    .bind(f.org_id.0)
    .bind(f.project_id.0)
    .bind(f.user_id.0)
    .bind(f.session_id.map(|s| s.0))
    .bind(&f.scope)
    .bind(micros(f.auth_time))
    .bind(micros(f.created_at))
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id, org_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
        .bind(&first.0[..])
        .bind(f.id)
        .bind(f.org_id.0)
        .bind(micros(f.created_at))
        .bind(micros(expires_at))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, client_id, org_id, project_id, user_id, session_id, redirect_uri, scope, \
             nonce, code_challenge, auth_time, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.code_hash.0[..])
        .bind(c.client_id.as_str())
        .bind(c.org_id.0)
        .bind(c.project_id.0)
        .bind(c.user_id.0)
        .bind(c.session_id.map(|s| s.0))
        .bind(&c.redirect_uri)
        .bind(&c.scope)
        .bind(&c.nonce)
        .bind(&c.code_challenge)
        .bind(micros(c.auth_time))
        .bind(micros(c.created_at))
        .bind(micros(c.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn redeem_code(
        &self,
        org_id: OrgId,
        code_hash: &TokenHash,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<CodeRedemption> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "SELECT *, used_at AS was_used FROM oauth_codes WHERE code_hash = ? AND org_id = ?",
        )
        .bind(&code_hash.0[..])
        .bind(org_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(CodeRedemption::Unknown);
        };
        let code = code_from(&row)?;
        if row.try_get::<Option<i64>, _>("was_used")?.is_some() {
            let family: Option<Uuid> = row.try_get("family_id")?;
            if let Some(f) = family {
                revoke_family_in(&mut tx, f, "code_replay", now).await?;
            }
            insert_audit(
                &mut tx,
                &crate::events::code_replayed(ctx, org_id, code.client_id.as_str(), family),
            )
            .await?;
            tx.commit().await?;
            return Ok(CodeRedemption::Replayed {
                client_id: code.client_id,
            });
        }
        sqlx::query("UPDATE oauth_codes SET used_at = ? WHERE code_hash = ?")
            .bind(micros(now))
            .bind(&code_hash.0[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CodeRedemption::Redeemed(Box::new(code)))
    }

    async fn start_family(
        &self,
        f: &RefreshFamily,
        first: &TokenHash,
        expires_at: Timestamp,
        from_code: Option<&TokenHash>,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_family(&mut tx, f, first, expires_at).await?;
        if let Some(code) = from_code {
            sqlx::query("UPDATE oauth_codes SET family_id = ? WHERE code_hash = ?")
                .bind(f.id)
                .bind(&code.0[..])
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh(
        &self,
        org_id: OrgId,
        client: &ClientId,
        presented: &TokenHash,
        successor: &TokenHash,
        now: Timestamp,
        grace: time::Duration,
        successor_expires_at: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<RefreshOutcome> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(concat!(
            "SELECT t.expires_at, t.used_at, t.successor_hash, ",
            family_cols!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ? AND t.org_id = ?"
        ))
        .bind(&presented.0[..])
        .bind(org_id.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Unknown);
        };
        let family = family_from(&row)?;
        if family.client_id != *client {
            return Ok(RefreshOutcome::Unknown);
        }
        if row.try_get::<Option<i64>, _>("f_revoked_at")?.is_some() {
            return Ok(RefreshOutcome::Revoked(family));
        }
        if let Some(used_at) = row.try_get::<Option<i64>, _>("used_at")? {
            let same_successor = row
                .try_get::<Option<Vec<u8>>, _>("successor_hash")?
                .is_some_and(|h| h == successor.0);
            if same_successor && now - from_micros(used_at)? <= grace {
                return Ok(RefreshOutcome::Retried(family));
            }
            revoke_family_in(&mut tx, family.id, "reuse", now).await?;
            insert_audit(&mut tx, &crate::events::refresh_reuse(ctx, &family)).await?;
            tx.commit().await?;
            return Ok(RefreshOutcome::ReuseDetected(family));
        }
        if from_micros(row.try_get("expires_at")?)? <= now {
            return Ok(RefreshOutcome::Expired(family));
        }
        sqlx::query(
            "UPDATE refresh_tokens SET used_at = ?, successor_hash = ? WHERE token_hash = ?",
        )
        .bind(micros(now))
        .bind(&successor.0[..])
        .bind(&presented.0[..])
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id, org_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&successor.0[..])
            .bind(family.id)
            .bind(org_id.0)
            .bind(micros(now))
            .bind(micros(successor_expires_at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(RefreshOutcome::Rotated(family))
    }

    async fn refresh_token_state(
        &self,
        org_id: OrgId,
        token: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenState>> {
        let row = sqlx::query(concat!(
            "SELECT t.created_at, t.expires_at, t.used_at, ",
            family_cols!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = ? AND t.org_id = ?"
        ))
        .bind(&token.0[..])
        .bind(org_id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(RefreshTokenState {
                family: family_from(&r)?,
                created_at: from_micros(r.try_get("created_at")?)?,
                expires_at: from_micros(r.try_get("expires_at")?)?,
                used: r.try_get::<Option<i64>, _>("used_at")?.is_some(),
                family_revoked: r.try_get::<Option<i64>, _>("f_revoked_at")?.is_some(),
            })
        })
        .transpose()
    }

    async fn revoke_family(
        &self,
        org_id: OrgId,
        family_id: Uuid,
        reason: &str,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("UPDATE refresh_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND org_id = ? AND revoked_at IS NULL")
            .bind(micros(portcullis_core::now()))
            .bind(reason)
            .bind(family_id)
            .bind(org_id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        insert_audit(
            &mut tx,
            &crate::events::family_revoked(ctx, org_id, family_id, reason),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn family_revoked(&self, org_id: OrgId, family_id: Uuid) -> StoreResult<bool> {
        let revoked: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT revoked_at FROM refresh_families WHERE id = ? AND org_id = ?",
        )
        .bind(family_id)
        .bind(org_id.0)
        .fetch_optional(&self.pool)
        .await?;
        // An unknown family cannot vouch for anything: treat as revoked.
        Ok(revoked.is_none_or(|r| r.is_some()))
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: Timestamp) -> StoreResult<()> {
        let now = micros(portcullis_core::now());
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM revoked_access_tokens WHERE expires_at < ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(micros(expires_at))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn access_token_revoked(&self, jti: &str) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM revoked_access_tokens WHERE jti = ?")
                .bind(jti)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn consent(
        &self,
        org_id: OrgId,
        user_id: UserId,
        client: &ClientId,
    ) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT scope FROM oauth_consents WHERE org_id = ? AND user_id = ? AND client_id = ?",
        )
        .bind(org_id.0)
        .bind(user_id.0)
        .bind(client.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn grant_consent(
        &self,
        org_id: OrgId,
        user_id: UserId,
        client: &ClientId,
        scope: &str,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO oauth_consents (user_id, client_id, org_id, scope, granted_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(user_id.0)
        .bind(client.as_str())
        .bind(org_id.0)
        .bind(scope)
        .bind(micros(portcullis_core::now()))
        .execute(&mut *tx)
        .await?;
        insert_audit(
            &mut tx,
            &crate::events::consent(ctx, org_id, user_id, client.as_str(), true, scope),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_consent(
        &self,
        user_id: UserId,
        client: &ClientId,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("DELETE FROM oauth_consents WHERE user_id = ? AND client_id = ? RETURNING org_id, scope")
            .bind(user_id.0)
            .bind(client.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let org_id = OrgId(row.try_get("org_id")?);
        let scope: String = row.try_get("scope")?;
        sqlx::query("UPDATE refresh_families SET revoked_at = ?, revoked_reason = 'consent_revoked' WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL")
            .bind(micros(portcullis_core::now()))
            .bind(user_id.0)
            .bind(client.as_str())
            .execute(&mut *tx)
            .await?;
        insert_audit(
            &mut tx,
            &crate::events::consent(ctx, org_id, user_id, client.as_str(), false, &scope),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn consents_of_user(
        &self,
        user_id: UserId,
    ) -> StoreResult<Vec<(ClientId, String, Timestamp)>> {
        let rows = sqlx::query("SELECT client_id, scope, granted_at FROM oauth_consents WHERE user_id = ? ORDER BY granted_at DESC")
            .bind(user_id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    client_id(r.try_get("client_id")?)?,
                    r.try_get("scope")?,
                    from_micros(r.try_get("granted_at")?)?,
                ))
            })
            .collect()
    }
}
