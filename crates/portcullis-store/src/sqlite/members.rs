//! Memberships: a user's own, and an org's members as its admins manage them.

use portcullis_core::authz::{ChangeActor, may_change_membership};
use portcullis_core::membership::admit_member;
use portcullis_core::{Admission, PriorMembership};
use portcullis_core::{AuditContext, Membership, OrgAccess, OrgId, Role, Timestamp, UserId};
use sqlx::Row;

use super::SqliteStore;
use super::rows::{
    from_micros, membership_from, micros, org_cols, org_from, project_cols, project_from, role,
    user_cols, user_from,
};
use super::statements::{guard_last_owner, insert_user, member_record};
use super::unit::Unit;
use crate::unit::Scope;
use crate::{
    AddedMember, Change, MemberChange, MemberRecord, MembershipView, NewMember, PasswordSetup,
    ProjectView, StoreError, StoreResult,
};

pub(super) async fn membership(
    store: &SqliteStore,
    org_id: OrgId,
    user_id: UserId,
) -> StoreResult<Option<Membership>> {
    let row = sqlx::query(
        "SELECT m.org_id, m.user_id, m.role, m.created_at, m.deleted_at FROM memberships m \
         JOIN orgs o ON o.id = m.org_id WHERE m.org_id = ? AND m.user_id = ? AND o.deleted_at IS NULL",
    )
    .bind(org_id.0)
    .bind(user_id.0)
    .fetch_optional(&store.pool)
    .await?;
    row.as_ref().map(membership_from).transpose()
}

pub(super) async fn memberships_of_user(
    store: &SqliteStore,
    user_id: UserId,
) -> StoreResult<Vec<MembershipView>> {
    let orgs = sqlx::query(concat!(
        "SELECT ",
        org_cols!(),
        ", m.role FROM memberships m JOIN orgs o ON o.id = m.org_id \
         WHERE m.user_id = ? AND m.deleted_at IS NULL AND o.deleted_at IS NULL ORDER BY o.created_at"
    ))
    .bind(user_id.0)
    .fetch_all(&store.pool)
    .await?;
    let projects = sqlx::query(concat!(
        "SELECT ",
        project_cols!(),
        ", pm.role AS project_role FROM projects p \
         JOIN memberships m ON m.org_id = p.org_id AND m.user_id = ? AND m.deleted_at IS NULL \
         LEFT JOIN project_memberships pm ON pm.project_id = p.id AND pm.user_id = m.user_id \
         ORDER BY p.created_at"
    ))
    .bind(user_id.0)
    .fetch_all(&store.pool)
    .await?;
    let mut views = Vec::with_capacity(orgs.len());
    for row in &orgs {
        views.push(MembershipView {
            org: org_from(row)?,
            role: role(row.try_get("role")?)?,
            projects: Vec::new(),
        });
    }
    for row in &projects {
        let project = project_from(row)?;
        let project_role = row
            .try_get::<Option<String>, _>("project_role")?
            .as_deref()
            .map(role)
            .transpose()?;
        if let Some(view) = views.iter_mut().find(|v| v.org.id == project.org_id)
            && let Some(r) =
                portcullis_core::project::effective_project_role(view.role, project_role)
        {
            view.projects.push(ProjectView { project, role: r });
        }
    }
    Ok(views)
}

async fn list_members(store: &SqliteStore, access: &OrgAccess) -> StoreResult<Vec<MemberRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        ", m.role, m.created_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = ? AND m.deleted_at IS NULL ORDER BY m.created_at"
    ))
    .bind(access.org_id().0)
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MemberRecord {
                user: user_from(r)?,
                role: role(r.try_get("role")?)?,
                joined_at: from_micros(r.try_get("joined_at")?)?,
            })
        })
        .collect()
}

async fn add_member(
    store: &SqliteStore,
    access: &OrgAccess,
    m: &NewMember,
    ctx: &AuditContext,
) -> StoreResult<AddedMember> {
    let org_id = access.org_id();
    let now = portcullis_core::now();
    let mut unit = store.unit(Scope::Org(org_id)).await?;
    let existing = sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        " FROM users u WHERE u.email = ? AND u.deleted_at IS NULL"
    ))
    .bind(m.email.as_str())
    .fetch_optional(&mut *unit)
    .await?;
    let (user, user_created) = match existing {
        Some(row) => (user_from(&row)?, false),
        None => (
            insert_user(
                &mut unit,
                m.new_user_id,
                &m.email,
                m.name.as_ref(),
                m.password_hash.as_ref(),
                now,
            )
            .await?,
            true,
        ),
    };
    if user_created && let Some(setup) = &m.password_setup {
        insert_password_setup(&mut unit, setup, user.id, org_id, now).await?;
    }
    admit(&mut unit, org_id, user.id, m.role, now).await?;
    // Within the plan's seats, counting the membership just inserted.
    super::platform::gate_counting(
        store,
        &mut unit,
        org_id,
        portcullis_core::plan::Resource::Seats,
        1,
    )
    .await?;
    for e in crate::events::member_added(ctx, org_id, &user, m.role, user_created) {
        unit.audit(e);
    }
    unit.changed(Change::UserChanged(user.id));
    unit.commit().await?;
    Ok(AddedMember {
        member: MemberRecord {
            user,
            role: m.role,
            joined_at: now,
        },
        user_created,
    })
}

/// Makes `user_id` an active member with `role` (a new row, or the removed one back, per
/// [`admit_member`]) and a member of the org's default project. `Conflict` for a current
/// member.
pub(super) async fn admit(
    unit: &mut Unit<'_>,
    org_id: OrgId,
    user_id: UserId,
    role: Role,
    now: Timestamp,
) -> StoreResult<()> {
    let prior: Option<Option<i64>> =
        sqlx::query_scalar("SELECT deleted_at FROM memberships WHERE org_id = ? AND user_id = ?")
            .bind(org_id.0)
            .bind(user_id.0)
            .fetch_optional(&mut **unit)
            .await?;
    let prior = match prior {
        None => PriorMembership::Never,
        Some(None) => PriorMembership::Active,
        Some(Some(_)) => PriorMembership::Removed,
    };
    match admit_member(prior)? {
        Admission::Reinstate => {
            sqlx::query("UPDATE memberships SET role = ?, created_at = ?, deleted_at = NULL WHERE org_id = ? AND user_id = ?")
                .bind(role.as_str())
                .bind(micros(now))
                .bind(org_id.0)
                .bind(user_id.0)
                .execute(&mut **unit)
                .await?;
        }
        Admission::Insert => {
            sqlx::query(
                "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(org_id.0)
            .bind(user_id.0)
            .bind(role.as_str())
            .bind(micros(now))
            .execute(&mut **unit)
            .await?;
        }
    }
    sqlx::query(
        "INSERT INTO project_memberships (project_id, org_id, user_id, role, created_at) \
         SELECT p.id, p.org_id, ?, 'member', ? FROM projects p WHERE p.org_id = ? AND p.is_default = 1 \
         ON CONFLICT (project_id, user_id) DO NOTHING",
    )
    .bind(user_id.0)
    .bind(micros(now))
    .bind(org_id.0)
    .execute(&mut **unit)
    .await?;
    Ok(())
}

/// An admin-created account's first-password link.
async fn insert_password_setup(
    unit: &mut Unit<'_>,
    setup: &PasswordSetup,
    user_id: UserId,
    org_id: OrgId,
    now: Timestamp,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO password_setup_tokens (token_hash, user_id, org_id, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&setup.token_hash.0[..])
    .bind(user_id.0)
    .bind(org_id.0)
    .bind(micros(now))
    .bind(micros(setup.expires_at))
    .execute(&mut **unit)
    .await?;
    Ok(())
}

/// Who asks for a membership change, with their role as this transaction reads it.
async fn change_actor(unit: &mut Unit<'_>, access: &OrgAccess) -> StoreResult<ChangeActor> {
    let Some(user_id) = access.actor_id().filter(|_| !access.is_operator()) else {
        return Ok(ChangeActor::Operator);
    };
    let role = active_role(unit, access.org_id(), user_id).await?;
    Ok(ChangeActor::Member { user_id, role })
}

async fn active_role(
    unit: &mut Unit<'_>,
    org_id: OrgId,
    user_id: UserId,
) -> StoreResult<Option<Role>> {
    let raw: Option<String> = sqlx::query_scalar(
        "SELECT role FROM memberships WHERE org_id = ? AND user_id = ? AND deleted_at IS NULL",
    )
    .bind(org_id.0)
    .bind(user_id.0)
    .fetch_optional(&mut **unit)
    .await?;
    raw.as_deref().map(role).transpose()
}

async fn change_member_role(
    store: &SqliteStore,
    access: &OrgAccess,
    user_id: UserId,
    new_role: Role,
    ctx: &AuditContext,
) -> StoreResult<MemberChange<MemberRecord>> {
    let org_id = access.org_id();
    let mut unit = store.unit(Scope::Org(org_id)).await?;
    let actor = change_actor(&mut unit, access).await?;
    let current = active_role(&mut unit, org_id, user_id)
        .await?
        .ok_or(StoreError::NotFound)?;
    if !may_change_membership(actor, user_id, current, Some(new_role)) {
        return Ok(MemberChange::NotPermitted);
    }
    let old = guard_last_owner(&mut unit, org_id, user_id, Some(new_role)).await?;
    sqlx::query(
        "UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ? AND deleted_at IS NULL",
    )
    .bind(new_role.as_str())
    .bind(org_id.0)
    .bind(user_id.0)
    .execute(&mut *unit)
    .await?;
    let record = member_record(&mut unit, org_id, user_id).await?;
    unit.audit(crate::events::role_changed(
        ctx, org_id, user_id, old, new_role,
    ));
    unit.changed(Change::UserChanged(user_id));
    unit.commit().await?;
    Ok(MemberChange::Done(record))
}

async fn remove_member(
    store: &SqliteStore,
    access: &OrgAccess,
    user_id: UserId,
    ctx: &AuditContext,
) -> StoreResult<MemberChange<()>> {
    let org_id = access.org_id();
    let mut unit = store.unit(Scope::Org(org_id)).await?;
    let actor = change_actor(&mut unit, access).await?;
    let current = active_role(&mut unit, org_id, user_id)
        .await?
        .ok_or(StoreError::NotFound)?;
    if !may_change_membership(actor, user_id, current, None) {
        return Ok(MemberChange::NotPermitted);
    }
    guard_last_owner(&mut unit, org_id, user_id, None).await?;
    sqlx::query("UPDATE memberships SET deleted_at = ? WHERE org_id = ? AND user_id = ? AND deleted_at IS NULL")
        .bind(micros(portcullis_core::now()))
        .bind(org_id.0)
        .bind(user_id.0)
        .execute(&mut *unit)
        .await?;
    sqlx::query("DELETE FROM project_memberships WHERE org_id = ? AND user_id = ?")
        .bind(org_id.0)
        .bind(user_id.0)
        .execute(&mut *unit)
        .await?;
    unit.audit(crate::events::member_removed(ctx, org_id, user_id));
    unit.changed(Change::UserChanged(user_id));
    unit.commit().await?;
    Ok(MemberChange::Done(()))
}

/// The org handle's calls, bound to the SQL above.
#[async_trait::async_trait]
impl crate::members::ByAccess for SqliteStore {
    async fn list_members(&self, access: &OrgAccess) -> StoreResult<Vec<crate::MemberRecord>> {
        list_members(self, access).await
    }

    async fn add_member(
        &self,
        access: &OrgAccess,
        member: &crate::NewMember,
        ctx: &portcullis_core::AuditContext,
    ) -> StoreResult<crate::AddedMember> {
        add_member(self, access, member, ctx).await
    }

    async fn change_member_role(
        &self,
        access: &OrgAccess,
        user_id: portcullis_core::UserId,
        role: portcullis_core::Role,
        ctx: &portcullis_core::AuditContext,
    ) -> StoreResult<crate::MemberChange<crate::MemberRecord>> {
        change_member_role(self, access, user_id, role, ctx).await
    }

    async fn remove_member(
        &self,
        access: &OrgAccess,
        user_id: portcullis_core::UserId,
        ctx: &portcullis_core::AuditContext,
    ) -> StoreResult<crate::MemberChange<()>> {
        remove_member(self, access, user_id, ctx).await
    }
}
