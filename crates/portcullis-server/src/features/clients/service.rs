//! OAuth clients (applications) of one project. Any project role reads them; changing them
//! needs the admin role in the project. A secret is returned once, by the call that issued
//! it, and stored only as its SHA-256.
//!
//! The OAuth endpoints cache clients by id, so changing, rotating or deleting one bumps the
//! cache epoch (other nodes hear of it through the store's change feed). A new client needs
//! no bump: unknown ids are never cached.

use portcullis_core::oauth::{ClientId, ClientRegistration, ClientSecret, ClientType, OAuthClient};
use portcullis_core::patch::ClientPatch;
use portcullis_core::{AuditContext, Project, Role, ValidationError};
use portcullis_store::{ProjectScope, StoreError};

use crate::infra::session_cache::SessionCache;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("managing the project's clients requires the admin role in it")]
    AdminRequired,
    #[error("no such client in this project")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("could not generate a client id or secret: {0}")]
    Randomness(#[from] getrandom::Error),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ClientError {
    /// The store's bare `NotFound` means no such client in this project.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ClientError::NotFound,
            StoreError::Invalid(e) => ClientError::Invalid(e),
            other => ClientError::Store(other),
        }
    }
}

/// The clients of one project as one caller sees them.
pub struct ProjectClients<'a> {
    /// The project's handle, made from the caller's project access.
    pub scope: Box<dyn ProjectScope + 'a>,
    pub cache: &'a SessionCache,
    pub project: &'a Project,
    /// The caller's effective role in the project.
    pub role: Role,
    pub audit: &'a AuditContext,
}

/// The project's clients in the hands of an admin of the project; only
/// [`ProjectClients::manage`] makes one, so the role is checked before a request body is
/// even looked at.
pub struct ClientAdmin<'a, 'b>(&'b ProjectClients<'a>);

impl<'a> ProjectClients<'a> {
    /// The project's live clients, oldest first.
    pub async fn list(&self) -> Result<Vec<OAuthClient>, ClientError> {
        Ok(self.scope.clients().list().await?)
    }

    pub async fn get(&self, id: &ClientId) -> Result<OAuthClient, ClientError> {
        self.scope
            .clients()
            .get(id)
            .await?
            .ok_or(ClientError::NotFound)
    }

    pub fn manage(&self) -> Result<ClientAdmin<'a, '_>, ClientError> {
        if self.role < Role::Admin {
            return Err(ClientError::AdminRequired);
        }
        Ok(ClientAdmin(self))
    }
}

impl ClientAdmin<'_, '_> {
    /// Registers a client; a confidential one gets a secret, returned here and nowhere else.
    pub async fn create(
        &self,
        registration: ClientRegistration,
    ) -> Result<(OAuthClient, Option<ClientSecret>), ClientError> {
        let clients = self.0;
        let secret = match registration.client_type {
            ClientType::Confidential => Some(ClientSecret::generate()?),
            ClientType::Public => None,
        };
        let client = OAuthClient::register(
            ClientId::generate()?,
            clients.project.org_id,
            clients.project.id,
            registration,
            secret.as_ref().map(ClientSecret::hash),
            portcullis_core::now(),
        )?;
        clients
            .scope
            .clients()
            .create(&client, clients.audit)
            .await?;
        Ok((client, secret))
    }

    /// Applies `patch` (merged in the domain, [`ClientPatch::apply`]) and records which
    /// fields changed.
    pub async fn update(
        &self,
        id: &ClientId,
        patch: &ClientPatch,
    ) -> Result<OAuthClient, ClientError> {
        let clients = self.0;
        let client = clients
            .scope
            .clients()
            .update(id, patch, clients.audit)
            .await?;
        Ok(client)
    }

    /// Soft-deletes the client: it no longer authenticates or appears anywhere.
    pub async fn delete(&self, id: &ClientId) -> Result<(), ClientError> {
        let clients = self.0;
        clients.scope.clients().delete(id, clients.audit).await?;
        Ok(())
    }

    /// A new secret for a confidential client; the old one stops working at once.
    pub async fn rotate_secret(
        &self,
        id: &ClientId,
    ) -> Result<(OAuthClient, ClientSecret), ClientError> {
        let clients = self.0;
        let secret = ClientSecret::generate()?;
        let client = clients
            .scope
            .clients()
            .rotate_secret(id, &secret.hash(), clients.audit)
            .await?;
        Ok((client, secret))
    }
}
