//! The audit events each store operation writes in its own transaction. Both backends call
//! these, so the trail reads the same whichever database is underneath.

use portcullis_core::{
    Action, AuditContext, AuditEvent, Org, OrgId, Project, Role, Session, SessionId, User, UserId,
};
use serde_json::json;

use crate::SignupBootstrap;

pub(crate) fn bootstrap(ctx: &AuditContext, b: &SignupBootstrap, user: &User) -> Vec<AuditEvent> {
    let org = Some(b.org.id);
    let ctx = if b.self_signup {
        ctx.with_actor(user.id)
    } else {
        ctx.clone()
    };
    let action = if b.self_signup {
        Action::UserSignup
    } else {
        Action::UserCreated
    };
    vec![
        ctx.event(org, action, format!("user:{}", user.id))
            .with_details(json!({"posix_uid": user.posix.uid})),
        ctx.event(org, Action::OrgCreated, format!("org:{}", b.org.id))
            .with_details(json!({"slug": b.org.slug.as_str(), "personal": b.org.personal})),
        ctx.event(
            org,
            Action::ProjectCreated,
            format!("project:{}", b.project.id),
        )
        .with_details(json!({"default": true})),
        ctx.event(org, Action::MemberAdded, format!("user:{}", user.id))
            .with_details(json!({"role": "owner"})),
    ]
}

pub(crate) fn org_created(ctx: &AuditContext, org: &Org, project: &Project) -> Vec<AuditEvent> {
    vec![
        ctx.event(Some(org.id), Action::OrgCreated, format!("org:{}", org.id))
            .with_details(json!({"slug": org.slug.as_str(), "personal": org.personal})),
        ctx.event(
            Some(org.id),
            Action::ProjectCreated,
            format!("project:{}", project.id),
        )
        .with_details(json!({"default": true})),
    ]
}

pub(crate) fn platform_admin(ctx: &AuditContext, user: UserId, on: bool) -> AuditEvent {
    let action = if on {
        Action::PlatformAdminGranted
    } else {
        Action::PlatformAdminRevoked
    };
    ctx.event(None, action, format!("user:{user}"))
}

/// Session events belong to no org; org admins see them through the user's membership.
pub(crate) fn session_created(ctx: &AuditContext, s: &Session) -> AuditEvent {
    // What a managed member's org hears of the sign-in (no token, no hash).
    ctx.with_actor(s.user_id)
        .event(None, Action::SessionCreated, format!("session:{}", s.id))
        .with_details(json!({
            "user_id": s.user_id,
            "created_at": s.created_at.unix_timestamp(),
            "device_platform": s.device.as_ref().map(|d| &d.platform),
            "device_model": s.device.as_ref().and_then(|d| d.model.as_ref()),
            "app_version": s.device.as_ref().and_then(|d| d.app_version.as_ref()),
        }))
}

pub(crate) fn session_revoked(
    ctx: &AuditContext,
    org: Option<OrgId>,
    owner: UserId,
    id: SessionId,
) -> AuditEvent {
    ctx.event(org, Action::SessionRevoked, format!("session:{id}"))
        .with_details(json!({"user_id": owner}))
}

pub(crate) fn member_added(
    ctx: &AuditContext,
    org: OrgId,
    user: &User,
    role: Role,
    created: bool,
) -> Vec<AuditEvent> {
    let mut events = Vec::with_capacity(2);
    if created {
        events.push(
            ctx.event(Some(org), Action::UserCreated, format!("user:{}", user.id))
                .with_details(json!({"posix_uid": user.posix.uid})),
        );
    }
    events.push(
        ctx.event(Some(org), Action::MemberAdded, format!("user:{}", user.id))
            .with_details(json!({"role": role.as_str()})),
    );
    events
}

pub(crate) fn role_changed(
    ctx: &AuditContext,
    org: OrgId,
    user: UserId,
    from: Role,
    to: Role,
) -> AuditEvent {
    ctx.event(Some(org), Action::MemberRoleChanged, format!("user:{user}"))
        .with_details(json!({"from": from.as_str(), "to": to.as_str()}))
}

pub(crate) fn member_removed(ctx: &AuditContext, org: OrgId, user: UserId) -> AuditEvent {
    ctx.event(Some(org), Action::MemberRemoved, format!("user:{user}"))
}

pub(crate) fn project_created(ctx: &AuditContext, p: &Project) -> AuditEvent {
    ctx.event(
        Some(p.org_id),
        Action::ProjectCreated,
        format!("project:{}", p.id),
    )
    .with_details(json!({"name": p.name.as_str()}))
}

pub(crate) fn project_updated(ctx: &AuditContext, p: &Project, changed: &[&str]) -> AuditEvent {
    ctx.event(
        Some(p.org_id),
        Action::ProjectUpdated,
        format!("project:{}", p.id),
    )
    .with_details(json!({"changed": changed}))
}

pub(crate) fn code_replayed(
    ctx: &AuditContext,
    org: OrgId,
    client: &str,
    family: Option<uuid::Uuid>,
) -> AuditEvent {
    ctx.event(
        Some(org),
        Action::OauthCodeReplayed,
        format!("client:{client}"),
    )
    .failed()
    .with_details(json!({"revoked_family": family}))
}

pub(crate) fn refresh_reuse(ctx: &AuditContext, f: &crate::RefreshFamily) -> AuditEvent {
    // Support filters mobile sign-in by its own actions (runbooks.md).
    let action = if f.client_id.as_str() == crate::mobile::MOBILE_CLIENT_ID {
        Action::MobileRefreshReuseDetected
    } else {
        Action::OauthRefreshReuseDetected
    };
    ctx.with_actor(f.user_id)
        .event(Some(f.org_id), action, format!("refresh_family:{}", f.id))
        .failed()
        .with_details(json!({"client_id": f.client_id.as_str()}))
}

pub(crate) fn family_revoked(
    ctx: &AuditContext,
    org: OrgId,
    family: portcullis_core::FamilyId,
    reason: portcullis_core::grant::RevocationReason,
) -> AuditEvent {
    ctx.event(
        Some(org),
        Action::OauthTokenRevoked,
        format!("refresh_family:{family}"),
    )
    .with_details(json!({"reason": reason.as_str()}))
}

pub(crate) fn consent(
    ctx: &AuditContext,
    org: OrgId,
    user: UserId,
    client: &str,
    granted: bool,
    scope: &str,
) -> AuditEvent {
    let action = if granted {
        Action::OauthConsentGranted
    } else {
        Action::OauthConsentRevoked
    };
    ctx.with_actor(user)
        .event(Some(org), action, format!("client:{client}"))
        .with_details(json!({"scope": scope}))
}

pub(crate) fn ott_issued(ctx: &AuditContext, ott: &crate::OneTimeToken) -> AuditEvent {
    ctx.with_actor(ott.user_id)
        .event(
            Some(ott.org_id),
            Action::MobileOttIssued,
            format!("user:{}", ott.user_id),
        )
        .with_details(json!({
            "project_id": ott.project_id,
            "pkce": ott.code_challenge.is_some(),
            "expires_at": ott.expires_at.unix_timestamp(),
        }))
}

pub(crate) fn invitation_created(
    ctx: &AuditContext,
    inv: &portcullis_core::invitation::Invitation,
) -> AuditEvent {
    ctx.event(
        Some(inv.org_id),
        Action::InvitationCreated,
        format!("invitation:{}", inv.id),
    )
    .with_details(json!({
        "email": inv.email.as_str(),
        "role": inv.role.as_str(),
        "project_ids": inv.project_ids,
        "expires_at": inv.expires_at.unix_timestamp(),
    }))
}

pub(crate) fn invitation_revoked(
    ctx: &AuditContext,
    org: OrgId,
    id: portcullis_core::InvitationId,
) -> AuditEvent {
    ctx.event(
        Some(org),
        Action::InvitationRevoked,
        format!("invitation:{id}"),
    )
}

/// The invitee accepted: the invitation, then the membership it made (both by the invitee).
pub(crate) fn invitation_accepted(
    ctx: &AuditContext,
    inv: &portcullis_core::invitation::Invitation,
    user: &User,
) -> Vec<AuditEvent> {
    let ctx = ctx.with_actor(user.id);
    vec![
        ctx.event(
            Some(inv.org_id),
            Action::InvitationAccepted,
            format!("invitation:{}", inv.id),
        )
        .with_details(json!({"user_id": user.id, "role": inv.role.as_str()})),
        ctx.event(
            Some(inv.org_id),
            Action::MemberAdded,
            format!("user:{}", user.id),
        )
        .with_details(json!({"role": inv.role.as_str(), "invitation_id": inv.id.0})),
    ]
}

pub(crate) fn password_set(ctx: &AuditContext, org: OrgId, user: UserId) -> AuditEvent {
    ctx.with_actor(user)
        .event(Some(org), Action::UserPasswordSet, format!("user:{user}"))
        .with_details(json!({"via": "password_setup"}))
}
