//! OAuth clients (applications) of a project. Management calls are tenant-scoped: they take
//! the caller's [`OrgAccess`] and the project, and see only that project's live clients.
//! The OAuth endpoints know nothing but a client id, so [`ClientStore::client_by_id`]
//! looks across tenants (platform scope on PostgreSQL) and is the one call that does.
//!
//! Deleting is soft: the row stays (grants may still name it) with `deleted_at` set and its
//! secret digest cleared, and no call returns it again, so it never authenticates.

use async_trait::async_trait;
use portcullis_core::oauth::{
    ClientId, GrantType, OAuthClient, SigningAlg, TokenEndpointAuthMethod,
};
use portcullis_core::{
    Action, AuditContext, AuditEvent, OrgAccess, ProjectId, RedirectUri, Timestamp, TokenHash,
    ValidationError,
};
use serde_json::json;

use crate::StoreResult;

#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Stores a new client (already validated by [`OAuthClient::register`]) with its
    /// `client.created` event. `NotFound` when its project is not one of the access's org.
    async fn create(
        &self,
        access: &OrgAccess,
        client: &OAuthClient,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    /// The project's live clients, oldest first.
    async fn list(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
    ) -> StoreResult<Vec<OAuthClient>>;

    /// One live client of the project; None for a deleted one or another project's.
    async fn get(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
    ) -> StoreResult<Option<OAuthClient>>;

    /// Applies `patch` under a row lock and writes `client.updated` naming the changed
    /// fields. `Invalid` when the result would not validate; a patch that changes nothing
    /// writes nothing.
    async fn update(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
        patch: &ClientPatch,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient>;

    /// Soft-deletes the client (`client.deleted`); `NotFound` when there is no live one.
    async fn delete(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    /// Replaces a confidential client's secret digest (`client.secret_rotated`); the old
    /// secret stops verifying at once. `Invalid` (field `type`) for a public client.
    async fn rotate_secret(
        &self,
        access: &OrgAccess,
        project_id: ProjectId,
        id: &ClientId,
        new_secret: &TokenHash,
        ctx: &AuditContext,
    ) -> StoreResult<OAuthClient>;

    /// The live client with this id in any project of any live org, for the OAuth endpoints.
    /// Deleted clients (and clients of deleted orgs) are None: they never authenticate.
    async fn client_by_id(&self, id: &ClientId) -> StoreResult<Option<OAuthClient>>;
}

/// Fields of `PATCH /v1/project/clients/{client_id}`; None leaves a field as it is. The
/// client type never changes (a public client cannot be given a secret after the fact).
#[derive(Clone, Debug, Default)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<RedirectUri>>,
    pub post_logout_redirect_uris: Option<Vec<RedirectUri>>,
    pub grant_types: Option<Vec<GrantType>>,
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,
    pub access_token_ttl_secs: Option<u32>,
    pub signing_alg: Option<SigningAlg>,
}

impl ClientPatch {
    /// The patched client and the names of the fields that changed; the result as a whole
    /// must validate. `updated_at` moves only when something changed.
    pub fn apply(
        &self,
        mut c: OAuthClient,
        now: Timestamp,
    ) -> Result<(OAuthClient, Vec<&'static str>), ValidationError> {
        let mut changed = Vec::new();
        fn set<T: PartialEq + Clone>(
            field: &mut T,
            new: Option<&T>,
            name: &'static str,
            changed: &mut Vec<&'static str>,
        ) {
            if let Some(new) = new
                && new != field
            {
                *field = new.clone();
                changed.push(name);
            }
        }
        set(&mut c.name, self.name.as_ref(), "name", &mut changed);
        set(
            &mut c.redirect_uris,
            self.redirect_uris.as_ref(),
            "redirect_uris",
            &mut changed,
        );
        set(
            &mut c.post_logout_redirect_uris,
            self.post_logout_redirect_uris.as_ref(),
            "post_logout_redirect_uris",
            &mut changed,
        );
        set(
            &mut c.grant_types,
            self.grant_types.as_ref(),
            "grant_types",
            &mut changed,
        );
        set(
            &mut c.token_endpoint_auth_method,
            self.token_endpoint_auth_method.as_ref(),
            "token_endpoint_auth_method",
            &mut changed,
        );
        set(
            &mut c.access_token_ttl_secs,
            self.access_token_ttl_secs.as_ref(),
            "access_token_ttl_secs",
            &mut changed,
        );
        set(
            &mut c.signing_alg,
            self.signing_alg.as_ref(),
            "signing_alg",
            &mut changed,
        );
        c.validate()?;
        if !changed.is_empty() {
            c.updated_at = now;
        }
        Ok((c, changed))
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
pub(crate) fn no_secret_to_rotate() -> crate::StoreError {
    crate::StoreError::Invalid(ValidationError::new(
        "type",
        "public clients have no secret to rotate",
    ))
}
