//! The outbox on PostgreSQL: rows a unit queued (in the org's row-level security context),
//! and the delivery worker's read (in the platform's: it serves every org).

use async_trait::async_trait;
use portcullis_core::{AuditEvent, OutboxEvent, Timestamp};
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
