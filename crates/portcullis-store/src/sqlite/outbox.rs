//! The outbox on SQLite: rows a unit queued, and the delivery worker's read.

use async_trait::async_trait;
use portcullis_core::oversight::is_managed;
use portcullis_core::{AuditEvent, Email, OrgId, OutboxEvent, Timestamp, UserId};
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;
use uuid::Uuid;

use super::SqliteStore;
use super::rows::{micros, outbox_cols, outbox_from};
use crate::StoreResult;
use crate::outbox::{OutboxRecord, OutboxStore};
use crate::unit::{Queued, Scope};

/// One queued row; units insert what they queued just before committing.
pub(super) async fn insert_outbox(conn: &mut SqliteConnection, q: &Queued) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox_events (id, org_id, project_id, event_type, payload, created_at, next_attempt_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(q.id)
    .bind(q.event.org_id.0)
    .bind(q.event.project_id.map(|p| p.0))
    .bind(&q.event.event_type)
    .bind(q.event.payload.to_string())
    .bind(micros(q.created_at))
    .bind(micros(q.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The orgs that manage `user`: active memberships in orgs with a verified domain equal to the
/// user's email's ([`is_managed`], the rule the members list and org sessions use).
pub(super) async fn managed_orgs(
    conn: &mut SqliteConnection,
    user: UserId,
) -> StoreResult<Vec<OrgId>> {
    let rows = sqlx::query(
        "SELECT m.org_id, d.domain, u.email FROM memberships m \
         JOIN users u ON u.id = m.user_id \
         JOIN org_domains d ON d.org_id = m.org_id AND d.status = 'verified' \
         WHERE m.user_id = ? AND m.deleted_at IS NULL",
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
impl OutboxStore for SqliteStore {
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
        let rows = sqlx::query(concat!(
            "SELECT ",
            outbox_cols!(),
            " FROM outbox_events o WHERE o.delivered_at IS NULL AND o.next_attempt_at <= ? \
              ORDER BY o.next_attempt_at, o.id LIMIT ?"
        ))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox_from).collect()
    }
}
