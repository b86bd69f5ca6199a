//! Orgs: creating them, listing them for operators, a user's own memberships — and the
//! tenant-scoped handle, [`OrgScope`], through which an org's own data is reached.
//!
//! An [`OrgScope`] is handed out by [`crate::Store::org`] for an [`OrgAccess`], and an
//! `OrgAccess` comes only from [`portcullis_core::authz`]'s decisions (its fields are
//! private). So code that has not decided may not even name an org-scoped call: the
//! compiler, not a reviewer, enforces the check. The handle carries the access; its calls
//! take none.

use async_trait::async_trait;
use portcullis_core::{
    AuditContext, AuditEvent, AuditQuery, Membership, Org, OrgAccess, OrgId, Oversight, Project,
    ProjectId, Role, SessionId, Timestamp, UserId,
};

use crate::domains::DomainScope;
use crate::{
    AddedMember, MemberChange, MemberRecord, MemberSession, MembershipView, NewMember,
    ProjectPatch, StoreResult,
};

#[async_trait]
pub trait OrgStore: Send + Sync {
    /// Creates an org with its default project and makes `creator` owner of both.
    async fn create_org(
        &self,
        creator: UserId,
        org: &Org,
        project: &Project,
        ctx: &AuditContext,
    ) -> StoreResult<()>;
    /// Every org, for platform operators.
    async fn list_all_orgs(&self) -> StoreResult<Vec<Org>>;
    /// The user's membership row of the org (active or ended): what a decision is made from.
    async fn membership(&self, org_id: OrgId, user_id: UserId) -> StoreResult<Option<Membership>>;
    /// The caller's own memberships, with the projects visible to them in each.
    async fn memberships_of_user(&self, user_id: UserId) -> StoreResult<Vec<MembershipView>>;
}

/// One org's data, for a holder of an [`OrgAccess`] to it.
#[async_trait]
pub trait OrgScope: Send + Sync {
    /// The access this handle was made from.
    fn access(&self) -> &OrgAccess;

    /// The org's claims on DNS domains.
    fn domains(&self) -> Box<dyn DomainScope + '_>;
    /// The org's plan and subscription, and creating projects within its limits.
    fn platform(&self) -> Box<dyn crate::PlatformScope + '_>;
    /// The org's invitations.
    fn invitations(&self) -> Box<dyn crate::InvitationScope + '_>;
    /// The org's upstream SSO providers.
    fn sso_providers(&self) -> Box<dyn crate::SsoProviderScope + '_>;

    /// The org itself.
    async fn details(&self) -> StoreResult<Org>;

    async fn list_members(&self) -> StoreResult<Vec<MemberRecord>>;
    async fn add_member(&self, member: &NewMember, ctx: &AuditContext) -> StoreResult<AddedMember>;
    /// Whether the access's actor may make the change is decided inside the transaction, on
    /// the roles as they are under its lock. Fails with `NotFound` when `user_id` is no
    /// active member, `Conflict` when it would leave the org without an owner.
    async fn change_member_role(
        &self,
        user_id: UserId,
        role: Role,
        ctx: &AuditContext,
    ) -> StoreResult<MemberChange<MemberRecord>>;
    /// Ends a membership (softly); decided like [`OrgScope::change_member_role`]. A member
    /// may always remove themselves.
    async fn remove_member(
        &self,
        user_id: UserId,
        ctx: &AuditContext,
    ) -> StoreResult<MemberChange<()>>;

    /// Active sessions of the org's active members whom `oversight` covers.
    async fn list_org_sessions(
        &self,
        now: Timestamp,
        oversight: &Oversight,
    ) -> StoreResult<Vec<MemberSession>>;
    /// Revokes a session of a current member of the org whom `oversight` covers; false
    /// when there is none such.
    async fn revoke_org_session(
        &self,
        id: SessionId,
        oversight: &Oversight,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;

    async fn list_projects(&self) -> StoreResult<Vec<Project>>;
    async fn create_project(&self, project: &Project, ctx: &AuditContext) -> StoreResult<()>;
    async fn update_project(
        &self,
        id: ProjectId,
        patch: &ProjectPatch,
        ctx: &AuditContext,
    ) -> StoreResult<Project>;

    /// Newest first: the org's events, and the events outside any org (sign-ins, sessions)
    /// of its active members whom `q.oversight` covers.
    async fn query_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;
}
