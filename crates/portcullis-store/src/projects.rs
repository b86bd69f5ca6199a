//! What the store knows about a project before anyone decided who may use it: the facts an
//! authorization decision is made from, and a project's status for endpoints that know
//! only a client. Changing an org's projects goes through [`crate::OrgScope`].

use async_trait::async_trait;
use portcullis_core::{ProjectId, ProjectStatus, UserId};

use crate::{ProjectAccessRecord, StoreResult};

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
