//! The audit trail: written with the change it describes, read newest first.

use portcullis_core::{AuditEvent, AuditQuery, OrgAccess};

use super::SqliteStore;
use super::rows::{audit_from, micros};
use super::sessions::oversight_binds;
use crate::StoreResult;
use crate::unit::Scope;
use sqlx::sqlite::SqliteConnection;

pub(super) async fn record_audit(store: &SqliteStore, event: &AuditEvent) -> StoreResult<()> {
    let scope = event.org_id.map_or(Scope::Nobody, Scope::Org);
    let mut unit = store.unit(scope).await?;
    unit.audit(event.clone());
    unit.commit().await?;
    Ok(())
}

async fn query_audit(
    store: &SqliteStore,
    access: &OrgAccess,
    q: &AuditQuery,
) -> StoreResult<Vec<AuditEvent>> {
    // Events outside any org (sign-ins, sessions) only of members the caller oversees.
    let (everyone, viewer, domains) = oversight_binds(&q.oversight);
    let rows = sqlx::query(
        "SELECT id, org_id, at, actor_id, actor_key, action, target, outcome, ip, user_agent, correlation_id, details \
         FROM audit_events e \
         WHERE (e.org_id = ?1 OR (e.org_id IS NULL AND e.actor_id IN \
                (SELECT m.user_id FROM memberships m JOIN users u ON u.id = m.user_id \
                 WHERE m.org_id = ?1 AND m.deleted_at IS NULL \
                   AND (?9 OR u.id = ?11 OR substr(u.email, instr(u.email, '@') + 1) IN (SELECT value FROM json_each(?10)))))) \
           AND (?2 IS NULL OR e.correlation_id = ?2) \
           AND (?3 IS NULL OR e.action = ?3) \
           AND (?4 IS NULL OR e.actor_id = ?4) \
           AND (?5 IS NULL OR e.at >= ?5) \
           AND (?6 IS NULL OR e.at < ?6) \
           AND (?7 IS NULL OR e.id < ?7) \
           AND (?12 IS NULL OR e.actor_key = ?12) \
         ORDER BY e.id DESC LIMIT ?8",
    )
    .bind(access.org_id().0)
    .bind(&q.correlation_id)
    .bind(&q.action)
    .bind(q.actor_id.map(|a| a.0))
    .bind(q.since.map(micros))
    .bind(q.until.map(micros))
    .bind(q.before.map(|b| b.0))
    .bind(q.limit as i64)
    .bind(everyone)
    .bind(domains)
    .bind(viewer)
    .bind(&q.actor_key)
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(audit_from).collect()
}

/// One event of the trail; units insert the events they hold back just before committing.
pub(super) async fn insert_audit(conn: &mut SqliteConnection, e: &AuditEvent) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_events (id, org_id, at, actor_id, actor_key, action, target, outcome, ip, user_agent, correlation_id, details) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(e.id.0)
    .bind(e.org_id.map(|o| o.0))
    .bind(micros(e.at))
    .bind(e.actor_id.map(|u| u.0))
    .bind(&e.actor_key)
    .bind(&e.action)
    .bind(&e.target)
    .bind(e.outcome.as_str())
    .bind(&e.ip)
    .bind(&e.user_agent)
    .bind(&e.correlation_id)
    .bind(e.details.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// The org handle's calls, bound to the SQL above.
#[async_trait::async_trait]
impl crate::audit::ByAccess for SqliteStore {
    async fn query_audit(
        &self,
        access: &OrgAccess,
        q: &portcullis_core::AuditQuery,
    ) -> StoreResult<Vec<portcullis_core::AuditEvent>> {
        query_audit(self, access, q).await
    }
}
