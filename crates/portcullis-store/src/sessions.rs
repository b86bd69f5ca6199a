//! Browser sessions, as their users see them. Sessions belong to users, not tenants; an org
//! admin's view of its members' sessions goes through [`crate::OrgScope`].

use async_trait::async_trait;
use portcullis_core::{AuditContext, AuditEvent, Session, SessionId, Timestamp, TokenHash, UserId};

use crate::{SessionWithUser, StoreResult};

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
