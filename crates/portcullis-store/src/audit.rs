//! Audit events written on their own, outside any other change (a failed sign-in, say).
//! Events that belong to a change are written by its unit of work instead; reading an
//! org's trail goes through [`crate::OrgScope::query_audit`].

use async_trait::async_trait;
use portcullis_core::AuditEvent;

use crate::StoreResult;

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, event: &AuditEvent) -> StoreResult<()>;
}
