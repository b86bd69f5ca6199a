//! Mobile one-time tokens on PostgreSQL. A token is written in its org's row-level security
//! context; a bare token presented by the app names no org, so spending it runs in platform
//! scope (the 256-bit token is the capability). Spending is one conditional `UPDATE …
//! RETURNING`: of concurrent redemptions exactly one matches the unused row.

use async_trait::async_trait;
use portcullis_core::{
    AuditContext, AuditEvent, OrgId, ProjectId, Session, Timestamp, TokenHash, UserId,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use super::grants::{insert_family, revoke_family_in};
use super::rows::{family_cols, hash, token_cols, token_state_from};
use super::statements::{end_session, insert_session};
use crate::mobile::{MobileStore, OneTimeToken};
use crate::unit::Scope;
use crate::{RefreshFamily, RefreshTokenState, StoreResult};

fn ott_from(row: &PgRow) -> StoreResult<OneTimeToken> {
    Ok(OneTimeToken {
        token_hash: hash(row.try_get("token_hash")?)?,
        state_hash: hash(row.try_get("state_hash")?)?,
        code_challenge: row.try_get("code_challenge")?,
        user_id: UserId(row.try_get("user_id")?),
        org_id: OrgId(row.try_get("org_id")?),
        project_id: ProjectId(row.try_get("project_id")?),
        auth_time: row.try_get("auth_time")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

#[async_trait]
impl MobileStore for PgStore {
    async fn insert_ott(&self, ott: &OneTimeToken, ctx: &AuditContext) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Org(ott.org_id)).await?;
        // Spent and expired tokens are worth nothing; keep the table small.
        sqlx::query("DELETE FROM mobile_one_time_tokens WHERE org_id = $1 AND expires_at < $2")
            .bind(ott.org_id.0)
            .bind(ott.created_at - time::Duration::hours(1))
            .execute(&mut *unit)
            .await?;
        sqlx::query(
            "INSERT INTO mobile_one_time_tokens (token_hash, state_hash, code_challenge, user_id, org_id, project_id, \
             auth_time, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&ott.token_hash.0[..])
        .bind(&ott.state_hash.0[..])
        .bind(&ott.code_challenge)
        .bind(ott.user_id.0)
        .bind(ott.org_id.0)
        .bind(ott.project_id.0)
        .bind(ott.auth_time)
        .bind(ott.created_at)
        .bind(ott.expires_at)
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
            "UPDATE mobile_one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL RETURNING *",
        )
        .bind(now)
        .bind(&token_hash.0[..])
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
        row.as_ref().map(ott_from).transpose()
    }

    // The family's org scope admits every row: sessions carry no row-level security, the
    // `session.created` event has no org (anyone may write one), and the exchange event and
    // the family's rows belong to that org.
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
        let mut unit = self.unit(Scope::Platform).await?;
        let org: Option<uuid::Uuid> =
            sqlx::query_scalar("SELECT org_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(&token_hash.0[..])
                .fetch_optional(&mut *unit)
                .await?;
        unit.commit().await?;
        Ok(org.map(OrgId))
    }

    async fn refresh_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RefreshTokenState>> {
        let mut unit = self.unit(Scope::Platform).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            token_cols!(),
            ", ",
            family_cols!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
              WHERE t.token_hash = $1"
        ))
        .bind(&token_hash.0[..])
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
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
        let mut unit = self.unit(Scope::User(user_id)).await?;
        let row = sqlx::query(
            "SELECT p.org_id, p.id FROM memberships m JOIN orgs o ON o.id = m.org_id \
             JOIN projects p ON p.org_id = m.org_id AND p.is_default \
             WHERE m.user_id = $1 AND m.deleted_at IS NULL AND o.deleted_at IS NULL \
             ORDER BY m.created_at, m.org_id LIMIT 1",
        )
        .bind(user_id.0)
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
        row.map(|r| Ok((OrgId(r.try_get(0)?), ProjectId(r.try_get(1)?))))
            .transpose()
    }
}
