//! OAuth clients (applications) of a project. Management calls are tenant-scoped: they go
//! through a project handle ([`crate::Store::project`], for a [`portcullis_core::ProjectAccess`])
//! and see only that project's live clients.
//! The OAuth endpoints know nothing but a client id, so [`ClientStore::client_by_id`]
//! looks across tenants (platform scope on PostgreSQL) and is the one call that does.
//!
//! Deleting is soft: the row stays (grants may still name it) with `deleted_at` set and its
//! secret digest cleared, and no call returns it again, so it never authenticates.

use async_trait::async_trait;
use portcullis_core::oauth::{ClientId, OAuthClient};
use portcullis_core::{
    Action, AuditContext, AuditEvent, OrgAccess, ProjectId, TokenHash, ValidationError,
};
use serde_json::json;

use crate::scope::ProjectHandle;
use crate::{StoreError, StoreResult};

/// Merged in the domain ([`portcullis_core::patch`]); [`ClientScope::update`] persists the result.
pub use portcullis_core::patch::ClientPatch;

/// The OAuth endpoints' view: a client by id, across tenants.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// The live client with this id in any project of any live org, for the OAuth endpoints.
    /// Deleted clients (and clients of deleted orgs) are None: they never authenticate.
    async fn client_by_id(&self, id: &ClientId) -> StoreResult<Option<OAuthClient>>;
}

/// One project's clients, reached through [`crate::ProjectScope::clients`].
#[async_trait]
pub trait ClientScope: Send + Sync {
    /// Stores a new client (already validated by [`OAuthClient::register`]) with its
    /// `client.created` event. `NotFound` when it is not a client of the handle's project.
    async fn create(&self, client: &OAuthClient, ctx: &AuditContext) -> StoreResult<()>;

    /// The project's live clients, oldest first.
    async fn list(&self) -> StoreResult<Vec<OAuthClient>>;

    /// One live client of the project; None for a deleted one or another project's.
    async fn get(&self, id: &ClientId) -> StoreResult<Option<OAuthClient>>;

    /// Applies `patch` under a row lock and writes `client.updated` naming the changed
    /// fields. `Invalid` when the result would not validate; a patch that changes nothing
    /// writes nothing.
    async fn update(
        &self,
        id: &ClientId,
        patch: &ClientPatch,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient>;

    /// Soft-deletes the client (`client.deleted`); `NotFound` when there is no live one.
    async fn delete(&self, id: &ClientId, ctx: &AuditContext) -> StoreResult<()>;

    /// Replaces a confidential client's secret digest (`client.secret_rotated`); the old
    /// secret stops verifying at once. `Invalid` (field `type`) for a public client.
    async fn rotate_secret(
        &self,
        id: &ClientId,
        new_secret: &TokenHash,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient>;
}

/// What the backends implement; reached only through [`ClientScope`] on a project handle.
#[async_trait]
pub(crate) trait ByAccess: Send + Sync {
    async fn create(
        &self,
        access: &OrgAccess,
        client: &OAuthClient,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    async fn list(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
    ) -> StoreResult<Vec<OAuthClient>>;

    async fn get(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
    ) -> StoreResult<Option<OAuthClient>>;

    async fn update(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
        patch: &ClientPatch,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient>;

    async fn delete(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    async fn rotate_secret(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
        new_secret: &TokenHash,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient>;
}

#[async_trait]
impl<S: ByAccess + ?Sized> ClientScope for ProjectHandle<'_, S> {
    async fn create(&self, client: &OAuthClient, ctx: &AuditContext) -> StoreResult<()> {
        if client.project_id != self.access.project_id() {
            return Err(StoreError::NotFound);
        }
        self.store.create(self.access.org(), client, ctx).await
    }

    async fn list(&self) -> StoreResult<Vec<OAuthClient>> {
        let a = &self.access;
        self.store.list(a.org(), a.project_id()).await
    }

    async fn get(&self, id: &ClientId) -> StoreResult<Option<OAuthClient>> {
        let a = &self.access;
        self.store.get(a.org(), a.project_id(), id).await
    }

    async fn update(
        &self,
        id: &ClientId,
        patch: &ClientPatch,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient> {
        let a = &self.access;
        self.store
            .update(a.org(), a.project_id(), id, patch, ctx)
            .await
    }

    async fn delete(&self, id: &ClientId, ctx: &AuditContext) -> StoreResult<()> {
        let a = &self.access;
        self.store.delete(a.org(), a.project_id(), id, ctx).await
    }

    async fn rotate_secret(
        &self,
        id: &ClientId,
        new_secret: &TokenHash,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient> {
        let a = &self.access;
        self.store
            .rotate_secret(a.org(), a.project_id(), id, new_secret, ctx)
            .await
    }
}

// ---- audit events, the same on both backends ----------------------------------------------

fn target(id: &ClientId) -> String {
    format!("client:{}", id.as_str())
}

pub(crate) fn created_event(ctx: &AuditContext, c: &OAuthClient) -> AuditEvent {
    ctx.event(Some(c.org_id), Action::ClientCreated, target(&c.id))
        .with_details(json!({
            "project_id": c.project_id,
            "name": c.name,
            "type": c.client_type.as_str(),
            "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        }))
}

pub(crate) fn updated_event(ctx: &AuditContext, c: &OAuthClient, changed: &[&str]) -> AuditEvent {
    ctx.event(Some(c.org_id), Action::ClientUpdated, target(&c.id))
        .with_details(json!({"project_id": c.project_id, "changed": changed}))
}

pub(crate) fn deleted_event(
    ctx: &AuditContext,
    access: &OrgAccess,
    project_id: ProjectId,
    id: &ClientId,
    name: &str,
) -> AuditEvent {
    ctx.event(Some(access.org_id()), Action::ClientDeleted, target(id))
        .with_details(json!({"project_id": project_id, "name": name}))
}

pub(crate) fn secret_rotated_event(ctx: &AuditContext, c: &OAuthClient) -> AuditEvent {
    ctx.event(Some(c.org_id), Action::ClientSecretRotated, target(&c.id))
        .with_details(json!({"project_id": c.project_id}))
}

/// What `rotate_secret` says about a public client.
pub(crate) fn no_secret_to_rotate() -> StoreError {
    StoreError::Invalid(ValidationError::new(
        "type",
        "public clients have no secret to rotate",
    ))
}
