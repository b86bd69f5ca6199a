//! Projects of an org, and the way a user reaches one.

use portcullis_core::{AuditContext, OrgAccess, Project, ProjectId, UserId};
use sqlx::Row;

use super::PgStore;
use super::rows::{membership_from, opt_role, project_cols, project_from, to_json_list};
use crate::unit::Scope;
use crate::{Change, ProjectAccessRecord, ProjectPatch, StoreError, StoreResult};

pub(super) async fn project_status(
    store: &PgStore,
    project_id: ProjectId,
) -> StoreResult<Option<portcullis_core::ProjectStatus>> {
    let mut unit = store.unit(Scope::Platform).await?;
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM projects WHERE id = $1")
        .bind(project_id.0)
        .fetch_optional(&mut *unit)
        .await?;
    unit.commit().await?;
    Ok(status
        .as_deref()
        .map(portcullis_core::ProjectStatus::parse)
        .transpose()?)
}

pub(super) async fn project_access(
    store: &PgStore,
    project_id: ProjectId,
    user_id: UserId,
) -> StoreResult<Option<ProjectAccessRecord>> {
    // Platform admins may act in every org, so they must see projects of orgs they are
    // not members of; anyone else sees only projects of their active memberships.
    let platform_admin: Option<bool> = sqlx::query_scalar(
        "SELECT is_platform_admin FROM users WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(user_id.0)
    .fetch_optional(&store.pool)
    .await?;
    if platform_admin == Some(true) {
        return project_access_in(store, Scope::Platform, project_id, user_id, false).await;
    }
    let found = project_access_in(store, Scope::User(user_id), project_id, user_id, false).await?;
    if found.is_some() {
        return Ok(found);
    }
    // Someone whose membership of the project's org ended knows the org exists: they get
    // the record (with that ended membership), as on SQLite, so the domain can tell them
    // why they lost access. Strangers still find nothing.
    project_access_in(store, Scope::Platform, project_id, user_id, true).await
}

/// The project with `user_id`'s org membership and project role, read in `scope`; with
/// `ended_only`, only when that org membership exists and has ended.
async fn project_access_in(
    store: &PgStore,
    scope: Scope,
    project_id: ProjectId,
    user_id: UserId,
    ended_only: bool,
) -> StoreResult<Option<ProjectAccessRecord>> {
    let mut unit = store.unit(scope).await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        project_cols!(),
        ", m.org_id, m.user_id, m.role, m.created_at, m.deleted_at, pm.role AS project_role \
         FROM projects p JOIN orgs o ON o.id = p.org_id AND o.deleted_at IS NULL \
         LEFT JOIN memberships m ON m.org_id = p.org_id AND m.user_id = $1 \
         LEFT JOIN project_memberships pm ON pm.project_id = p.id AND pm.user_id = $1 \
         WHERE p.id = $2 AND (NOT $3 OR m.deleted_at IS NOT NULL)"
    ))
    .bind(user_id.0)
    .bind(project_id.0)
    .bind(ended_only)
    .fetch_optional(&mut *unit)
    .await?;
    unit.commit().await?;
    let Some(row) = row else { return Ok(None) };
    let has_membership = row.try_get::<Option<String>, _>("role")?.is_some();
    Ok(Some(ProjectAccessRecord {
        project: project_from(&row)?,
        org_membership: if has_membership {
            Some(membership_from(&row)?)
        } else {
            None
        },
        project_role: opt_role(row.try_get("project_role")?)?,
    }))
}

async fn list_projects(store: &PgStore, access: &OrgAccess) -> StoreResult<Vec<Project>> {
    let mut unit = store.unit(Scope::Org(access.org_id())).await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        project_cols!(),
        " FROM projects p WHERE p.org_id = $1 ORDER BY p.created_at"
    ))
    .bind(access.org_id().0)
    .fetch_all(&mut *unit)
    .await?;
    unit.commit().await?;
    rows.iter().map(project_from).collect()
}

/// Gated by the org's plan (its project limit), in the inserting unit.
async fn create_project(
    store: &PgStore,
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
    store: &PgStore,
    access: &OrgAccess,
    id: ProjectId,
    patch: &ProjectPatch,
    ctx: &AuditContext,
) -> StoreResult<Project> {
    let mut unit = store.unit(Scope::Org(access.org_id())).await?;
    // FOR UPDATE: two concurrent patches of different fields must not undo each other.
    let row = sqlx::query(concat!(
        "SELECT ",
        project_cols!(),
        " FROM projects p WHERE p.id = $1 AND p.org_id = $2 FOR UPDATE"
    ))
    .bind(id.0)
    .bind(access.org_id().0)
    .fetch_optional(&mut *unit)
    .await?
    .ok_or(StoreError::NotFound)?;
    let (project, changed) = patch.apply(project_from(&row)?, portcullis_core::now());
    sqlx::query(
        "UPDATE projects SET name = $1, status = $2, redirect_uris = $3, allowed_origins = $4, \
         updated_at = $5 WHERE id = $6",
    )
    .bind(project.name.as_str())
    .bind(project.status.as_str())
    .bind(to_json_list(&project.redirect_uris, |u| u.as_str()))
    .bind(to_json_list(&project.allowed_origins, |o| o.as_str()))
    .bind(project.updated_at)
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
impl crate::projects::ByAccess for PgStore {
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
