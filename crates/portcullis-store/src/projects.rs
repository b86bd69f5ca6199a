//! What the store knows about a project before anyone decided who may use it: the facts an
//! authorization decision is made from, and a project's status for endpoints that know
//! only a client. Listing and changing an org's projects goes through
//! [`crate::OrgScope::projects`]; a project's own data (its clients, secret keys and
//! webhooks) through [`ProjectScope`].

use async_trait::async_trait;
use portcullis_core::{
    AuditContext, OrgAccess, Project, ProjectAccess, ProjectId, ProjectStatus, UserId,
};

use crate::clients::{self, ClientScope};
use crate::platform::{self, SecretKeyScope};
use crate::scope::{OrgHandle, ProjectHandle};
use crate::webhooks::{self, WebhookScope};
use crate::{ProjectAccessRecord, ProjectPatch, StoreResult};

#[async_trait]
pub trait ProjectStore: Send + Sync {
    /// A user's way into a project: the project, their org membership and project role.
    async fn project_access(
        &self,
        project_id: ProjectId,
        user_id: UserId,
    ) -> StoreResult<Option<ProjectAccessRecord>>;
    /// A project's status, for endpoints that know only a client (the OAuth endpoints).
    async fn project_status(&self, project_id: ProjectId) -> StoreResult<Option<ProjectStatus>>;
}

/// One project's data, for a holder of a [`ProjectAccess`] to it: handed out by
/// [`crate::Store::project`]. Every call through it is filtered by the access's org and
/// project; its calls take neither.
pub trait ProjectScope: Send + Sync {
    /// The access this handle was made from.
    fn access(&self) -> &ProjectAccess;
    /// The project's OAuth clients.
    fn clients(&self) -> &dyn ClientScope;
    /// The project's mode and secret keys.
    fn keys(&self) -> &dyn SecretKeyScope;
    /// The project's webhook endpoints and their deliveries.
    fn webhooks(&self) -> &dyn WebhookScope;
}

impl<S> ProjectScope for ProjectHandle<'_, S>
where
    S: clients::ByAccess + platform::ByProjectAccess + webhooks::ByProjectAccess + ?Sized,
{
    fn access(&self) -> &ProjectAccess {
        &self.access
    }

    fn clients(&self) -> &dyn ClientScope {
        self
    }

    fn keys(&self) -> &dyn SecretKeyScope {
        self
    }

    fn webhooks(&self) -> &dyn WebhookScope {
        self
    }
}

/// One org's projects, for a holder of an [`OrgAccess`] to it.
#[async_trait]
pub trait OrgProjectScope: Send + Sync {
    async fn list_projects(&self) -> StoreResult<Vec<Project>>;
    async fn create_project(&self, project: &Project, ctx: &AuditContext) -> StoreResult<()>;
    async fn update_project(
        &self,
        id: ProjectId,
        patch: &ProjectPatch,
        ctx: &AuditContext,
    ) -> StoreResult<Project>;
}

/// What the backends implement; reached only through [`OrgProjectScope`] on an org handle.
#[async_trait]
pub(crate) trait ByAccess: Send + Sync {
    async fn list_projects(&self, access: &OrgAccess) -> StoreResult<Vec<Project>>;
    async fn create_project(
        &self,
        access: &OrgAccess,
        project: &Project,
        ctx: &AuditContext,
    ) -> StoreResult<()>;
    async fn update_project(
        &self,
        access: &OrgAccess,
        id: ProjectId,
        patch: &ProjectPatch,
        ctx: &AuditContext,
    ) -> StoreResult<Project>;
}

#[async_trait]
impl<S: ByAccess + ?Sized> OrgProjectScope for OrgHandle<'_, S> {
    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        self.store.list_projects(&self.access).await
    }

    async fn create_project(&self, project: &Project, ctx: &AuditContext) -> StoreResult<()> {
        self.store.create_project(&self.access, project, ctx).await
    }

    async fn update_project(
        &self,
        id: ProjectId,
        patch: &ProjectPatch,
        ctx: &AuditContext,
    ) -> StoreResult<Project> {
        self.store
            .update_project(&self.access, id, patch, ctx)
            .await
    }
}
