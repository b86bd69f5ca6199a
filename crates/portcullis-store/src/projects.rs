//! What the store knows about a project before anyone decided who may use it: the facts an
//! authorization decision is made from, and a project's status for endpoints that know
//! only a client. Changing an org's projects goes through [`crate::OrgScope`]; a project's
//! own data (its clients, secret keys and webhooks) through [`ProjectScope`].

use async_trait::async_trait;
use portcullis_core::{ProjectAccess, ProjectId, ProjectStatus, UserId};

use crate::clients::{self, ClientScope};
use crate::platform::{self, SecretKeyScope};
use crate::scope::ProjectHandle;
use crate::webhooks::{self, WebhookScope};
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
