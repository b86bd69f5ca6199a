//! Webhook endpoints of one project, in the hands of its admins. A secret is returned once,
//! by the call that made it, and stored only sealed under the master key; after a rotation
//! the old secret keeps signing (beside the new one) for [`ROTATION_OVERLAP`], so receivers
//! can roll over without dropping a delivery.

use portcullis_core::webhook::{
    DeliveryId, SigningSecret, Subscription, TEST_EVENT, WebhookId, parse_description, parse_url,
};
use portcullis_core::{AuditContext, Project, Role, Timestamp, ValidationError};
use portcullis_store::webhooks::{
    Delivery, DeliveryLog, DeliveryQuery, EndpointPatch, WebhookEndpoint,
};
use portcullis_store::{ProjectScope, StoreError};

use crate::infra::crypto::SecretBoxError;
use crate::infra::webhooks::Sender;

/// How long the secret before a rotation still signs.
pub const ROTATION_OVERLAP: time::Duration = time::Duration::hours(24);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("managing the project's webhooks requires the admin role in it")]
    AdminRequired,
    #[error("no such webhook endpoint in this project")]
    NotFound,
    #[error("no such delivery of this endpoint")]
    DeliveryNotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("could not seal the secret: {0}")]
    Seal(#[from] SecretBoxError),
    #[error("could not generate a secret: {0}")]
    Randomness(#[from] getrandom::Error),
    #[error("this project already has {0} webhook endpoints, the most allowed; delete one first")]
    TooManyEndpoints(u32),
    #[error("too many test and recover requests for this project; retry in {0} s")]
    SendBudget(u64),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for WebhookError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => WebhookError::NotFound,
            StoreError::Invalid(e) => WebhookError::Invalid(e),
            other => WebhookError::Store(other),
        }
    }
}

/// An endpoint as its admin asks for it.
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A change to an endpoint, unchecked.
pub struct Change {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// The webhooks of one project as one caller sees them.
pub struct ProjectWebhooks<'a> {
    /// The project's handle, made from the caller's project access.
    pub scope: Box<dyn ProjectScope + 'a>,
    pub sender: &'a Sender,
    pub project: &'a Project,
    /// The caller's effective role in the project.
    pub role: Role,
    pub audit: &'a AuditContext,
}

impl ProjectWebhooks<'_> {
    /// Endpoints name where this server sends requests: only the project's admins see or
    /// change them.
    fn admin(&self) -> Result<(), WebhookError> {
        if self.role < Role::Admin {
            return Err(WebhookError::AdminRequired);
        }
        Ok(())
    }

    fn url(&self, raw: &str) -> Result<String, WebhookError> {
        let url = parse_url(raw)?;
        self.sender
            .policy
            .check(&url)
            .map_err(|why| ValidationError::new("url", why))?;
        Ok(url.to_string())
    }

    pub async fn list(&self) -> Result<Vec<WebhookEndpoint>, WebhookError> {
        self.admin()?;
        Ok(self.scope.webhooks().list_endpoints().await?)
    }

    pub async fn get(&self, id: WebhookId) -> Result<WebhookEndpoint, WebhookError> {
        self.admin()?;
        self.scope
            .webhooks()
            .endpoint(id)
            .await?
            .ok_or(WebhookError::NotFound)
    }

    pub async fn create(
        &self,
        new: NewEndpoint,
    ) -> Result<(WebhookEndpoint, SigningSecret), WebhookError> {
        self.admin()?;
        let now = portcullis_core::now();
        let endpoint = WebhookEndpoint {
            id: WebhookId::new(),
            org_id: self.project.org_id,
            project_id: self.project.id,
            url: self.url(&new.url)?,
            description: parse_description(new.description.as_deref().unwrap_or(""))?,
            events: Subscription::parse(&new.events)?,
            enabled: new.enabled.unwrap_or(true),
            failing_since: None,
            disabled_reason: None,
            previous_secret_expires_at: None,
            created_at: now,
            updated_at: now,
        };
        let secret = SigningSecret::generate()?;
        let sealed = self.sender.seal(endpoint.id, &secret)?;
        let max = self.sender.limits.max_endpoints;
        self.scope
            .webhooks()
            .create_endpoint(&endpoint, &sealed, max, self.audit)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => WebhookError::TooManyEndpoints(max),
                e => e.into(),
            })?;
        Ok((endpoint, secret))
    }

    pub async fn update(
        &self,
        id: WebhookId,
        change: Change,
    ) -> Result<WebhookEndpoint, WebhookError> {
        self.admin()?;
        let patch = EndpointPatch {
            url: change.url.as_deref().map(|u| self.url(u)).transpose()?,
            events: change
                .events
                .as_deref()
                .map(Subscription::parse)
                .transpose()?,
            enabled: change.enabled,
            description: change
                .description
                .as_deref()
                .map(parse_description)
                .transpose()?,
        };
        Ok(self
            .scope
            .webhooks()
            .update_endpoint(id, &patch, portcullis_core::now(), self.audit)
            .await?)
    }

    pub async fn delete(&self, id: WebhookId) -> Result<(), WebhookError> {
        self.admin()?;
        if !self
            .scope
            .webhooks()
            .delete_endpoint(id, portcullis_core::now(), self.audit)
            .await?
        {
            return Err(WebhookError::NotFound);
        }
        Ok(())
    }

    /// A new secret, returned here only; the old one also signs for [`ROTATION_OVERLAP`].
    pub async fn rotate_secret(
        &self,
        id: WebhookId,
    ) -> Result<(WebhookEndpoint, SigningSecret), WebhookError> {
        self.admin()?;
        let secret = SigningSecret::generate()?;
        let sealed = self.sender.seal(id, &secret)?;
        let endpoint = self
            .scope
            .webhooks()
            .rotate_secret(
                id,
                &sealed,
                portcullis_core::now() + ROTATION_OVERLAP,
                self.audit,
            )
            .await?;
        Ok((endpoint, secret))
    }

    /// Queues a `webhook.test` event for this endpoint alone, due at once.
    /// Spends one of the project's on-demand sends (test, recover): each makes this server
    /// POST to a URL of the admin's choosing, so they are budgeted per project.
    fn spend_send(&self) -> Result<(), WebhookError> {
        self.sender
            .limits
            .sends
            .spend(&self.project.id.to_string())
            .map_err(|q| WebhookError::SendBudget(q.reset_secs))
    }

    pub async fn test(&self, id: WebhookId) -> Result<Delivery, WebhookError> {
        self.admin()?;
        self.spend_send()?;
        let now = portcullis_core::now();
        let body = portcullis_core::webhook::body(
            TEST_EVENT,
            now,
            &serde_json::json!({
                "webhook_id": id,
                "project_id": self.project.id,
                "org_id": self.project.org_id,
                "message": "A test event from Portcullis.",
            }),
        );
        Ok(self
            .scope
            .webhooks()
            .enqueue_test(id, &body, now, self.audit)
            .await?)
    }

    pub async fn deliveries(
        &self,
        id: WebhookId,
        q: &DeliveryQuery,
    ) -> Result<Vec<DeliveryLog>, WebhookError> {
        self.admin()?;
        Ok(self.scope.webhooks().deliveries(id, q).await?)
    }

    /// Sends one delivery again now, whatever its state.
    pub async fn retry(&self, id: WebhookId, delivery: DeliveryId) -> Result<(), WebhookError> {
        self.admin()?;
        if !self
            .scope
            .webhooks()
            .retry_delivery(id, delivery, portcullis_core::now(), self.audit)
            .await?
        {
            return Err(WebhookError::DeliveryNotFound);
        }
        Ok(())
    }

    /// Sends every delivery that failed since `since` again; how many.
    pub async fn recover(&self, id: WebhookId, since: Timestamp) -> Result<u64, WebhookError> {
        self.admin()?;
        self.spend_send()?;
        Ok(self
            .scope
            .webhooks()
            .recover(id, since, portcullis_core::now(), self.audit)
            .await?)
    }
}
