//! Web and device sessions: created, resolved, slid, listed and revoked.

use portcullis_core::{
    AuditContext, AuditEvent, Email, OrgAccess, Oversight, Session, SessionId, Timestamp,
    TokenHash, UserId,
};
use sqlx::Row;
use uuid::Uuid;

use super::PgStore;
use super::rows::{session_cols, session_from, user_cols, user_from};
use super::statements::{end_session, insert_session};
use crate::unit::Scope;
use crate::{Change, MemberSession, SessionWithUser, StoreResult};

pub(super) async fn create_session(
    store: &PgStore,
    s: &Session,
    ctx: &AuditContext,
    also: &[AuditEvent],
) -> StoreResult<()> {
    let mut unit = store.unit(Scope::User(s.user_id)).await?;
    insert_session(&mut unit, s, ctx).await?;
    for e in also {
        unit.audit(e.clone());
    }
    unit.commit().await?;
    Ok(())
}

/// The hot path: sessions and users are not tenant-owned, so one query, no transaction.
pub(super) async fn session_by_token(
    store: &PgStore,
    hash: &TokenHash,
) -> StoreResult<Option<SessionWithUser>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        session_cols!(),
        ", ",
        user_cols!(),
        " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND u.deleted_at IS NULL"
    ))
    .bind(&hash.0[..])
    .fetch_optional(&store.pool)
    .await?;
    row.map(|r| {
        Ok(SessionWithUser {
            session: session_from(&r)?,
            user: user_from(&r)?,
        })
    })
    .transpose()
}

pub(super) async fn touch_session(
    store: &PgStore,
    id: SessionId,
    last_seen_at: Timestamp,
    expires_at: Timestamp,
) -> StoreResult<()> {
    // Not audited, and no cache must forget anything but this session's entry, which
    // the caller drops itself.
    let mut unit = store.unit(Scope::Nobody).await?;
    sqlx::query(
        "UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(last_seen_at)
    .bind(expires_at)
    .bind(id.0)
    .execute(&mut *unit)
    .await?;
    unit.commit().await
}

pub(super) async fn list_user_sessions(
    store: &PgStore,
    user_id: UserId,
    now: Timestamp,
) -> StoreResult<Vec<Session>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        session_cols!(),
        " FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
         ORDER BY s.created_at DESC"
    ))
    .bind(user_id.0)
    .bind(now)
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(session_from).collect()
}

pub(super) async fn revoke_user_session(
    store: &PgStore,
    user_id: UserId,
    id: SessionId,
    ctx: &AuditContext,
) -> StoreResult<bool> {
    let mut unit = store.unit(Scope::User(user_id)).await?;
    if !end_session(&mut unit, ctx, user_id, id, portcullis_core::now()).await? {
        return Ok(false);
    }
    unit.commit().await?;
    Ok(true)
}

async fn list_org_sessions(
    store: &PgStore,
    access: &OrgAccess,
    now: Timestamp,
    oversight: &Oversight,
) -> StoreResult<Vec<MemberSession>> {
    let mut unit = store.unit(Scope::Org(access.org_id())).await?;
    // The domain is what follows the one '@' of a stored (lower-case) email, as
    // portcullis_core::oversight::email_domain reads it.
    let rows = sqlx::query(concat!(
        "SELECT ",
        session_cols!(),
        ", u.email AS u_email FROM sessions s \
         JOIN memberships m ON m.user_id = s.user_id AND m.org_id = $1 AND m.deleted_at IS NULL \
         JOIN users u ON u.id = s.user_id \
         WHERE s.revoked_at IS NULL AND s.expires_at > $2 \
           AND ($3 OR u.id = $5 OR split_part(u.email, '@', 2) = ANY($4)) \
         ORDER BY s.created_at DESC"
    ))
    .bind(access.org_id().0)
    .bind(now)
    .bind(oversight.is_everyone())
    .bind(oversight.domains())
    .bind(oversight.viewer().map(|v| v.0))
    .fetch_all(&mut *unit)
    .await?;
    unit.commit().await?;
    rows.iter()
        .map(|r| {
            let session = session_from(r)?;
            Ok(MemberSession {
                user_id: session.user_id,
                email: Email::parse(r.try_get::<&str, _>("u_email")?)?,
                session,
            })
        })
        .collect()
}

async fn revoke_org_session(
    store: &PgStore,
    access: &OrgAccess,
    id: SessionId,
    oversight: &Oversight,
    ctx: &AuditContext,
) -> StoreResult<bool> {
    let org_id = access.org_id();
    let now = portcullis_core::now();
    let mut unit = store.unit(Scope::Org(org_id)).await?;
    let owner: Option<Uuid> = sqlx::query_scalar(
        "UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL \
         AND user_id IN (SELECT m.user_id FROM memberships m JOIN users u ON u.id = m.user_id \
           WHERE m.org_id = $3 AND m.deleted_at IS NULL \
             AND ($4 OR u.id = $6 OR split_part(u.email, '@', 2) = ANY($5))) \
         RETURNING user_id",
    )
    .bind(now)
    .bind(id.0)
    .bind(org_id.0)
    .bind(oversight.is_everyone())
    .bind(oversight.domains())
    .bind(oversight.viewer().map(|v| v.0))
    .fetch_optional(&mut *unit)
    .await?;
    let Some(owner) = owner else { return Ok(false) };
    super::grants::end_session_families(&mut unit, id, now).await?;
    unit.audit(crate::events::session_revoked(
        ctx,
        Some(org_id),
        UserId(owner),
        id,
    ));
    unit.changed(Change::SessionRevoked(id));
    unit.commit().await?;
    Ok(true)
}

/// The org handle's calls, bound to the SQL above.
#[async_trait::async_trait]
impl crate::sessions::ByAccess for PgStore {
    async fn list_org_sessions(
        &self,
        access: &OrgAccess,
        now: portcullis_core::Timestamp,
        oversight: &portcullis_core::Oversight,
    ) -> StoreResult<Vec<crate::MemberSession>> {
        list_org_sessions(self, access, now, oversight).await
    }

    async fn revoke_org_session(
        &self,
        access: &OrgAccess,
        id: portcullis_core::SessionId,
        oversight: &portcullis_core::Oversight,
        ctx: &portcullis_core::AuditContext,
    ) -> StoreResult<bool> {
        revoke_org_session(self, access, id, oversight, ctx).await
    }
}
