//! Mobile one-time tokens on SQLite. Spending one is a single conditional `UPDATE …
//! RETURNING`, which SQLite serializes: of concurrent redemptions exactly one gets the row.

use async_trait::async_trait;
use portcullis_core::{
    AuditContext, AuditEvent, OrgId, ProjectId, Session, Timestamp, TokenHash, UserId,
};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::grants::{insert_family, revoke_family_in};
use super::rows::{family_cols, from_micros, hash, micros, token_cols, token_state_from};
use super::statements::{end_session, insert_session};
use crate::mobile::{MobileStore, OneTimeToken};
use crate::unit::Scope;
use crate::{RefreshFamily, RefreshTokenState, StoreResult};

fn ott_from(row: &SqliteRow) -> StoreResult<OneTimeToken> {
    Ok(OneTimeToken {
        token_hash: hash(row.try_get("token_hash")?)?,
        state_hash: hash(row.try_get("state_hash")?)?,
        code_challenge: row.try_get("code_challenge")?,
        user_id: UserId(row.try_get("user_id")?),
        org_id: OrgId(row.try_get("org_id")?),
        project_id: ProjectId(row.try_get("project_id")?),
        auth_time: from_micros(row.try_get("auth_time")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        expires_at: from_micros(row.try_get("expires_at")?)?,
    })
}

#[async_trait]
impl MobileStore for SqliteStore {
    async fn insert_ott(&self, ott: &OneTimeToken, ctx: &AuditContext) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Org(ott.org_id)).await?;
        // Spent and expired tokens are worth nothing; keep the table small.
        sqlx::query("DELETE FROM mobile_one_time_tokens WHERE expires_at < ?")
            .bind(micros(ott.created_at - time::Duration::hours(1)))
            .execute(&mut *unit)
            .await?;
        sqlx::query(
            "INSERT INTO mobile_one_time_tokens (token_hash, state_hash, code_challenge, user_id, org_id, project_id, \
             auth_time, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&ott.token_hash.0[..])
        .bind(&ott.state_hash.0[..])
        .bind(&ott.code_challenge)
        .bind(ott.user_id.0)
        .bind(ott.org_id.0)
        .bind(ott.project_id.0)
        .bind(micros(ott.auth_time))
        .bind(micros(ott.created_at))
        .bind(micros(ott.expires_at))
        .execute(&mut *unit)
        .await?;
        unit.audit(crate::events::ott_issued(ctx, ott));
        unit.commit().await?;
        Ok(())
    }

    async fn consume_ott(
        &self,
        token_hash: &TokenHash,
        now: Timestamp,
    ) -> StoreResult<Option<OneTimeToken>> {
        let mut unit = self.unit(Scope::Platform).await?;
        let row = sqlx::query(
            "UPDATE mobile_one_time_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL RETURNING *",
        )
        .bind(micros(now))
        .bind(&token_hash.0[..])
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
        row.as_ref().map(ott_from).transpose()
    }

    async fn start_device_session(
        &self,
        session: &Session,
        family: &RefreshFamily,
        first: &TokenHash,
        refresh_expires_at: Timestamp,
        exchanged: &AuditEvent,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Org(family.org_id)).await?;
        insert_session(&mut unit, session, ctx).await?;
        unit.audit(exchanged.clone());
        insert_family(&mut unit, family, first, refresh_expires_at).await?;
        unit.commit().await?;
        Ok(())
    }

    async fn refresh_token_org(&self, token_hash: &TokenHash) -> StoreResult<Option<OrgId>> {
        let org: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT org_id FROM refresh_tokens WHERE token_hash = ?")
                .bind(&token_hash.0[..])
                .fetch_optional(&self.pool)
                .await?;
        Ok(org.map(OrgId))
    }

    async fn refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenState>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            token_cols!(),
            ", ",
            family_cols!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
              WHERE t.token_hash = ?"
        ))
        .bind(&token_hash.0[..])
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_state_from).transpose()
    }

    async fn end_device_grant(
        &self,
        family: &RefreshFamily,
        reason: portcullis_core::grant::RevocationReason,
        end_session_too: bool,
        ctx: &AuditContext,
        also: &[AuditEvent],
    ) -> StoreResult<bool> {
        let now = portcullis_core::now();
        let org_id = family.org_id;
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        let revoked = revoke_family_in(&mut unit, org_id, family.id, reason, now).await?;
        if revoked {
            unit.audit(crate::events::family_revoked(
                ctx, org_id, family.id, reason,
            ));
        }
        if end_session_too && let Some(sid) = family.session_id {
            end_session(&mut unit, ctx, family.user_id, sid, now).await?;
        }
        for e in also {
            unit.audit(e.clone());
        }
        unit.commit().await?;
        Ok(revoked)
    }

    async fn default_grant_target(
        &self,
        user_id: UserId,
    ) -> StoreResult<Option<(OrgId, ProjectId)>> {
        let row = sqlx::query(
            "SELECT p.org_id, p.id FROM memberships m JOIN orgs o ON o.id = m.org_id \
             JOIN projects p ON p.org_id = m.org_id AND p.is_default = 1 \
             WHERE m.user_id = ? AND m.deleted_at IS NULL AND o.deleted_at IS NULL \
             ORDER BY m.created_at, m.org_id LIMIT 1",
        )
        .bind(user_id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((OrgId(r.try_get(0)?), ProjectId(r.try_get(1)?))))
            .transpose()
    }
}
