//! Webhooks on PostgreSQL: endpoints in their org's scope (row-level security checks it
//! again), and the delivery worker's fan-out, claims and attempts in platform scope. Several
//! nodes share the queue: fan-out and claims lock the rows they take with
//! `FOR UPDATE SKIP LOCKED`, so no two nodes take one event or one delivery, and a claim is
//! a lease that a dead node's successor reclaims once it expires.

use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::webhook::{
    DeliveryId, DeliveryStatus, Subscription, WebhookId, failing_cutoff,
};
use portcullis_core::{Action, AuditContext, OrgAccess, OrgId, ProjectId, Timestamp};
use serde_json::json;
use sqlx::Row;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use super::PgStore;
use super::rows::{outbox_cols, outbox_from};
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

fn endpoint_from(row: &PgRow) -> StoreResult<WebhookEndpoint> {
    let events: serde_json::Value = row.try_get("events")?;
    let events: Vec<String> = serde_json::from_value(events)
        .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?;
    Ok(WebhookEndpoint {
        id: WebhookId(row.try_get("id")?),
        org_id: OrgId(row.try_get("org_id")?),
        project_id: ProjectId(row.try_get("project_id")?),
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        events: Subscription::from_stored(events),
        enabled: row.try_get("enabled")?,
        failing_since: row.try_get("failing_since")?,
        disabled_reason: row.try_get("disabled_reason")?,
        previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn delivery_from(row: &PgRow) -> StoreResult<Delivery> {
    let attempts: i32 = row.try_get("attempts")?;
    Ok(Delivery {
        id: DeliveryId(row.try_get("id")?),
        endpoint_id: WebhookId(row.try_get("endpoint_id")?),
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        body: row.try_get("body")?,
        created_at: row.try_get("created_at")?,
        status: DeliveryStatus::parse(row.try_get("status")?)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| StoreError::Corrupt(format!("delivery attempts {attempts}")))?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_status: to_u16(row.try_get::<Option<i32>, _>("last_status")?.map(i64::from)),
        finished_at: row.try_get("finished_at")?,
    })
}

fn attempt_from(row: &PgRow) -> StoreResult<Attempt> {
    let duration: i64 = row.try_get("duration_ms")?;
    Ok(Attempt {
        at: row.try_get("at")?,
        status_code: to_u16(row.try_get::<Option<i32>, _>("status_code")?.map(i64::from)),
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
         WHERE e.id = $1 AND e.project_id = $2 AND e.org_id = $3 AND e.deleted_at IS NULL"
    ))
    .bind(id.0)
    .bind(project.0)
    .bind(access.org_id().0)
    .fetch_optional(&mut **unit)
    .await?
    .ok_or(StoreError::NotFound)?;
    endpoint_from(&row)
}

fn events_json(s: &Subscription) -> serde_json::Value {
    serde_json::Value::from(s.names().to_vec())
}

#[async_trait]
impl ByProjectAccess for PgStore {
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
        // Concurrent creations in one project wait for each other, so the count holds.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
            .bind(e.project_id.0)
            .execute(&mut *unit)
            .await?;
        let existing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM webhook_endpoints WHERE project_id = $1 AND deleted_at IS NULL",
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
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
             WHERE EXISTS (SELECT 1 FROM projects WHERE id = $11 AND org_id = $12)",
        )
        .bind(e.id.0)
        .bind(e.org_id.0)
        .bind(e.project_id.0)
        .bind(&e.url)
        .bind(&e.description)
        .bind(events_json(&e.events))
        .bind(e.enabled)
        .bind(secret_sealed)
        .bind(e.created_at)
        .bind(e.updated_at)
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
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            endpoint_cols!(),
            " FROM webhook_endpoints e \
             WHERE e.project_id = $1 AND e.org_id = $2 AND e.deleted_at IS NULL ORDER BY e.id"
        ))
        .bind(project.0)
        .bind(access.org_id().0)
        .fetch_all(&mut *unit)
        .await?;
        unit.commit().await?;
        rows.iter().map(endpoint_from).collect()
    }

    async fn endpoint(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            endpoint_cols!(),
            " FROM webhook_endpoints e \
             WHERE e.id = $1 AND e.project_id = $2 AND e.org_id = $3 AND e.deleted_at IS NULL"
        ))
        .bind(id.0)
        .bind(project.0)
        .bind(access.org_id().0)
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
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
            "UPDATE webhook_endpoints SET url = $1, events = $2, description = $3, enabled = $4, \
             failing_since = $5, disabled_reason = $6, updated_at = $7 WHERE id = $8",
        )
        .bind(&e.url)
        .bind(events_json(&e.events))
        .bind(&e.description)
        .bind(e.enabled)
        .bind(e.failing_since)
        .bind(&e.disabled_reason)
        .bind(now)
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
            "UPDATE webhook_endpoints SET deleted_at = $1, enabled = false, updated_at = $2 \
             WHERE id = $3 AND project_id = $4 AND org_id = $5 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(now)
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
             secret_sealed = $1, previous_secret_expires_at = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(secret_sealed)
        .bind(previous_until)
        .bind(portcullis_core::now())
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
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_cols!(),
            " FROM webhook_deliveries d \
             WHERE d.endpoint_id = $1 AND d.org_id = $2 \
               AND ($3::text IS NULL OR d.status = $4) AND ($5::text IS NULL OR d.event_type = $6) \
               AND ($7::timestamptz IS NULL OR d.created_at >= $8) \
               AND ($9::uuid IS NULL OR d.id < $10) \
             ORDER BY d.id DESC LIMIT $11"
        ))
        .bind(id.0)
        .bind(access.org_id().0)
        .bind(q.status.map(|s| s.as_str()))
        .bind(q.status.map(|s| s.as_str()))
        .bind(q.event_type.as_deref())
        .bind(q.event_type.as_deref())
        .bind(q.since)
        .bind(q.since)
        .bind(q.cursor.map(|c| c.0))
        .bind(q.cursor.map(|c| c.0))
        .bind(i64::from(q.limit))
        .fetch_all(&mut *unit)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = delivery_from(row)?;
            let attempts = sqlx::query(
                "SELECT at, status_code, duration_ms, response, error_class \
                 FROM webhook_attempts WHERE delivery_id = $1 AND org_id = $2 ORDER BY at, id",
            )
            .bind(delivery.id.0)
            .bind(access.org_id().0)
            .fetch_all(&mut *unit)
            .await?
            .iter()
            .map(attempt_from)
            .collect::<StoreResult<Vec<_>>>()?;
            out.push(DeliveryLog { delivery, attempts });
        }
        unit.commit().await?;
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
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, \
             finished_at = NULL WHERE id = $2 AND endpoint_id = $3 AND org_id = $4",
        )
        .bind(now)
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
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, \
             finished_at = NULL \
             WHERE endpoint_id = $2 AND org_id = $3 AND status = 'failed' AND created_at >= $4",
        )
        .bind(now)
        .bind(id.0)
        .bind(access.org_id().0)
        .bind(since)
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
impl WebhookStore for PgStore {
    async fn fan_out(&self, now: Timestamp, limit: u32) -> StoreResult<u32> {
        let mut unit = self.unit(Scope::Platform).await?;
        let events = sqlx::query(concat!(
            "SELECT ",
            outbox_cols!(),
            " FROM outbox_events o WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $1 \
              ORDER BY o.next_attempt_at, o.id LIMIT $2 FOR UPDATE SKIP LOCKED"
        ))
        .bind(now)
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
                     WHERE e.org_id = $1 AND e.enabled = true AND e.deleted_at IS NULL"
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
            sqlx::query("UPDATE outbox_events SET delivered_at = $1 WHERE id = $2")
                .bind(now)
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
        let mut unit = self.unit(Scope::Platform).await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 \
             WHERE id IN (SELECT d.id FROM webhook_deliveries d \
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
                   AND (d.lease_until IS NULL OR d.lease_until <= $4) \
                   AND e.enabled = true AND e.deleted_at IS NULL \
                 ORDER BY d.next_attempt_at, d.id LIMIT $5 FOR UPDATE OF d SKIP LOCKED) \
             RETURNING id",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *unit)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(concat!(
                "SELECT ",
                delivery_cols!(),
                ", d.org_id AS d_org_id, e.url AS e_url, e.secret_sealed, \
                 CASE WHEN e.previous_secret_expires_at > $1 THEN e.previous_secret_sealed END \
                   AS previous_sealed \
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.id = $2"
            ))
            .bind(now)
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
             response, error_class) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(claimed.org_id.0)
        .bind(d.id.0)
        .bind(attempt.at)
        .bind(attempt.status_code.map(i32::from))
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
            "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, \
             next_attempt_at = $2, last_status = $3, finished_at = $4, lease_owner = NULL, \
             lease_until = NULL WHERE id = $5 AND lease_owner = $6",
        )
        .bind(status)
        .bind(next_at)
        .bind(attempt.status_code.map(i32::from))
        .bind(finished)
        .bind(d.id.0)
        .bind(owner)
        .execute(&mut *unit)
        .await?
        .rows_affected()
            > 0;
        let mut disabled = false;
        if next == NextStep::Succeeded {
            sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1")
                .bind(d.endpoint_id.0)
                .execute(&mut *unit)
                .await?;
        } else {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) \
                 WHERE id = $2",
            )
            .bind(attempt.at)
            .bind(d.endpoint_id.0)
            .execute(&mut *unit)
            .await?;
            let cutoff = failing_cutoff(attempt.at, disable_after);
            let since: Option<Timestamp> = sqlx::query_scalar(
                "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $1, updated_at = $2 \
                 WHERE id = $3 AND enabled = true AND failing_since IS NOT NULL \
                   AND failing_since <= $4 RETURNING failing_since",
            )
            .bind(DISABLED_FAILING)
            .bind(attempt.at)
            .bind(d.endpoint_id.0)
            .bind(cutoff)
            .fetch_optional(&mut *unit)
            .await?
            .flatten();
            if let Some(since) = since {
                disabled = true;
                unit.audit(disabled_event(claimed.org_id, d.endpoint_id, since));
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
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id.0)
            .bind(owner)
            .execute(&mut *unit)
            .await?;
        }
        unit.commit().await
    }

    async fn purge(&self, before: Timestamp, limit: u32) -> StoreResult<Purged> {
        // Every org's rows: the platform's context.
        let mut unit = self.unit(Scope::Platform).await?;
        let events = sqlx::query(
            "DELETE FROM outbox_events WHERE id IN (SELECT id FROM outbox_events \
             WHERE delivered_at IS NOT NULL AND delivered_at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(&mut *unit)
        .await?
        .rows_affected();
        // The ids first (locked), so attempts and deliveries are deleted for the same set
        // even if a concurrent retry makes one of them pending again meanwhile.
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM webhook_deliveries WHERE status IN ('succeeded', 'failed') \
             AND finished_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&mut *unit)
        .await?;
        sqlx::query("DELETE FROM webhook_attempts WHERE delivery_id = ANY($1)")
            .bind(&ids)
            .execute(&mut *unit)
            .await?;
        let deliveries = sqlx::query("DELETE FROM webhook_deliveries WHERE id = ANY($1)")
            .bind(&ids)
            .execute(&mut *unit)
            .await?
            .rows_affected();
        unit.commit().await?;
        Ok(Purged { events, deliveries })
    }

    async fn next_due(&self) -> StoreResult<Option<Timestamp>> {
        let mut unit = self.unit(Scope::Platform).await?;
        let next: Option<Timestamp> = sqlx::query_scalar(
            "SELECT MIN(t) FROM ( \
               SELECT MIN(GREATEST(d.next_attempt_at, COALESCE(d.lease_until, d.next_attempt_at))) AS t \
                 FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                WHERE d.status = 'pending' AND e.enabled = true AND e.deleted_at IS NULL \
               UNION ALL \
               SELECT MIN(next_attempt_at) FROM outbox_events WHERE delivered_at IS NULL) AS due",
        )
        .fetch_one(&mut *unit)
        .await?;
        unit.commit().await?;
        Ok(next)
    }

    async fn backlog(&self, now: Timestamp) -> StoreResult<Backlog> {
        let mut unit = self.unit(Scope::Platform).await?;
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM webhook_deliveries d JOIN webhook_endpoints e \
                  ON e.id = d.endpoint_id \
                WHERE d.status = 'pending' AND e.enabled = true AND e.deleted_at IS NULL) AS pending, \
               (SELECT COUNT(*) FROM outbox_events WHERE delivered_at IS NULL) AS unfanned, \
               (SELECT MIN(t) FROM ( \
                  SELECT MIN(d.next_attempt_at) AS t FROM webhook_deliveries d \
                    JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                   WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
                     AND e.enabled = true AND e.deleted_at IS NULL \
                  UNION ALL \
                  SELECT MIN(next_attempt_at) FROM outbox_events \
                   WHERE delivered_at IS NULL AND next_attempt_at <= $2) AS due) AS oldest",
        )
        .bind(now)
        .bind(now)
        .fetch_one(&mut *unit)
        .await?;
        unit.commit().await?;
        let pending: i64 = row.try_get("pending")?;
        let unfanned: i64 = row.try_get("unfanned")?;
        Ok(Backlog {
            pending: u64::try_from(pending).unwrap_or(0),
            unfanned: u64::try_from(unfanned).unwrap_or(0),
            oldest_due: row.try_get("oldest")?,
        })
    }

    async fn troubled_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        let mut unit = self.unit(Scope::Platform).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            endpoint_cols!(),
            " FROM webhook_endpoints e WHERE e.deleted_at IS NULL \
              AND (e.failing_since IS NOT NULL OR e.disabled_reason IS NOT NULL) ORDER BY e.id"
        ))
        .fetch_all(&mut *unit)
        .await?;
        unit.commit().await?;
        rows.iter().map(endpoint_from).collect()
    }
}

async fn insert_delivery(unit: &mut Unit<'_>, org: OrgId, d: &Delivery) -> StoreResult<()> {
    // A second fan-out of one event (it cannot happen: the event is marked in the same
    // transaction) would find the delivery there and add nothing.
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, event_type, body, \
         created_at, status, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9) \
         ON CONFLICT (event_id, endpoint_id) DO NOTHING",
    )
    .bind(d.id.0)
    .bind(org.0)
    .bind(d.endpoint_id.0)
    .bind(d.event_id)
    .bind(&d.event_type)
    .bind(&d.body)
    .bind(d.created_at)
    .bind(d.status.as_str())
    .bind(d.next_attempt_at)
    .execute(&mut **unit)
    .await?;
    Ok(())
}
