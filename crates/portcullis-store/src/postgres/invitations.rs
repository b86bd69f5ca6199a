//! Invitations and password-setup links on PostgreSQL. Spending a token locks its row
//! (`FOR UPDATE`) and updates it conditionally, so of concurrent acceptances exactly one
//! finds the invitation still pending; the membership it makes is written under the org's
//! lock like every other membership change.

use async_trait::async_trait;
use portcullis_core::invitation::{AcceptRefusal, Invitation, InvitationState, check_acceptance};
use portcullis_core::password::PasswordHash;
use portcullis_core::{
    AuditContext, Email, InvitationId, OrgAccess, OrgId, ProjectId, Timestamp, TokenHash, User,
    UserId, ValidationError,
};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use super::PgStore;
use super::members::admit;
use super::rows::{json_list, role, user_cols, user_from};
use super::statements::{insert_signup_bootstrap, lock_org, member_record};
use super::unit::Unit;
use crate::invitations::{Acceptance, ByAccess, InvitationStore, InvitationToMe};
use crate::unit::Scope;
use crate::{Change, SignupBootstrap, StoreError, StoreResult};

const COLS: &str = "id, org_id, email, role, project_ids, invited_by, created_at, expires_at, \
                    accepted_at, revoked_at";

fn project_id(s: &str) -> Result<ProjectId, ValidationError> {
    ProjectId::parse(s).ok_or_else(|| ValidationError::new("project_ids", "not a project id"))
}

fn invitation_from(row: &PgRow) -> StoreResult<Invitation> {
    Ok(Invitation {
        id: InvitationId(row.try_get("id")?),
        org_id: OrgId(row.try_get("org_id")?),
        email: Email::parse(row.try_get::<&str, _>("email")?)?,
        role: role(row.try_get("role")?)?,
        project_ids: json_list(row, "project_ids", project_id)?,
        invited_by: row
            .try_get::<Option<uuid::Uuid>, _>("invited_by")?
            .map(UserId),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn state_of(row: &PgRow, inv: &Invitation, now: Timestamp) -> StoreResult<InvitationState> {
    let accepted = row
        .try_get::<Option<Timestamp>, _>("accepted_at")?
        .is_some();
    let revoked = row.try_get::<Option<Timestamp>, _>("revoked_at")?.is_some();
    Ok(InvitationState::of(accepted, revoked, inv.expires_at, now))
}

/// Spends the invitation behind `token_hash` for `user` inside the caller's (platform) unit.
async fn accept_in(
    unit: &mut Unit<'_>,
    token_hash: &TokenHash,
    user: &User,
    now: Timestamp,
    ctx: &AuditContext,
) -> StoreResult<Acceptance> {
    let sql = format!("SELECT {COLS} FROM invitations WHERE token_hash = $1 FOR UPDATE");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&token_hash.0[..])
        .fetch_optional(&mut **unit)
        .await?;
    let Some(row) = row else {
        return Ok(Acceptance::Refused(AcceptRefusal::Unavailable));
    };
    let inv = invitation_from(&row)?;
    if let Err(refusal) = check_acceptance(state_of(&row, &inv, now)?, &inv.email, &user.email) {
        return Ok(Acceptance::Refused(refusal));
    }
    let spent = sqlx::query(
        "UPDATE invitations SET accepted_at = $1, accepted_by = $2 \
         WHERE id = $3 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(user.id.0)
    .bind(inv.id.0)
    .execute(&mut **unit)
    .await?
    .rows_affected();
    if spent != 1 {
        return Ok(Acceptance::Refused(AcceptRefusal::Unavailable));
    }
    lock_org(unit, inv.org_id).await?;
    admit(unit, inv.org_id, user.id, inv.role, now).await?;
    for project in &inv.project_ids {
        // A project deleted since the invitation was made is skipped.
        sqlx::query(
            "INSERT INTO project_memberships (project_id, org_id, user_id, role, created_at) \
             SELECT p.id, p.org_id, $1, 'member', $2 FROM projects p WHERE p.id = $3 AND p.org_id = $4 \
             ON CONFLICT (project_id, user_id) DO NOTHING",
        )
        .bind(user.id.0)
        .bind(now)
        .bind(project.0)
        .bind(inv.org_id.0)
        .execute(&mut **unit)
        .await?;
    }
    for e in crate::events::invitation_accepted(ctx, &inv, user) {
        unit.audit(e);
    }
    unit.changed(Change::UserChanged(user.id));
    let member = member_record(unit, inv.org_id, user.id).await?;
    Ok(Acceptance::Accepted {
        invitation: inv,
        member,
    })
}

#[async_trait]
impl ByAccess for PgStore {
    async fn create_invitation(
        &self,
        access: &OrgAccess,
        inv: &Invitation,
        token_hash: &TokenHash,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        let org_id = access.org_id();
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        super::platform::gate(
            self,
            &mut unit,
            org_id,
            portcullis_core::plan::Resource::Seats,
        )
        .await?;
        // Serializes the duplicate checks below with other invitations and memberships.
        lock_org(&mut unit, org_id).await?;
        for project in &inv.project_ids {
            let found: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM projects WHERE id = $1 AND org_id = $2")
                    .bind(project.0)
                    .bind(org_id.0)
                    .fetch_optional(&mut *unit)
                    .await?;
            if found.is_none() {
                return Err(StoreError::Invalid(ValidationError::new(
                    "project_ids",
                    format!("no project {project} in this organization"),
                )));
            }
        }
        let member: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND m.deleted_at IS NULL AND u.email = $2",
        )
        .bind(org_id.0)
        .bind(inv.email.as_str())
        .fetch_optional(&mut *unit)
        .await?;
        if member.is_some() {
            return Err(portcullis_core::MembershipConflict::AlreadyMember.into());
        }
        let pending: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM invitations WHERE org_id = $1 AND email = $2 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3",
        )
        .bind(org_id.0)
        .bind(inv.email.as_str())
        .bind(inv.created_at)
        .fetch_optional(&mut *unit)
        .await?;
        if pending.is_some() {
            return Err(StoreError::Conflict(
                "this email already has a pending invitation to the organization; revoke it first"
                    .into(),
            ));
        }
        sqlx::query(
            "INSERT INTO invitations (id, org_id, email, role, project_ids, token_hash, invited_by, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(inv.id.0)
        .bind(org_id.0)
        .bind(inv.email.as_str())
        .bind(inv.role.as_str())
        .bind(Json(&inv.project_ids))
        .bind(&token_hash.0[..])
        .bind(inv.invited_by.map(|u| u.0))
        .bind(inv.created_at)
        .bind(inv.expires_at)
        .execute(&mut *unit)
        .await?;
        unit.audit(crate::events::invitation_created(ctx, inv));
        unit.commit().await
    }

    async fn pending_invitations(
        &self,
        access: &OrgAccess,
        now: Timestamp,
    ) -> StoreResult<Vec<Invitation>> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let sql = format!(
            "SELECT {COLS} FROM invitations WHERE org_id = $1 AND accepted_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2 ORDER BY created_at DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(access.org_id().0)
            .bind(now)
            .fetch_all(&mut *unit)
            .await?;
        unit.commit().await?;
        rows.iter().map(invitation_from).collect()
    }

    async fn pending_invitation_count(
        &self,
        access: &OrgAccess,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut unit = self.unit(Scope::Org(access.org_id())).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM invitations WHERE org_id = $1 AND accepted_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(access.org_id().0)
        .bind(now)
        .fetch_one(&mut *unit)
        .await?;
        unit.commit().await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn revoke_invitation(
        &self,
        access: &OrgAccess,
        id: InvitationId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        let org_id = access.org_id();
        let mut unit = self.unit(Scope::Org(org_id)).await?;
        let n = sqlx::query(
            "UPDATE invitations SET revoked_at = $1 WHERE id = $2 AND org_id = $3 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(id.0)
        .bind(org_id.0)
        .execute(&mut *unit)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        unit.audit(crate::events::invitation_revoked(ctx, org_id, id));
        unit.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl InvitationStore for PgStore {
    async fn pending_invitations_to(
        &self,
        email: &Email,
        now: Timestamp,
    ) -> StoreResult<Vec<InvitationToMe>> {
        let mut unit = self.unit(Scope::Platform).await?;
        let sql = format!(
            "SELECT {COLS}, (SELECT name FROM orgs WHERE orgs.id = invitations.org_id) AS org_name \
             FROM invitations WHERE email = $1 AND accepted_at IS NULL AND revoked_at IS NULL \
             AND expires_at > $2 ORDER BY created_at DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email.as_str())
            .bind(now)
            .fetch_all(&mut *unit)
            .await?;
        unit.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(InvitationToMe {
                    invitation: invitation_from(r)?,
                    org_name: r.try_get("org_name")?,
                })
            })
            .collect()
    }

    async fn accept_invitation(
        &self,
        token_hash: &TokenHash,
        user: &User,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<Acceptance> {
        let mut unit = self.unit(Scope::Platform).await?;
        let outcome = accept_in(&mut unit, token_hash, user, now, ctx).await?;
        if matches!(outcome, Acceptance::Accepted { .. }) {
            unit.commit().await?;
        }
        Ok(outcome)
    }

    async fn signup_with_invitation(
        &self,
        b: &SignupBootstrap,
        token_hash: &TokenHash,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<(Option<User>, Acceptance)> {
        let mut unit = self.unit(Scope::Platform).await?;
        let user = insert_signup_bootstrap(&mut unit, b, ctx).await?;
        let outcome = accept_in(&mut unit, token_hash, &user, now, ctx).await?;
        if !matches!(outcome, Acceptance::Accepted { .. }) {
            // Dropping the unit rolls the account back too.
            return Ok((None, outcome));
        }
        unit.commit().await?;
        Ok((Some(user), outcome))
    }

    async fn redeem_password_setup(
        &self,
        token_hash: &TokenHash,
        password_hash: &PasswordHash,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<Option<User>> {
        let mut unit = self.unit(Scope::Platform).await?;
        let spent = sqlx::query(
            "UPDATE password_setup_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id, org_id",
        )
        .bind(now)
        .bind(&token_hash.0[..])
        .fetch_optional(&mut *unit)
        .await?;
        let Some(spent) = spent else { return Ok(None) };
        let user_id = UserId(spent.try_get("user_id")?);
        let org_id = OrgId(spent.try_get("org_id")?);
        let n =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(password_hash.as_str())
                .bind(user_id.0)
                .execute(&mut *unit)
                .await?
                .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users u WHERE u.id = $1"
        ))
        .bind(user_id.0)
        .fetch_one(&mut *unit)
        .await?;
        let user = user_from(&row)?;
        unit.audit(crate::events::password_set(ctx, org_id, user_id));
        unit.changed(Change::UserChanged(user_id));
        unit.commit().await?;
        Ok(Some(user))
    }
}
