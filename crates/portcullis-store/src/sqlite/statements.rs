//! Statements several operations share. Each runs inside the caller's unit.

use portcullis_core::password::PasswordHash;
use portcullis_core::{
    AuditContext, Email, Org, OrgId, PosixId, Project, Role, Session, Timestamp, User, UserId,
    UserName,
};
use sqlx::Row;

use super::rows::{from_micros, micros, role, to_json_list, user_cols, user_from};
use super::unit::Unit;
use crate::{Change, MemberRecord, SignupBootstrap, StoreError, StoreResult};
use portcullis_core::SessionId;
use portcullis_core::membership::change_membership;

/// A new session with its `session.created` event.
pub(super) async fn insert_session(
    unit: &mut Unit<'_>,
    s: &Session,
    ctx: &AuditContext,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, token_hash, created_at, last_seen_at, expires_at, ip, user_agent, \
         device_platform, device_model, app_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(s.id.0)
    .bind(s.user_id.0)
    .bind(&s.token_hash.0[..])
    .bind(micros(s.created_at))
    .bind(micros(s.last_seen_at))
    .bind(micros(s.expires_at))
    .bind(&s.ip)
    .bind(&s.user_agent)
    .bind(s.device.as_ref().map(|d| &d.platform))
    .bind(s.device.as_ref().and_then(|d| d.model.as_ref()))
    .bind(s.device.as_ref().and_then(|d| d.app_version.as_ref()))
    .execute(&mut **unit)
    .await?;
    unit.audit(crate::events::session_created(ctx, s));
    Ok(())
}

pub(super) async fn insert_user(
    unit: &mut Unit<'_>,
    id: UserId,
    email: &Email,
    name: Option<&UserName>,
    password_hash: Option<&PasswordHash>,
    now: Timestamp,
) -> StoreResult<User> {
    let n: i64 = sqlx::query_scalar("INSERT INTO posix_ids DEFAULT VALUES RETURNING id")
        .fetch_one(&mut **unit)
        .await?;
    let posix = PosixId::from_allocated(n as u32);
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, posix_uid, posix_gid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id.0)
    .bind(email.as_str())
    .bind(name.map(UserName::as_str))
    .bind(password_hash.map(PasswordHash::as_str))
    .bind(posix.uid as i64)
    .bind(posix.gid as i64)
    .bind(micros(now))
    .execute(&mut **unit)
    .await?;
    Ok(User {
        id,
        email: email.clone(),
        name: name.cloned(),
        posix,
        is_platform_admin: false,
        created_at: now,
    })
}

pub(super) async fn insert_org_with_default_project(
    unit: &mut Unit<'_>,
    owner: UserId,
    org: &Org,
    project: &Project,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO orgs (id, name, slug, personal, created_at) VALUES (?, ?, ?, ?, ?)")
        .bind(org.id.0)
        .bind(org.name.as_str())
        .bind(org.slug.as_str())
        .bind(org.personal)
        .bind(micros(org.created_at))
        .execute(&mut **unit)
        .await?;
    insert_project(unit, project, true).await?;
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)",
    )
    .bind(org.id.0)
    .bind(owner.0)
    .bind(micros(org.created_at))
    .execute(&mut **unit)
    .await?;
    sqlx::query(
        "INSERT INTO project_memberships (project_id, org_id, user_id, role, created_at) VALUES (?, ?, ?, 'owner', ?)",
    )
    .bind(project.id.0)
    .bind(org.id.0)
    .bind(owner.0)
    .bind(micros(org.created_at))
    .execute(&mut **unit)
    .await?;
    Ok(())
}

/// Self-signup's rows in the caller's transaction: the user, a personal org with its default
/// project, owner memberships of both, and the bootstrap's audit events.
pub(super) async fn insert_signup_bootstrap(
    unit: &mut Unit<'_>,
    b: &SignupBootstrap,
    ctx: &AuditContext,
) -> StoreResult<User> {
    let user = insert_user(
        unit,
        b.user_id,
        &b.email,
        b.name.as_ref(),
        b.password_hash.as_ref(),
        b.org.created_at,
    )
    .await?;
    insert_org_with_default_project(unit, user.id, &b.org, &b.project).await?;
    for e in crate::events::bootstrap(ctx, b, &user) {
        unit.audit(e);
    }
    Ok(user)
}

pub(super) async fn insert_project(
    unit: &mut Unit<'_>,
    p: &Project,
    is_default: bool,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO projects (id, org_id, name, is_default, status, redirect_uris, allowed_origins, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(p.id.0)
    .bind(p.org_id.0)
    .bind(p.name.as_str())
    .bind(is_default)
    .bind(p.status.as_str())
    .bind(to_json_list(&p.redirect_uris, |u| u.as_str()))
    .bind(to_json_list(&p.allowed_origins, |o| o.as_str()))
    .bind(micros(p.created_at))
    .bind(micros(p.updated_at))
    .execute(&mut **unit)
    .await?;
    Ok(())
}

pub(super) async fn member_record(
    unit: &mut Unit<'_>,
    org_id: OrgId,
    user_id: UserId,
) -> StoreResult<MemberRecord> {
    let row = sqlx::query(concat!(
        "SELECT ",
        user_cols!(),
        ", m.role, m.created_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = ? AND m.user_id = ? AND m.deleted_at IS NULL"
    ))
    .bind(org_id.0)
    .bind(user_id.0)
    .fetch_optional(&mut **unit)
    .await?
    .ok_or(StoreError::NotFound)?;
    Ok(MemberRecord {
        user: user_from(&row)?,
        role: role(row.try_get("role")?)?,
        joined_at: from_micros(row.try_get("joined_at")?)?,
    })
}

/// The active membership's role, or NotFound; refuses ([`change_membership`]) to take away
/// the org's last owner.
pub(super) async fn guard_last_owner(
    unit: &mut Unit<'_>,
    org_id: OrgId,
    user_id: UserId,
    new_role: Option<Role>,
) -> StoreResult<Role> {
    let row = sqlx::query(
        "SELECT m.role, (SELECT COUNT(*) FROM memberships o \
           WHERE o.org_id = m.org_id AND o.role = 'owner' AND o.deleted_at IS NULL) AS owners \
         FROM memberships m WHERE m.org_id = ? AND m.user_id = ? AND m.deleted_at IS NULL",
    )
    .bind(org_id.0)
    .bind(user_id.0)
    .fetch_optional(&mut **unit)
    .await?
    .ok_or(StoreError::NotFound)?;
    let current = role(row.try_get("role")?)?;
    let owners: i64 = row.try_get("owners")?;
    change_membership(current, new_role, u64::try_from(owners).unwrap_or(0))?;
    Ok(current)
}

/// Ends one of the user's live sessions, and the refresh families that end with it, with
/// its `session.revoked` event and the notice caches need; false when there is no such live
/// session.
pub(super) async fn end_session(
    unit: &mut Unit<'_>,
    ctx: &AuditContext,
    user_id: UserId,
    id: SessionId,
    now: Timestamp,
) -> StoreResult<bool> {
    let n = sqlx::query(
        "UPDATE sessions SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
    )
    .bind(micros(now))
    .bind(id.0)
    .bind(user_id.0)
    .execute(&mut **unit)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    super::grants::end_session_families(unit, id, now).await?;
    unit.audit(crate::events::session_revoked(ctx, None, user_id, id));
    unit.changed(Change::SessionRevoked(id));
    Ok(true)
}
