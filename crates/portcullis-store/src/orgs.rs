//! Orgs: creating them, listing them for operators, a user's own memberships — and the
//! tenant-scoped handle, [`OrgScope`], through which an org's own data is reached.
//!
//! An [`OrgScope`] is handed out by [`crate::Store::org`] for an [`OrgAccess`], and an
//! `OrgAccess` comes only from [`portcullis_core::authz`]'s decisions (its fields are
//! private). So code that has not decided may not even name an org-scoped call: the
//! compiler, not a reviewer, enforces the check. The handle carries the access; its calls
//! take none.

use async_trait::async_trait;
use portcullis_core::{AuditContext, Membership, Org, OrgAccess, OrgId, Project, UserId};

use crate::audit::{self, AuditScope};
use crate::domains::{self, DomainScope};
use crate::members::{self, MemberScope};
use crate::projects::{self, OrgProjectScope};
use crate::scope::OrgHandle;
use crate::sessions::{self, OrgSessionScope};
use crate::{MembershipView, StoreResult, invitations, platform, sso};

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

/// One org's data, for a holder of an [`OrgAccess`] to it: the org itself, and a handle per
/// area. Implemented once, for both backends, by the handle in `scope.rs`.
#[async_trait]
pub trait OrgScope: Send + Sync {
    /// The access this handle was made from.
    fn access(&self) -> &OrgAccess;

    /// The org's members and their roles.
    fn members(&self) -> Box<dyn MemberScope + '_>;
    /// The sessions of the org's members, as its admins oversee them.
    fn sessions(&self) -> Box<dyn OrgSessionScope + '_>;
    /// The org's projects.
    fn projects(&self) -> Box<dyn OrgProjectScope + '_>;
    /// The org's audit trail.
    fn audit(&self) -> Box<dyn AuditScope + '_>;
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
}

/// What the backends implement; reached only through [`OrgScope::details`].
#[async_trait]
pub(crate) trait ByAccess: Send + Sync {
    async fn details(&self, access: &OrgAccess) -> StoreResult<Org>;
}

#[async_trait]
impl<S> OrgScope for OrgHandle<'_, S>
where
    S: ByAccess
        + members::ByAccess
        + sessions::ByAccess
        + projects::ByAccess
        + audit::ByAccess
        + domains::ByAccess
        + platform::ByAccess
        + invitations::ByAccess
        + sso::ByAccess
        + ?Sized,
{
    fn access(&self) -> &OrgAccess {
        &self.access
    }

    fn members(&self) -> Box<dyn MemberScope + '_> {
        Box::new(OrgHandle::new(self.store, &self.access))
    }

    fn sessions(&self) -> Box<dyn OrgSessionScope + '_> {
        Box::new(OrgHandle::new(self.store, &self.access))
    }

    fn projects(&self) -> Box<dyn OrgProjectScope + '_> {
        Box::new(OrgHandle::new(self.store, &self.access))
    }

    fn audit(&self) -> Box<dyn AuditScope + '_> {
        Box::new(OrgHandle::new(self.store, &self.access))
    }

    fn domains(&self) -> Box<dyn DomainScope + '_> {
        Box::new(OrgHandle::new(self.store, &self.access))
    }

    fn platform(&self) -> Box<dyn crate::PlatformScope + '_> {
        Box::new(OrgHandle::new(self.store, &self.access))
    }

    fn invitations(&self) -> Box<dyn crate::InvitationScope + '_> {
        Box::new(OrgHandle::new(self.store, &self.access))
    }

    fn sso_providers(&self) -> Box<dyn crate::SsoProviderScope + '_> {
        Box::new(OrgHandle::new(self.store, &self.access))
    }

    async fn details(&self) -> StoreResult<Org> {
        self.store.details(&self.access).await
    }
}
