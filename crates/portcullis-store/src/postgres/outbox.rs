//! The outbox on PostgreSQL: rows a unit queued (in the org's row-level security context),
//! and the delivery worker's read (in the platform's: it serves every org).

use async_trait::async_trait;
use portcullis_core::oversight::is_managed;
use portcullis_core::{AuditEvent, Email, OrgId, OutboxEvent, Timestamp, UserId};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

use super::PgStore;
use super::rows::{outbox_cols, outbox_from};
use crate::StoreResult;
use crate::outbox::{OutboxRecord, OutboxStore};
use crate::unit::{Queued, Scope};

/// One queued row; units insert what they queued just before committing.
pub(super) async fn insert_outbox(conn: &mut PgConnection, q: &Queued) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox_events (id, org_id, project_id, event_type, payload, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(q.id)
    .bind(q.event.org_id.0)
    .bind(q.event.project_id.map(|p| p.0))
    .bind(&q.event.event_type)
    .bind(&q.event.payload)
    .bind(q.created_at)
    .bind(q.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The orgs that manage `user`: active memberships in orgs with a verified domain equal to the
/// user's email's ([`is_managed`], the rule the members list and org sessions use).
/// Runs in the platform's context (set by the caller): the user's orgs are not the unit's.
pub(super) async fn managed_orgs(conn: &mut PgConnection, user: UserId) -> StoreResult<Vec<OrgId>> {
    let rows = sqlx::query(
        "SELECT m.org_id, d.domain, u.email FROM memberships m \
         JOIN users u ON u.id = m.user_id \
         JOIN org_domains d ON d.org_id = m.org_id AND d.status = 'verified' \
         WHERE m.user_id = $1 AND m.deleted_at IS NULL",
    )
    .bind(user.0)
    .fetch_all(conn)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let org = OrgId(r.try_get("org_id")?);
        let domain: String = r.try_get("domain")?;
        let email: String = r.try_get("email")?;
        let managed = Email::parse(&email).is_ok_and(|e| is_managed(&e, &[domain]));
        if managed && !out.contains(&org) {
            out.push(org);
        }
    }
    Ok(out)
}

#[async_trait]
impl OutboxStore for PgStore {
    async fn enqueue(&self, event: &OutboxEvent, also: &[AuditEvent]) -> StoreResult<Uuid> {
        let mut unit = self.unit(Scope::Org(event.org_id)).await?;
        let id = unit.outbox(event.clone());
        for e in also {
            unit.audit(e.clone());
        }
        unit.commit().await?;
        Ok(id)
    }

    async fn due(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<OutboxRecord>> {
        let mut unit = self.unit(Scope::Platform).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            outbox_cols!(),
            " FROM outbox_events o WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $1 \
              ORDER BY o.next_attempt_at, o.id LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *unit)
        .await?;
        unit.commit().await?;
        rows.iter().map(outbox_from).collect()
    }
}
