//! The project addressed by `X-Project-ID`: changing its settings.

use portcullis_core::{AuditContext, OrgAccess, Project, ProjectId, Role};
use portcullis_store::{ProjectPatch, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("changing a project requires the admin role in it")]
    AdminRequired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The caller's hold on one project, as the project extractor established it.
pub struct ProjectScope<'a> {
    pub access: &'a OrgAccess,
    pub project_id: ProjectId,
    /// The caller's effective role in the project.
    pub role: Role,
    pub audit: &'a AuditContext,
}

/// A hold on the project with the admin role in it; only [`ProjectScope::admin`] makes one,
/// so the role is checked before a request body is even looked at.
pub struct ProjectAdmin<'a>(ProjectScope<'a>);

impl<'a> ProjectScope<'a> {
    pub fn admin(self) -> Result<ProjectAdmin<'a>, ProjectError> {
        if self.role < Role::Admin {
            return Err(ProjectError::AdminRequired);
        }
        Ok(ProjectAdmin(self))
    }
}

impl ProjectAdmin<'_> {
    /// Applies `patch` (merged in the domain, [`ProjectPatch::apply`]) and records
    /// `project.updated`.
    pub async fn update(
        &self,
        store: &dyn Store,
        patch: &ProjectPatch,
    ) -> Result<Project, ProjectError> {
        let scope = &self.0;
        let project = store
            .org(scope.access)
            .projects()
            .update_project(scope.project_id, patch, scope.audit)
            .await?;
        // The store announces the change: answers cached on any node (e.g. `/v1/me` bodies)
        // are dropped when it commits.
        Ok(project)
    }
}
