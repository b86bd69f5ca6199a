//! The caller's own account: their memberships (cached per user), the project context they
//! ask for, their sessions and their OAuth consents.

use std::sync::Arc;

use portcullis_core::oauth::ClientId;
use portcullis_core::{AuditContext, Org, OrgAccess, Project, Role, Session, SessionId, UserId};
use portcullis_store::{MembershipView, Store, StoreError};

use crate::infra::session_cache::SessionCache;

#[derive(Debug, thiserror::Error)]
pub enum MeError {
    #[error("no such session")]
    NoSuchSession,
    #[error("no such consent")]
    NoSuchConsent,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A project the caller named, with the org it belongs to and their role in it.
pub struct ProjectContext {
    pub org: Org,
    pub project: Project,
    pub role: Role,
}

/// The caller's own account, for one request.
pub struct Me<'a> {
    pub store: &'a dyn Store,
    pub cache: &'a SessionCache,
    pub user_id: UserId,
    pub audit: &'a AuditContext,
}

impl Me<'_> {
    /// Every active membership with its projects; served from the cache while no change
    /// has bumped its epoch.
    pub async fn memberships(&self) -> Result<Arc<Vec<MembershipView>>, MeError> {
        if let Some(m) = self.cache.memberships(self.user_id) {
            return Ok(m);
        }
        let epoch = self.cache.epoch();
        let fresh = self.store.orgs().memberships_of_user(self.user_id).await?;
        Ok(self.cache.put_memberships(epoch, self.user_id, fresh))
    }

    /// The context of a project the caller was authorized for: its org comes from their
    /// memberships when listed there (a platform admin's need not be).
    pub async fn project_context(
        &self,
        memberships: &[MembershipView],
        project: Project,
        role: Role,
        access: &OrgAccess,
    ) -> Result<ProjectContext, MeError> {
        let org = match memberships.iter().find(|m| m.org.id == access.org_id()) {
            Some(m) => m.org.clone(),
            None => self.store.org(access).details().await?,
        };
        Ok(ProjectContext { org, project, role })
    }

    /// The caller's active sessions, newest first.
    pub async fn sessions(&self) -> Result<Vec<Session>, MeError> {
        Ok(self
            .store
            .sessions()
            .list_user_sessions(self.user_id, portcullis_core::now())
            .await?)
    }

    /// Revokes one of the caller's sessions; every node refuses it from the next request.
    pub async fn revoke_session(&self, id: SessionId) -> Result<(), MeError> {
        if !self
            .store
            .sessions()
            .revoke_user_session(self.user_id, id, self.audit)
            .await?
        {
            return Err(MeError::NoSuchSession);
        }
        Ok(())
    }

    pub async fn consents(&self) -> Result<Vec<portcullis_core::grant::Consent>, MeError> {
        Ok(self.store.grants().consents_of_user(self.user_id).await?)
    }

    /// Withdraws consent to an application; its refresh tokens for the caller are revoked.
    pub async fn revoke_consent(&self, client_id: &ClientId) -> Result<(), MeError> {
        if !self
            .store
            .grants()
            .revoke_consent(self.user_id, client_id, self.audit)
            .await?
        {
            return Err(MeError::NoSuchConsent);
        }
        Ok(())
    }
}
