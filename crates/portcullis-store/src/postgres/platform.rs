//! Secret keys, project modes and subscriptions on PostgreSQL. Plan limits are checked
//! inside the inserting unit after locking the org's row ([`lock_org`]), so of two
//! concurrent inserts at the limit the second counts the first and is refused.

use async_trait::async_trait;
use portcullis_core::plan::{
    Plan, PlanKey, Resource, Subscription, SubscriptionStatus, admit_counted, limits_reached,
    needs_count,
};
use portcullis_core::{
    AuditContext, KeyMode, OrgAccess, OrgId, Project, ProjectId, Timestamp, TokenHash,
};
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};
use uuid::Uuid;

use super::PgStore;
use super::rows::{project_cols, project_from};
use super::statements::{insert_project, lock_org};
use super::unit::Unit;
use crate::platform::{
    ByAccess, ByProjectAccess, KeyHolder, NewSecretKey, OrgAtLimit, PlatformStore, Rotated,
    SecretKeyRecord, StaleKeyUse, SubscriptionState, Usage, default_subscription, key_rotated,
    refused, subscription_changed,
};
use crate::unit::Scope;
use crate::{Change, StoreError, StoreResult};

const KEY_COLS: &str = "id, project_id, org_id, prefix, created_at, expires_at, last_used_at";

fn key_from(row: &PgRow) -> StoreResult<SecretKeyRecord> {
    Ok(SecretKeyRecord {
        id: row.try_get("id")?,
        project_id: ProjectId(row.try_get("project_id")?),
        org_id: OrgId(row.try_get("org_id")?),
        prefix: row.try_get("prefix")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

async fn read_subscription(conn: &mut PgConnection, org_id: OrgId) -> StoreResult<Subscription> {
    let row = sqlx::query(
        "SELECT plan, status, current_period_start, current_period_end FROM subscriptions \
         WHERE org_id = $1",
    )
    .bind(org_id.0)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        return Ok(Subscription {
            plan: PlanKey::parse(row.try_get("plan")?)?,
            status: SubscriptionStatus::parse(row.try_get("status")?)?,
            current_period_start: row.try_get("current_period_start")?,
            current_period_end: row.try_get("current_period_end")?,
        });
    }
    let created: Timestamp = sqlx::query_scalar("SELECT created_at FROM orgs WHERE id = $1")
        .bind(org_id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(default_subscription(created))
}

async fn usage(conn: &mut PgConnection, org_id: OrgId, now: Timestamp) -> StoreResult<Usage> {
    let seats: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND deleted_at IS NULL) \
         + (SELECT COUNT(*) FROM invitations WHERE org_id = $2 AND accepted_at IS NULL \
            AND revoked_at IS NULL AND expires_at > $3)",
    )
    .bind(org_id.0)
    .bind(org_id.0)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let projects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE org_id = $1")
        .bind(org_id.0)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Usage {
        seats: seats.max(0) as u64,
        projects: projects.max(0) as u64,
    })
}

/// Refuses one more `resource` for the org when its subscription or plan does not allow it.
/// Called inside the unit that inserts it, before the insert.
pub(super) async fn gate(
    store: &PgStore,
    unit: &mut Unit<'_>,
    org_id: OrgId,
    resource: Resource,
) -> StoreResult<()> {
    gate_counting(store, unit, org_id, resource, 0).await
}

/// [`gate`] for a unit that already inserted the new row (`inserted` of them are counted):
/// adding a member finds out only while inserting whether the person was a member already,
/// which is a conflict rather than a new seat.
pub(super) async fn gate_counting(
    store: &PgStore,
    unit: &mut Unit<'_>,
    org_id: OrgId,
    resource: Resource,
    inserted: u64,
) -> StoreResult<()> {
    // Two inserts at the limit queue here; the second counts the first.
    lock_org(unit, org_id).await?;
    let sub = read_subscription(unit, org_id).await?;
    let limit = store.plans.plan(sub.plan.as_str()).limit(resource);
    let counted = if needs_count(sub.status, limit) {
        let u = usage(unit, org_id, portcullis_core::now()).await?;
        Some(match resource {
            Resource::Seats => u.seats,
            Resource::Projects => u.projects,
        })
    } else {
        None
    };
    admit_counted(sub.status, resource, limit, counted, inserted).map_err(refused)
}

async fn state(
    store: &PgStore,
    conn: &mut PgConnection,
    org_id: OrgId,
) -> StoreResult<SubscriptionState> {
    let subscription = read_subscription(conn, org_id).await?;
    let plan = store.plans.plan(subscription.plan.as_str());
    let usage = usage(conn, org_id, portcullis_core::now()).await?;
    Ok(SubscriptionState {
        subscription,
        plan,
        usage,
    })
}

pub(super) async fn create_project_in_unit(
    store: &PgStore,
    access: &OrgAccess,
    project: &Project,
    mode: KeyMode,
    ctx: &AuditContext,
) -> StoreResult<()> {
    if project.org_id != access.org_id() {
        return Err(StoreError::NotFound);
    }
    let mut unit = store.unit(Scope::Org(project.org_id)).await?;
    gate(store, &mut unit, project.org_id, Resource::Projects).await?;
    insert_project(&mut unit, project, false).await?;
    sqlx::query("UPDATE projects SET mode = $1 WHERE id = $2")
        .bind(mode.as_str())
        .bind(project.id.0)
        .execute(&mut *unit)
        .await?;
    unit.audit(crate::events::project_created(ctx, project));
    unit.changed(Change::OrgChanged(project.org_id));
    unit.commit().await
}

#[async_trait]
impl ByAccess for PgStore {
    async fn create_project_in_mode(
        &self,
        access: &OrgAccess,
        project: &Project,
        mode: KeyMode,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        create_project_in_unit(self, access, project, mode, ctx).await
    }

    async fn subscription(&self, access: &OrgAccess) -> StoreResult<SubscriptionState> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let s = state(self, &mut unit, access.org_id()).await?;
        unit.commit().await?;
        Ok(s)
    }

    async fn set_subscription(
        &self,
        access: &OrgAccess,
        sub: &Subscription,
        ctx: &AuditContext,
    ) -> StoreResult<SubscriptionState> {
        let org_id = access.org_id();
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        let before = read_subscription(&mut unit, org_id).await?;
        let now = portcullis_core::now();
        sqlx::query(
            "INSERT INTO subscriptions (org_id, plan, status, current_period_start, \
             current_period_end, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (org_id) DO UPDATE SET plan = excluded.plan, status = excluded.status, \
             current_period_start = excluded.current_period_start, \
             current_period_end = excluded.current_period_end, updated_at = excluded.updated_at",
        )
        .bind(org_id.0)
        .bind(sub.plan.as_str())
        .bind(sub.status.as_str())
        .bind(sub.current_period_start)
        .bind(sub.current_period_end)
        .bind(now)
        .execute(&mut *unit)
        .await?;
        let after = state(self, &mut unit, org_id).await?;
        let audit = subscription_changed(ctx, org_id, &before, &after.subscription);
        unit.audit(audit);
        unit.changed(Change::OrgChanged(org_id));
        unit.commit().await?;
        Ok(after)
    }
}

#[async_trait]
impl ByProjectAccess for PgStore {
    async fn project_mode(&self, access: &OrgAccess, id: ProjectId) -> StoreResult<KeyMode> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let mode: String =
            sqlx::query_scalar("SELECT mode FROM projects WHERE id = $1 AND org_id = $2")
                .bind(id.0)
                .bind(access.org_id().0)
                .fetch_optional(&mut *unit)
                .await?
                .ok_or(StoreError::NotFound)?;
        unit.commit().await?;
        Ok(KeyMode::parse(&mode)?)
    }

    async fn secret_keys(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        now: Timestamp,
    ) -> StoreResult<Vec<SecretKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM project_secret_keys WHERE project_id = $1 AND org_id = $2 \
             AND (expires_at IS NULL OR expires_at > $3) ORDER BY created_at DESC, id DESC"
        );
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project_id.0)
            .bind(access.org_id().0)
            .bind(now)
            .fetch_all(&mut *unit)
            .await?;
        unit.commit().await?;
        rows.iter().map(key_from).collect()
    }

    async fn rotate_secret_key(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        key: &NewSecretKey,
        grace: time::Duration,
        ctx: &AuditContext,
    ) -> StoreResult<Rotated> {
        let org_id = access.org_id();
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        // The project row locked: concurrent rotations of one project take turns, so the
        // cap on working keys counts what the other one left.
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM projects WHERE id = $1 AND org_id = $2 FOR UPDATE")
                .bind(project_id.0)
                .bind(org_id.0)
                .fetch_optional(&mut *unit)
                .await?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
        let now = key.created_at;
        let until = now + grace;
        // A key already superseded keeps the earlier of its own end and the new one: a
        // rotation never extends an old key's life.
        sqlx::query(
            "UPDATE project_secret_keys SET expires_at = CASE \
               WHEN expires_at IS NULL OR expires_at > $1 THEN $2 ELSE expires_at END \
             WHERE project_id = $3 AND org_id = $4 AND (expires_at IS NULL OR expires_at > $5)",
        )
        .bind(until)
        .bind(until)
        .bind(project_id.0)
        .bind(org_id.0)
        .bind(now)
        .execute(&mut *unit)
        .await?;
        let sql = format!(
            "SELECT {KEY_COLS} FROM project_secret_keys WHERE project_id = $1 AND org_id = $2 \
             AND expires_at > $3 ORDER BY created_at DESC"
        );
        let superseded = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(project_id.0)
            .bind(org_id.0)
            .bind(now)
            .fetch_all(&mut *unit)
            .await?
            .iter()
            .map(key_from)
            .collect::<StoreResult<Vec<_>>>()?;
        // Decided on the keys as they are under this transaction; refused, nothing is kept.
        portcullis_core::plan::admit_rotation(superseded.len())?;
        sqlx::query(
            "INSERT INTO project_secret_keys (id, project_id, org_id, key_hash, prefix, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.id)
        .bind(project_id.0)
        .bind(org_id.0)
        .bind(&key.hash.0[..])
        .bind(&key.prefix)
        .bind(now)
        .execute(&mut *unit)
        .await?;
        let rotated = Rotated {
            key: SecretKeyRecord {
                id: key.id,
                project_id,
                org_id,
                prefix: key.prefix.clone(),
                created_at: now,
                expires_at: None,
                last_used_at: None,
            },
            superseded,
        };
        let audit = key_rotated(ctx, org_id, project_id, &rotated);
        unit.audit(audit);
        unit.commit().await?;
        Ok(rotated)
    }
}

#[async_trait]
impl PlatformStore for PgStore {
    fn set_plans(&self, plans: Vec<Plan>) {
        self.plans.set(plans);
    }

    fn plan(&self, key: &PlanKey) -> Plan {
        self.plans.plan(key.as_str())
    }

    async fn public_project(&self, id: ProjectId) -> StoreResult<Option<(Project, KeyMode)>> {
        let mut unit = self.unit(Scope::Platform).await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            project_cols!(),
            ", p.mode AS p_mode FROM projects p WHERE p.id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&mut *unit)
        .await?;
        unit.commit().await?;
        row.map(|r| Ok((project_from(&r)?, KeyMode::parse(r.try_get("p_mode")?)?)))
            .transpose()
    }

    async fn key_holder(&self, hash: &TokenHash) -> StoreResult<Option<KeyHolder>> {
        let sql = format!("SELECT {KEY_COLS} FROM project_secret_keys WHERE key_hash = $1");
        // Platform scope: the key is the capability (see migration 0011).
        let mut unit = self.unit(Scope::Platform).await?;
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&hash.0[..])
            .fetch_optional(&mut *unit)
            .await?
        else {
            return Ok(None);
        };
        let key = key_from(&row)?;
        let row = sqlx::query(concat!(
            "SELECT ",
            project_cols!(),
            ", p.mode AS p_mode FROM projects p WHERE p.id = $1"
        ))
        .bind(key.project_id.0)
        .fetch_one(&mut *unit)
        .await?;
        let (project, mode) = (project_from(&row)?, KeyMode::parse(row.try_get("p_mode")?)?);
        let sql = format!(
            "SELECT {KEY_COLS} FROM project_secret_keys WHERE project_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        );
        let newest = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key.project_id.0)
            .fetch_one(&mut *unit)
            .await
            .map_err(StoreError::from)
            .and_then(|r| key_from(&r))?;
        unit.commit().await?;
        Ok(Some(KeyHolder {
            key,
            project,
            mode,
            newest,
        }))
    }

    async fn touch_keys(&self, used: &[(Uuid, Timestamp)]) -> StoreResult<()> {
        if used.is_empty() {
            return Ok(());
        }
        let mut unit = self.unit(Scope::Platform).await?;
        for (id, at) in used {
            sqlx::query(
                "UPDATE project_secret_keys SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(*at)
            .bind(id)
            .bind(*at)
            .execute(&mut *unit)
            .await?;
        }
        unit.commit().await
    }

    async fn org_subscription(&self, org_id: OrgId) -> StoreResult<Subscription> {
        let mut unit = self.unit(Scope::Platform).await?;
        let s = read_subscription(&mut unit, org_id).await?;
        unit.commit().await?;
        Ok(s)
    }

    async fn stale_key_uses(&self) -> StoreResult<Vec<StaleKeyUse>> {
        // Used after a newer key of its project was created: the backend did not switch.
        let sql = format!(
            "SELECT {KEY_COLS} FROM project_secret_keys k WHERE k.expires_at IS NOT NULL \
             AND k.last_used_at IS NOT NULL AND k.last_used_at > (SELECT MAX(n.created_at) \
             FROM project_secret_keys n WHERE n.project_id = k.project_id) \
             ORDER BY k.last_used_at DESC"
        );
        let mut unit = self.unit(Scope::Platform).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut *unit)
            .await?;
        unit.commit().await?;
        rows.iter()
            .map(|r| Ok(StaleKeyUse { key: key_from(r)? }))
            .collect()
    }

    async fn orgs_at_limit(&self) -> StoreResult<Vec<OrgAtLimit>> {
        let mut conn = self.unit(Scope::Platform).await?;
        let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM orgs ORDER BY created_at")
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::new();
        for id in ids {
            let s = state(self, &mut conn, OrgId(id)).await?;
            for (resource, used, limit) in limits_reached(&s.plan, s.usage.seats, s.usage.projects)
            {
                out.push(OrgAtLimit {
                    org_id: OrgId(id),
                    plan: s.subscription.plan.clone(),
                    resource,
                    used,
                    limit,
                });
            }
        }
        conn.commit().await?;
        Ok(out)
    }
}
