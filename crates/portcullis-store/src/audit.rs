//! Audit events written on their own, outside any other change (a failed sign-in, say).
//! Events that belong to a change are written by its unit of work instead; reading an
//! org's trail goes through [`crate::OrgScope::audit`].

use async_trait::async_trait;
use portcullis_core::{AuditEvent, AuditQuery, OrgAccess};

use crate::StoreResult;
use crate::scope::OrgHandle;

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<()>;
}

/// One org's audit trail, for a holder of an [`OrgAccess`] to it.
#[async_trait]
pub trait AuditScope: Send + Sync {
    /// Newest first: the org's events, and the events outside any org (sign-ins, sessions)
    /// of its active members whom `q.oversight` covers.
    async fn query_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;
}

/// What the backends implement; reached only through [`AuditScope`] on an org handle.
#[async_trait]
pub(crate) trait ByAccess: Send + Sync {
    async fn query_audit(&self, access: &OrgAccess, q: &AuditQuery)
    -> StoreResult<Vec<AuditEvent>>;
}

#[async_trait]
impl<S: ByAccess + ?Sized> AuditScope for OrgHandle<'_, S> {
    async fn query_audit(&self, q: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        self.store.query_audit(&self.access, q).await
    }
}
