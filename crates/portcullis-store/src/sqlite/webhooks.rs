//! Webhooks on SQLite: endpoints in their org's scope, and the delivery worker's fan-out,
//! claims and attempts. One server process owns the file and every write is a unit on the
//! one writer connection, so a claim is a plain `UPDATE … RETURNING`: no other node competes.

use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::webhook::{
    DeliveryId, DeliveryStatus, Subscription, WebhookId, failing_cutoff,
};
use portcullis_core::{Action, AuditContext, OrgAccess, OrgId, ProjectId, Timestamp};
use serde_json::json;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use super::SqliteStore;
use super::rows::{from_micros, micros, opt_micros, outbox_cols, outbox_from};
use super::unit::Unit;
use crate::unit::Scope;
use crate::webhooks::{
    Attempt, Backlog, ByProjectAccess, Claimed, DISABLED_FAILING, Delivery, DeliveryLog,
    DeliveryQuery, EndpointPatch, NextStep, Purged, Recorded, SealedSecrets, WebhookEndpoint,
    WebhookStore, created_event, deliveries_for, disabled_event, error_class, event, to_u16,
};
use crate::{StoreError, StoreResult};

macro_rules! endpoint_cols {
    () => {
        "e.id, e.org_id, e.project_id, e.url, e.description, e.events, e.enabled, \
         e.failing_since, e.disabled_reason, e.previous_secret_expires_at, e.created_at, \
         e.updated_at"
    };
}

macro_rules! delivery_cols {
    () => {
        "d.id, d.endpoint_id, d.event_id, d.event_type, d.body, d.created_at, d.status, \
         d.attempts, d.next_attempt_at, d.last_status, d.finished_at"
    };
}

fn endpoint_from(row: &SqliteRow) -> StoreResult<WebhookEndpoint> {
    let events: String = row.try_get("events")?;
    let events: Vec<String> = serde_json::from_str(&events)
        .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?;
    Ok(WebhookEndpoint {
        id: WebhookId(row.try_get("id")?),
        org_id: OrgId(row.try_get("org_id")?),
        project_id: ProjectId(row.try_get("project_id")?),
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        events: Subscription::from_stored(events),
        enabled: row.try_get("enabled")?,
        failing_since: opt_micros(row.try_get("failing_since")?)?,
        disabled_reason: row.try_get("disabled_reason")?,
        previous_secret_expires_at: opt_micros(row.try_get("previous_secret_expires_at")?)?,
        created_at: from_micros(row.try_get("created_at")?)?,
        updated_at: from_micros(row.try_get("updated_at")?)?,
    })
}

fn delivery_from(row: &SqliteRow) -> StoreResult<Delivery> {
    let attempts: i64 = row.try_get("attempts")?;
    Ok(Delivery {
        id: DeliveryId(row.try_get("id")?),
        endpoint_id: WebhookId(row.try_get("endpoint_id")?),
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        body: row.try_get("body")?,
        created_at: from_micros(row.try_get("created_at")?)?,
        status: DeliveryStatus::parse(row.try_get("status")?)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("delivery attempts {attempts}")))?,
        next_attempt_at: from_micros(row.try_get("next_attempt_at")?)?,
        last_status: to_u16(row.try_get("last_status")?),
        finished_at: opt_micros(row.try_get("finished_at")?)?,
    })
}

fn attempt_from(row: &SqliteRow) -> StoreResult<Attempt> {
    let duration: i64 = row.try_get("duration_ms")?;
    Ok(Attempt {
        at: from_micros(row.try_get("at")?)?,
        status_code: to_u16(row.try_get("status_code")?),
        duration_ms: u64::try_from(duration).unwrap_or(0),
        response: row.try_get("response")?,
        error_class: error_class(row.try_get::<Option<String>, _>("error_class")?.as_deref()),
    })
}

/// The live endpoint of the project in the caller's org, read inside a unit.
async fn live_endpoint(
    unit: &mut Unit<'_>,
    access: &OrgAccess,
    project: ProjectId,
    id: WebhookId,
) -> StoreResult<WebhookEndpoint> {
    let row = sqlx::query(concat!(
        "SELECT ",
        endpoint_cols!(),
        " FROM webhook_endpoints e \
         WHERE e.id = ? AND e.project_id = ? AND e.org_id = ? AND e.deleted_at IS NULL"
    ))
    .bind(id.0)
    .bind(project.0)
    .bind(access.org_id().0)
    .fetch_optional(&mut **unit)
    .await?
    .ok_or(StoreError::NotFound)?;
    endpoint_from(&row)
}

fn events_json(s: &Subscription) -> String {
    serde_json::Value::from(s.names().to_vec()).to_string()
}

#[async_trait]
impl ByProjectAccess for SqliteStore {
    async fn create_endpoint(
        &self,
        access: &OrgAccess,
        e: &WebhookEndpoint,
        secret_sealed: &[u8],
        max: u32,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        if e.org_id != access.org_id() {
            return Err(StoreError::NotFound);
        }
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        // The unit holds SQLite's one writer, so the count holds until the insert.
        let existing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_endpoints WHERE project_id = ? AND deleted_at IS NULL",
        )
        .bind(e.project_id.0)
        .fetch_one(&mut *unit)
        .await?;
        if existing >= i64::from(max) {
            return Err(crate::webhooks::too_many_endpoints(max));
        }
        let n = sqlx::query(
            "INSERT INTO webhook_endpoints (id, org_id, project_id, url, description, events, \
             enabled, secret_sealed, created_at, updated_at) \
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
             WHERE EXISTS (SELECT 1 FROM projects WHERE id = ? AND org_id = ?)",
        )
        .bind(e.id.0)
        .bind(e.org_id.0)
        .bind(e.project_id.0)
        .bind(&e.url)
        .bind(&e.description)
        .bind(events_json(&e.events))
        .bind(e.enabled)
        .bind(secret_sealed)
        .bind(micros(e.created_at))
        .bind(micros(e.updated_at))
        .bind(e.project_id.0)
        .bind(e.org_id.0)
        .execute(&mut *unit)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        unit.audit(created_event(ctx, e));
        unit.commit().await
    }

    async fn list_endpoints(
        &self,
        access: &OrgAccess,
        project: ProjectId,
    ) -> StoreResult<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            endpoint_cols!(),
            " FROM webhook_endpoints e \
             WHERE e.project_id = ? AND e.org_id = ? AND e.deleted_at IS NULL ORDER BY e.id"
        ))
        .bind(project.0)
        .bind(access.org_id().0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint_from).collect()
    }

    async fn endpoint(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            endpoint_cols!(),
            " FROM webhook_endpoints e \
             WHERE e.id = ? AND e.project_id = ? AND e.org_id = ? AND e.deleted_at IS NULL"
        ))
        .bind(id.0)
        .bind(project.0)
        .bind(access.org_id().0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(endpoint_from).transpose()
    }

    async fn update_endpoint(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        patch: &EndpointPatch,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<WebhookEndpoint> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let mut e = live_endpoint(&mut unit, access, project, id).await?;
        patch.apply(&mut e, now);
        sqlx::query(
            "UPDATE webhook_endpoints SET url = ?, events = ?, description = ?, enabled = ?, \
             failing_since = ?, disabled_reason = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&e.url)
        .bind(events_json(&e.events))
        .bind(&e.description)
        .bind(e.enabled)
        .bind(e.failing_since.map(micros))
        .bind(&e.disabled_reason)
        .bind(micros(now))
        .bind(id.0)
        .execute(&mut *unit)
        .await?;
        if e.enabled {
            // Its pending deliveries may be due again (enabled after being disabled).
            unit.webhooks_due();
        }
        unit.audit(event(
            ctx,
            e.org_id,
            Action::WebhookUpdated,
            id,
            json!({"project_id": project, "changed": patch.changed()}),
        ));
        unit.commit().await?;
        Ok(e)
    }

    async fn delete_endpoint(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let n = sqlx::query(
            "UPDATE webhook_endpoints SET deleted_at = ?, enabled = 0, updated_at = ? \
             WHERE id = ? AND project_id = ? AND org_id = ? AND deleted_at IS NULL",
        )
        .bind(micros(now))
        .bind(micros(now))
        .bind(id.0)
        .bind(project.0)
        .bind(access.org_id().0)
        .execute(&mut *unit)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        unit.audit(event(
            ctx,
            access.org_id(),
            Action::WebhookDeleted,
            id,
            json!({"project_id": project}),
        ));
        unit.commit().await?;
        Ok(true)
    }

    async fn rotate_secret(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        secret_sealed: &[u8],
        previous_until: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<WebhookEndpoint> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let mut e = live_endpoint(&mut unit, access, project, id).await?;
        sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret_sealed = secret_sealed, \
             secret_sealed = ?, previous_secret_expires_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(secret_sealed)
        .bind(micros(previous_until))
        .bind(micros(portcullis_core::now()))
        .bind(id.0)
        .execute(&mut *unit)
        .await?;
        e.previous_secret_expires_at = Some(previous_until);
        unit.audit(event(
            ctx,
            e.org_id,
            Action::WebhookSecretRotated,
            id,
            json!({"project_id": project, "previous_expires_at": previous_until.unix_timestamp()}),
        ));
        unit.commit().await?;
        Ok(e)
    }

    async fn enqueue_test(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        body: &str,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<Delivery> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let e = live_endpoint(&mut unit, access, project, id).await?;
        let d = Delivery {
            id: DeliveryId::new(),
            endpoint_id: id,
            event_id: Uuid::now_v7(),
            event_type: portcullis_core::webhook::TEST_EVENT.into(),
            body: body.to_owned(),
            created_at: now,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_status: None,
            finished_at: None,
        };
        insert_delivery(&mut unit, e.org_id, &d).await?;
        unit.webhooks_due();
        unit.audit(event(
            ctx,
            e.org_id,
            Action::WebhookTested,
            id,
            json!({"project_id": project, "delivery_id": d.id}),
        ));
        unit.commit().await?;
        Ok(d)
    }

    async fn deliveries(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        q: &DeliveryQuery,
    ) -> StoreResult<Vec<DeliveryLog>> {
        if self.endpoint(access, project, id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_cols!(),
            " FROM webhook_deliveries d \
             WHERE d.endpoint_id = ? AND d.org_id = ? \
               AND (? IS NULL OR d.status = ?) AND (? IS NULL OR d.event_type = ?) \
               AND (? IS NULL OR d.created_at >= ?) AND (? IS NULL OR d.id < ?) \
             ORDER BY d.id DESC LIMIT ?"
        ))
        .bind(id.0)
        .bind(access.org_id().0)
        .bind(q.status.map(|s| s.as_str()))
        .bind(q.status.map(|s| s.as_str()))
        .bind(q.event_type.as_deref())
        .bind(q.event_type.as_deref())
        .bind(q.since.map(micros))
        .bind(q.since.map(micros))
        .bind(q.cursor.map(|c| c.0))
        .bind(q.cursor.map(|c| c.0))
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = delivery_from(row)?;
            let attempts = sqlx::query(
                "SELECT at, status_code, duration_ms, response, error_class \
                 FROM webhook_attempts WHERE delivery_id = ? AND org_id = ? ORDER BY at, id",
            )
            .bind(delivery.id.0)
            .bind(access.org_id().0)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(attempt_from)
            .collect::<StoreResult<Vec<_>>>()?;
            out.push(DeliveryLog { delivery, attempts });
        }
        Ok(out)
    }

    async fn retry_delivery(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        live_endpoint(&mut unit, access, project, id).await?;
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, \
             finished_at = NULL WHERE id = ? AND endpoint_id = ? AND org_id = ?",
        )
        .bind(micros(now))
        .bind(delivery.0)
        .bind(id.0)
        .bind(access.org_id().0)
        .execute(&mut *unit)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        unit.webhooks_due();
        unit.audit(event(
            ctx,
            access.org_id(),
            Action::WebhookRetried,
            id,
            json!({"project_id": project, "delivery_id": delivery}),
        ));
        unit.commit().await?;
        Ok(true)
    }

    async fn recover(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        since: Timestamp,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<u64> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        live_endpoint(&mut unit, access, project, id).await?;
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, \
             finished_at = NULL \
             WHERE endpoint_id = ? AND org_id = ? AND status = 'failed' AND created_at >= ?",
        )
        .bind(micros(now))
        .bind(id.0)
        .bind(access.org_id().0)
        .bind(micros(since))
        .execute(&mut *unit)
        .await?
        .rows_affected();
        if n > 0 {
            unit.webhooks_due();
        }
        unit.audit(event(
            ctx,
            access.org_id(),
            Action::WebhookRecovered,
            id,
            json!({"project_id": project, "since": since.unix_timestamp(), "count": n}),
        ));
        unit.commit().await?;
        Ok(n)
    }
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn fan_out(&self, now: Timestamp, limit: u32) -> StoreResult<u32> {
        // The idle worker asks often: look on a reader first, so that an empty outbox never
        // takes the one writer connection from the requests queued on it.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM outbox_events WHERE delivered_at IS NULL AND next_attempt_at <= ? LIMIT 1",
        )
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(0);
        }
        let mut unit = self.unit(Scope::Platform).await?;
        let events = sqlx::query(concat!(
            "SELECT ",
            outbox_cols!(),
            " FROM outbox_events o WHERE o.delivered_at IS NULL AND o.next_attempt_at <= ? \
              ORDER BY o.next_attempt_at, o.id LIMIT ?"
        ))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *unit)
        .await?
        .iter()
        .map(outbox_from)
        .collect::<StoreResult<Vec<_>>>()?;
        let mut endpoints: Vec<(OrgId, Vec<WebhookEndpoint>)> = Vec::new();
        for record in &events {
            let org = record.event.org_id;
            if !endpoints.iter().any(|(o, _)| *o == org) {
                let list = sqlx::query(concat!(
                    "SELECT ",
                    endpoint_cols!(),
                    " FROM webhook_endpoints e \
                     WHERE e.org_id = ? AND e.enabled = 1 AND e.deleted_at IS NULL"
                ))
                .bind(org.0)
                .fetch_all(&mut *unit)
                .await?
                .iter()
                .map(endpoint_from)
                .collect::<StoreResult<Vec<_>>>()?;
                endpoints.push((org, list));
            }
            let subscribed = endpoints
                .iter()
                .find(|(o, _)| *o == org)
                .map(|(_, l)| l.as_slice())
                .unwrap_or_default();
            for d in deliveries_for(record, subscribed, now) {
                insert_delivery(&mut unit, org, &d).await?;
            }
            sqlx::query("UPDATE outbox_events SET delivered_at = ? WHERE id = ?")
                .bind(micros(now))
                .bind(record.id)
                .execute(&mut *unit)
                .await?;
        }
        unit.commit().await?;
        Ok(u32::try_from(events.len()).unwrap_or(u32::MAX))
    }

    async fn claim(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Claimed>> {
        // As in `fan_out`: nothing due, no write transaction.
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= ? \
               AND (d.lease_until IS NULL OR d.lease_until <= ?) \
               AND e.enabled = 1 AND e.deleted_at IS NULL LIMIT 1",
        )
        .bind(micros(now))
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut unit = self.unit(Scope::Platform).await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ? \
             WHERE id IN (SELECT d.id FROM webhook_deliveries d \
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= ? \
                   AND (d.lease_until IS NULL OR d.lease_until <= ?) \
                   AND e.enabled = 1 AND e.deleted_at IS NULL \
                 ORDER BY d.next_attempt_at, d.id LIMIT ?) \
             RETURNING id",
        )
        .bind(owner)
        .bind(micros(lease_until))
        .bind(micros(now))
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *unit)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(concat!(
                "SELECT ",
                delivery_cols!(),
                ", d.org_id AS d_org_id, e.url AS e_url, e.secret_sealed, \
                 CASE WHEN e.previous_secret_expires_at > ? THEN e.previous_secret_sealed END \
                   AS previous_sealed \
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.id = ?"
            ))
            .bind(micros(now))
            .bind(id)
            .fetch_one(&mut *unit)
            .await?;
            out.push(Claimed {
                delivery: delivery_from(&row)?,
                org_id: OrgId(row.try_get("d_org_id")?),
                url: row.try_get("e_url")?,
                secrets: SealedSecrets {
                    current: row.try_get("secret_sealed")?,
                    previous: row.try_get("previous_sealed")?,
                },
            });
        }
        unit.commit().await?;
        out.sort_by_key(|c| (c.delivery.next_attempt_at, c.delivery.id));
        Ok(out)
    }

    async fn record_attempt(
        &self,
        owner: &str,
        claimed: &Claimed,
        attempt: &Attempt,
        next: NextStep,
        disable_after: Duration,
    ) -> StoreResult<Recorded> {
        let d = &claimed.delivery;
        let mut unit = self.unit(Scope::Platform).await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (id, org_id, delivery_id, at, status_code, duration_ms, \
             response, error_class) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(Uuid::now_v7())
        .bind(claimed.org_id.0)
        .bind(d.id.0)
        .bind(micros(attempt.at))
        .bind(attempt.status_code.map(i64::from))
        .bind(i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX))
        .bind(&attempt.response)
        .bind(attempt.error_class.map(|c| c.as_str()))
        .execute(&mut *unit)
        .await?;
        let settled = next.settle(attempt.at);
        let (status, next_at, finished) = (
            settled.status.as_str(),
            settled.next_attempt_at,
            settled.finished_at,
        );
        let held = sqlx::query(
            "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, \
             next_attempt_at = ?, last_status = ?, finished_at = ?, lease_owner = NULL, \
             lease_until = NULL WHERE id = ? AND lease_owner = ?",
        )
        .bind(status)
        .bind(micros(next_at))
        .bind(attempt.status_code.map(i64::from))
        .bind(finished.map(micros))
        .bind(d.id.0)
        .bind(owner)
        .execute(&mut *unit)
        .await?
        .rows_affected()
            > 0;
        let mut disabled = false;
        if next == NextStep::Succeeded {
            sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ?")
                .bind(d.endpoint_id.0)
                .execute(&mut *unit)
                .await?;
        } else {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, ?) \
                 WHERE id = ?",
            )
            .bind(micros(attempt.at))
            .bind(d.endpoint_id.0)
            .execute(&mut *unit)
            .await?;
            let cutoff = failing_cutoff(attempt.at, disable_after);
            let since: Option<i64> = sqlx::query_scalar(
                "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? \
                 WHERE id = ? AND enabled = 1 AND failing_since IS NOT NULL \
                   AND failing_since <= ? RETURNING failing_since",
            )
            .bind(DISABLED_FAILING)
            .bind(micros(attempt.at))
            .bind(d.endpoint_id.0)
            .bind(micros(cutoff))
            .fetch_optional(&mut *unit)
            .await?
            .flatten();
            if let Some(since) = since {
                disabled = true;
                unit.audit(disabled_event(
                    claimed.org_id,
                    d.endpoint_id,
                    from_micros(since)?,
                ));
            }
        }
        unit.commit().await?;
        Ok(Recorded { held, disabled })
    }

    async fn release(&self, owner: &str, ids: &[DeliveryId]) -> StoreResult<()> {
        let mut unit = self.unit(Scope::Platform).await?;
        for id in ids {
            sqlx::query(
                "UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL \
                 WHERE id = ? AND lease_owner = ?",
            )
            .bind(id.0)
            .bind(owner)
            .execute(&mut *unit)
            .await?;
        }
        unit.commit().await
    }

    async fn purge(&self, before: Timestamp, limit: u32) -> StoreResult<Purged> {
        // One write transaction holds SQLite's one writer: the batch is the same set in
        // each statement.
        let mut unit = self.unit(Scope::Platform).await?;
        let events = sqlx::query(
            "DELETE FROM outbox_events WHERE id IN (SELECT id FROM outbox_events \
             WHERE delivered_at IS NOT NULL AND delivered_at < ? LIMIT ?)",
        )
        .bind(micros(before))
        .bind(i64::from(limit))
        .execute(&mut *unit)
        .await?
        .rows_affected();
        let batch = "SELECT id FROM webhook_deliveries WHERE status IN ('succeeded', 'failed') \
                     AND finished_at < ? ORDER BY id LIMIT ?";
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM webhook_attempts WHERE delivery_id IN ({batch})"
        )))
        .bind(micros(before))
        .bind(i64::from(limit))
        .execute(&mut *unit)
        .await?;
        let deliveries = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM webhook_deliveries WHERE id IN ({batch})"
        )))
        .bind(micros(before))
        .bind(i64::from(limit))
        .execute(&mut *unit)
        .await?
        .rows_affected();
        unit.commit().await?;
        Ok(Purged { events, deliveries })
    }

    async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(t) FROM ( \
               SELECT MIN(MAX(d.next_attempt_at, COALESCE(d.lease_until, d.next_attempt_at))) AS t \
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                WHERE d.status = 'pending' AND e.enabled = 1 AND e.deleted_at IS NULL \
               UNION ALL \
               SELECT MIN(next_attempt_at) FROM outbox_events WHERE delivered_at IS NULL)",
        )
        .fetch_one(&self.pool)
        .await?;
        opt_micros(next)
    }

    async fn backlog(&self, now: Timestamp) -> StoreResult<Backlog> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM webhook_deliveries d JOIN webhook_endpoints e \
                  ON e.id = d.endpoint_id \
                WHERE d.status = 'pending' AND e.enabled = 1 AND e.deleted_at IS NULL) AS pending, \
               (SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL) AS unfanned, \
               (SELECT MIN(t) FROM ( \
                  SELECT MIN(d.next_attempt_at) AS t FROM webhook_deliveries d \
                    JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                   WHERE d.status = 'pending' AND d.next_attempt_at <= ? \
                     AND e.enabled = 1 AND e.deleted_at IS NULL \
                  UNION ALL \
                  SELECT MIN(next_attempt_at) FROM outbox_events \
                   WHERE delivered_at IS NULL AND next_attempt_at <= ?)) AS oldest",
        )
        .bind(micros(now))
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await?;
        let pending: i64 = row.try_get("pending")?;
        let unfanned: i64 = row.try_get("unfanned")?;
        Ok(Backlog {
            pending: u64::try_from(pending).unwrap_or(0),
            unfanned: u64::try_from(unfanned).unwrap_or(0),
            oldest_due: opt_micros(row.try_get("oldest")?)?,
        })
    }

    async fn troubled_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            endpoint_cols!(),
            " FROM webhook_endpoints e WHERE e.deleted_at IS NULL \
              AND (e.failing_since IS NOT NULL OR e.disabled_reason IS NOT NULL) ORDER BY e.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(endpoint_from).collect()
    }
}

async fn insert_delivery(unit: &mut Unit<'_>, org: OrgId, d: &Delivery) -> StoreResult<()> {
    // A second fan-out of one event (it cannot happen: the event is marked in the same
    // transaction) would find the delivery there and add nothing.
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, event_type, body, \
         created_at, status, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?) \
         ON CONFLICT (event_id, endpoint_id) DO NOTHING",
    )
    .bind(d.id.0)
    .bind(org.0)
    .bind(d.endpoint_id.0)
    .bind(d.event_id)
    .bind(&d.event_type)
    .bind(&d.body)
    .bind(micros(d.created_at))
    .bind(d.status.as_str())
    .bind(micros(d.next_attempt_at))
    .execute(&mut **unit)
    .await?;
    Ok(())
}
