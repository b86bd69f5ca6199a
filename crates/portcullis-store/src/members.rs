//! An org's members and their roles, reached through [`crate::OrgScope::members`]. A
//! user's own memberships (before any decision) are [`crate::OrgStore`]'s.

use async_trait::async_trait;
use portcullis_core::{AuditContext, OrgAccess, Role, UserId};

use crate::scope::OrgHandle;
use crate::{AddedMember, MemberChange, MemberRecord, NewMember, StoreResult};

/// One org's members, for a holder of an [`OrgAccess`] to it.
#[async_trait]
pub trait MemberScope: Send + Sync {
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
    /// Ends a membership (softly); decided like [`MemberScope::change_member_role`]. A
    /// member may always remove themselves.
    async fn remove_member(
        &self,
        user_id: UserId,
        ctx: &AuditContext,
    ) -> StoreResult<MemberChange<()>>;
}

/// What the backends implement; reached only through [`MemberScope`] on an org handle.
#[async_trait]
pub(crate) trait ByAccess: Send + Sync {
    async fn list_members(&self, access: &OrgAccess) -> StoreResult<Vec<MemberRecord>>;
    async fn add_member(
        &self,
        access: &OrgAccess,
        member: &NewMember,
        ctx: &AuditContext,
    ) -> StoreResult<AddedMember>;
    async fn change_member_role(
        &self,
        access: &OrgAccess,
        user_id: UserId,
        role: Role,
        ctx: &AuditContext,
    ) -> StoreResult<MemberChange<MemberRecord>>;
    async fn remove_member(
        &self,
        access: &OrgAccess,
        user_id: UserId,
        ctx: &AuditContext,
    ) -> StoreResult<MemberChange<()>>;
}

#[async_trait]
impl<S: ByAccess + ?Sized> MemberScope for OrgHandle<'_, S> {
    async fn list_members(&self) -> StoreResult<Vec<MemberRecord>> {
        self.store.list_members(&self.access).await
    }

    async fn add_member(&self, member: &NewMember, ctx: &AuditContext) -> StoreResult<AddedMember> {
        self.store.add_member(&self.access, member, ctx).await
    }

    async fn change_member_role(
        &self,
        user_id: UserId,
        role: Role,
        ctx: &AuditContext,
    ) -> StoreResult<MemberChange<MemberRecord>> {
        self.store
            .change_member_role(&self.access, user_id, role, ctx)
            .await
    }

    async fn remove_member(
        &self,
        user_id: UserId,
        ctx: &AuditContext,
    ) -> StoreResult<MemberChange<()>> {
        self.store.remove_member(&self.access, user_id, ctx).await
    }
}
