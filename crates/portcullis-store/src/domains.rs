//! Verified domains: an org's claims on DNS domains, and the questions sign-in and member
//! management ask of them ("which org verified this domain", "is this address in one of
//! org X's verified domains").
//!
//! Claims are tenant-owned: management calls go through the org handle
//! ([`crate::OrgScope::domains`], made from the caller's [`OrgAccess`]). The
//! questions look across tenants (platform scope on PostgreSQL), because an upstream
//! sign-in or an invitation knows only an org id and an address. At most one org holds a
//! domain verified (a unique index enforces it across tenants); pending claims by several
//! orgs coexist, each with its own token, so nobody can block the real owner by claiming
//! first.

use async_trait::async_trait;
use portcullis_core::{
    Action, AuditContext, AuditEvent, DomainName, Email, OrgAccess, OrgDomain, OrgId,
    VerificationMethod,
};
use serde_json::json;

use crate::scope::OrgHandle;
use crate::{StoreError, StoreResult};

/// What a second org verifying an already verified domain is told.
pub const VERIFIED_ELSEWHERE: &str = "this domain is verified by another organization; it must delete its claim before this one can be verified";

/// The questions sign-in and member management ask, across tenants.
#[async_trait]
pub trait DomainStore: Send + Sync {
    /// The live org that holds `domain` verified, if any (across tenants).
    async fn verified_owner(&self, domain: &DomainName) -> StoreResult<Option<OrgId>>;

    /// The domains `org_id` holds verified, in name order.
    async fn verified_domains(&self, org_id: OrgId) -> StoreResult<Vec<DomainName>>;

    /// Whether `email` is an address in one of the domains `org_id` holds verified.
    async fn email_domain_verified(&self, org_id: OrgId, email: &Email) -> StoreResult<bool> {
        let Some(domain) = DomainName::of_email(email) else {
            return Ok(false);
        };
        Ok(self.verified_owner(&domain).await? == Some(org_id))
    }
}

/// One org's claims, reached through [`crate::OrgScope::domains`].
#[async_trait]
pub trait DomainScope: Send + Sync {
    /// Stores a new pending claim of the handle's org (`domain.created`). `Conflict` when
    /// this org already claimed the domain, or another org holds it verified.
    async fn create_domain(&self, d: &OrgDomain, ctx: &AuditContext) -> StoreResult<()>;

    /// The org's claims, oldest first.
    async fn list_domains(&self) -> StoreResult<Vec<OrgDomain>>;

    async fn get_domain(&self, domain: &DomainName) -> StoreResult<Option<OrgDomain>>;

    /// Marks the org's claim verified (`domain.verified`, with the method). `NotFound`
    /// when the org has no such claim; `Conflict` ([`VERIFIED_ELSEWHERE`]) when another org
    /// holds the domain verified. Verifying a verified claim again changes nothing.
    async fn verify_domain(
        &self,
        domain: &DomainName,
        method: VerificationMethod,
        ctx: &AuditContext,
    ) -> StoreResult<OrgDomain>;

    /// Deletes the org's claim (`domain.deleted`); `NotFound` when there is none.
    async fn delete_domain(&self, domain: &DomainName, ctx: &AuditContext) -> StoreResult<()>;
}

/// What the backends implement; reached only through [`DomainScope`] on an org handle.
#[async_trait]
pub(crate) trait ByAccess: Send + Sync {
    async fn create_domain(
        &self,
        access: &OrgAccess,
        d: &OrgDomain,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    async fn list_domains(&self, access: &OrgAccess) -> StoreResult<Vec<OrgDomain>>;

    async fn get_domain(
        &self,
        access: &OrgAccess,
        domain: &DomainName,
    ) -> StoreResult<Option<OrgDomain>>;

    async fn verify_domain(
        &self,
        access: &OrgAccess,
        domain: &DomainName,
        method: VerificationMethod,
        ctx: &AuditContext,
    ) -> StoreResult<OrgDomain>;

    async fn delete_domain(
        &self,
        access: &OrgAccess,
        domain: &DomainName,
        ctx: &AuditContext,
    ) -> StoreResult<()>;
}

#[async_trait]
impl<S: ByAccess + ?Sized> DomainScope for OrgHandle<'_, S> {
    async fn create_domain(&self, d: &OrgDomain, ctx: &AuditContext) -> StoreResult<()> {
        self.store.create_domain(&self.access, d, ctx).await
    }

    async fn list_domains(&self) -> StoreResult<Vec<OrgDomain>> {
        self.store.list_domains(&self.access).await
    }

    async fn get_domain(&self, domain: &DomainName) -> StoreResult<Option<OrgDomain>> {
        self.store.get_domain(&self.access, domain).await
    }

    async fn verify_domain(
        &self,
        domain: &DomainName,
        method: VerificationMethod,
        ctx: &AuditContext,
    ) -> StoreResult<OrgDomain> {
        self.store
            .verify_domain(&self.access, domain, method, ctx)
            .await
    }

    async fn delete_domain(&self, domain: &DomainName, ctx: &AuditContext) -> StoreResult<()> {
        self.store.delete_domain(&self.access, domain, ctx).await
    }
}

pub(crate) fn domain_created(ctx: &AuditContext, d: &OrgDomain) -> AuditEvent {
    ctx.event(
        Some(d.org_id),
        Action::DomainCreated,
        format!("domain:{}", d.domain),
    )
    .with_details(json!({"domain": d.domain.as_str()}))
}

pub(crate) fn domain_verified(ctx: &AuditContext, d: &OrgDomain) -> AuditEvent {
    ctx.event(
        Some(d.org_id),
        Action::DomainVerified,
        format!("domain:{}", d.domain),
    )
    .with_details(json!({
        "domain": d.domain.as_str(),
        "method": d.method.map(VerificationMethod::as_str),
    }))
}

pub(crate) fn domain_deleted(ctx: &AuditContext, d: &OrgDomain) -> AuditEvent {
    ctx.event(
        Some(d.org_id),
        Action::DomainDeleted,
        format!("domain:{}", d.domain),
    )
    .with_details(json!({"domain": d.domain.as_str(), "status": d.status.as_str()}))
}

/// A unique violation while verifying means another org got there first.
pub(crate) fn verified_elsewhere(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Conflict(VERIFIED_ELSEWHERE.into()),
        other => other,
    }
}

pub(crate) fn claimed_already() -> StoreError {
    StoreError::Conflict("this organization has already claimed this domain".into())
}
