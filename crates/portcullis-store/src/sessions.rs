//! Browser sessions, as their users see them. Sessions belong to users, not tenants; an org
//! admin's view of its members' sessions goes through [`crate::OrgScope::sessions`].

use async_trait::async_trait;
use portcullis_core::{
    AuditContext, AuditEvent, OrgAccess, Oversight, Session, SessionId, Timestamp, TokenHash,
    UserId,
};

use crate::scope::OrgHandle;
use crate::{MemberSession, SessionWithUser, StoreResult};

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session with its `session.created` event and any `also` events (the
    /// `login.succeeded` that caused it), all in one transaction.
    async fn create_session(
        &self,
        session: &Session,
        ctx: &AuditContext,
        also: &[AuditEvent],
    ) -> StoreResult<()>;
    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<SessionWithUser>>;
    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>>;
    /// Revokes one of the user's own sessions; false when there is no such active session.
    async fn revoke_user_session(
        &self,
        user_id: UserId,
        id: SessionId,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;
}

/// The sessions of one org's members, as its admins oversee them.
#[async_trait]
pub trait OrgSessionScope: Send + Sync {
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
}

/// What the backends implement; reached only through [`OrgSessionScope`] on an org handle.
#[async_trait]
pub(crate) trait ByAccess: Send + Sync {
    async fn list_org_sessions(
        &self,
        access: &OrgAccess,
        now: Timestamp,
        oversight: &Oversight,
    ) -> StoreResult<Vec<MemberSession>>;
    async fn revoke_org_session(
        &self,
        access: &OrgAccess,
        id: SessionId,
        oversight: &Oversight,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;
}

#[async_trait]
impl<S: ByAccess + ?Sized> OrgSessionScope for OrgHandle<'_, S> {
    async fn list_org_sessions(
        &self,
        now: Timestamp,
        oversight: &Oversight,
    ) -> StoreResult<Vec<MemberSession>> {
        self.store
            .list_org_sessions(&self.access, now, oversight)
            .await
    }

    async fn revoke_org_session(
        &self,
        id: SessionId,
        oversight: &Oversight,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        self.store
            .revoke_org_session(&self.access, id, oversight, ctx)
            .await
    }
}
