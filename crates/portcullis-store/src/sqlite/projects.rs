//! Projects of an org, and the way a user reaches one.

use portcullis_core::{AuditContext, OrgAccess, Project, ProjectId, ProjectStatus, UserId};
use sqlx::Row;

use super::SqliteStore;
use super::rows::{membership_from, micros, project_cols, project_from, role, to_json_list};
use crate::unit::Scope;
use crate::{Change, ProjectAccessRecord, ProjectPatch, StoreError, StoreResult};

pub(super) async fn project_status(
    store: &SqliteStore,
    project_id: ProjectId,
) -> StoreResult<Option<ProjectStatus>> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM projects WHERE id = ?")
        .bind(project_id.0)
        .fetch_optional(&store.pool)
        .await?;
    Ok(status.as_deref().map(ProjectStatus::parse).transpose()?)
}

pub(super) async fn project_access(
    store: &SqliteStore,
    project_id: ProjectId,
    user_id: UserId,
) -> StoreResult<Option<ProjectAccessRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        project_cols!(),
        ", m.org_id, m.user_id, m.role, m.created_at, m.deleted_at, pm.role AS project_role \
         FROM projects p JOIN orgs o ON o.id = p.org_id AND o.deleted_at IS NULL \
         LEFT JOIN memberships m ON m.org_id = p.org_id AND m.user_id = ? \
         LEFT JOIN project_memberships pm ON pm.project_id = p.id AND pm.user_id = ? \
         WHERE p.id = ?"
    ))
    .bind(user_id.0)
    .bind(user_id.0)
    .bind(project_id.0)
    .fetch_optional(&store.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let has_membership = row.try_get::<Option<String>, _>("role")?.is_some();
    Ok(Some(ProjectAccessRecord {
        project: project_from(&row)?,
        org_membership: if has_membership {
            Some(membership_from(&row)?)
        } else {
            None
        },
        project_role: row
            .try_get::<Option<String>, _>("project_role")?
            .as_deref()
            .map(role)
            .transpose()?,
    }))
}

async fn list_projects(store: &SqliteStore, access: &OrgAccess) -> StoreResult<Vec<Project>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        project_cols!(),
        " FROM projects p WHERE p.org_id = ? ORDER BY p.created_at"
    ))
    .bind(access.org_id().0)
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(project_from).collect()
}

/// Gated by the org's plan (its project limit), in the inserting unit.
async fn create_project(
    store: &SqliteStore,
    access: &OrgAccess,
    project: &Project,
    ctx: &AuditContext,
) -> StoreResult<()> {
    super::platform::create_project_in_unit(
        store,
        access,
        project,
        portcullis_core::KeyMode::Live,
        ctx,
    )
    .await
}

async fn update_project(
    store: &SqliteStore,
    access: &OrgAccess,
    id: ProjectId,
    patch: &ProjectPatch,
    ctx: &AuditContext,
) -> StoreResult<Project> {
    let mut unit = store.unit(Scope::Org(access.org_id())).await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        project_cols!(),
        " FROM projects p WHERE p.id = ? AND p.org_id = ?"
    ))
    .bind(id.0)
    .bind(access.org_id().0)
    .fetch_optional(&mut *unit)
    .await?
    .ok_or(StoreError::NotFound)?;
    let (project, changed) = patch.apply(project_from(&row)?, portcullis_core::now());
    sqlx::query("UPDATE projects SET name = ?, status = ?, redirect_uris = ?, allowed_origins = ?, updated_at = ? WHERE id = ?")
        .bind(project.name.as_str())
        .bind(project.status.as_str())
        .bind(to_json_list(&project.redirect_uris, |u| u.as_str()))
        .bind(to_json_list(&project.allowed_origins, |o| o.as_str()))
        .bind(micros(project.updated_at))
        .bind(id.0)
        .execute(&mut *unit)
        .await?;
    unit.audit(crate::events::project_updated(ctx, &project, &changed));
    unit.changed(Change::OrgChanged(project.org_id));
    unit.commit().await?;
    Ok(project)
}

/// The org handle's calls, bound to the SQL above.
#[async_trait::async_trait]
impl crate::projects::ByAccess for SqliteStore {
    async fn list_projects(
        &self,
        access: &OrgAccess,
    ) -> StoreResult<Vec<portcullis_core::Project>> {
        list_projects(self, access).await
    }

    async fn create_project(
        &self,
        access: &OrgAccess,
        project: &portcullis_core::Project,
        ctx: &portcullis_core::AuditContext,
    ) -> StoreResult<()> {
        create_project(self, access, project, ctx).await
    }

    async fn update_project(
        &self,
        access: &OrgAccess,
        id: portcullis_core::ProjectId,
        patch: &crate::ProjectPatch,
        ctx: &portcullis_core::AuditContext,
    ) -> StoreResult<portcullis_core::Project> {
        update_project(self, access, id, patch, ctx).await
    }
}
