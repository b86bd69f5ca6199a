//! Outgoing webhooks: endpoints (managed in their org's scope), deliveries (one per event and
//! endpoint) and their attempts. The delivery worker works in platform scope across every
//! org: it fans outbox events out into deliveries, claims due deliveries with a lease, and
//! records each attempt's outcome.
//!
//! Endpoint secrets arrive sealed (the server encrypts them under the master key); the store
//! never sees one in clear.

use std::time::Duration;

use async_trait::async_trait;
use portcullis_core::webhook::{DeliveryId, DeliveryStatus, ErrorClass, WebhookId};
use portcullis_core::{Action, AuditContext, AuditEvent, OrgAccess, OrgId, ProjectId, Timestamp};
use serde_json::json;
use uuid::Uuid;

use crate::StoreResult;
use crate::scope::ProjectHandle;

/// Endpoints and their patches are domain types (the patch's rules live with them).
pub use portcullis_core::webhook_endpoint::{EndpointPatch, WebhookEndpoint};

/// One event's delivery to one endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The `webhook-id`: the same on every attempt.
    pub id: DeliveryId,
    pub endpoint_id: WebhookId,
    /// The outbox event (or test) delivered.
    pub event_id: Uuid,
    pub event_type: String,
    /// The exact body every attempt sends.
    pub body: String,
    pub created_at: Timestamp,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_status: Option<u16>,
    pub finished_at: Option<Timestamp>,
}

/// One attempt to deliver.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub at: Timestamp,
    /// The receiver's status, when it answered.
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// The first KiB of the answer.
    pub response: String,
    pub error_class: Option<ErrorClass>,
}

/// A delivery with its attempts, oldest attempt first: one entry of the log.
#[derive(Clone, Debug)]
pub struct DeliveryLog {
    pub delivery: Delivery,
    pub attempts: Vec<Attempt>,
}

/// Filters of the delivery log; newest first, `cursor` is the last id of the page before.
#[derive(Clone, Debug, Default)]
pub struct DeliveryQuery {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<String>,
    pub since: Option<Timestamp>,
    pub cursor: Option<DeliveryId>,
    pub limit: u32,
}

/// The sealed signing keys of an endpoint: the current one, and the previous one while it
/// still signs.
#[derive(Clone, Debug)]
pub struct SealedSecrets {
    pub current: Vec<u8>,
    pub previous: Option<Vec<u8>>,
}

/// A delivery the worker holds a lease on, with what it needs to send it.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery: Delivery,
    pub org_id: OrgId,
    pub url: String,
    pub secrets: SealedSecrets,
}

/// How an attempt ended, as the worker decided from the schedule (a domain type; re-exported
/// here, where the worker meets it).
pub use portcullis_core::webhook::NextStep;

/// What recording an attempt did beyond the delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The worker still held the lease, so the delivery's state is the attempt's.
    pub held: bool,
    /// The endpoint had failed for the whole window and is now disabled.
    pub disabled: bool,
}

/// The queue as a whole, for metrics and `doctor`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Backlog {
    /// Deliveries pending (due or waiting for a retry) of enabled endpoints.
    pub pending: u64,
    /// Outbox events not yet fanned out.
    pub unfanned: u64,
    /// The oldest time something due has been waiting since.
    pub oldest_due: Option<Timestamp>,
}

/// What one retention pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub events: u64,
    pub deliveries: u64,
}

/// The worker's side, across every org.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Turns up to `limit` undelivered outbox events into deliveries (one per subscribed
    /// endpoint) and marks them delivered, in one transaction; how many events it took.
    /// Nodes sharing a database never take the same event.
    async fn fan_out(&self, now: Timestamp, limit: u32) -> StoreResult<u32>;

    /// Leases up to `limit` due deliveries of enabled endpoints to `owner` until
    /// `lease_until`; a delivery whose lease expired (its holder died) is due again.
    async fn claim(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Claimed>>;

    /// Records an attempt and, while `owner` still holds the lease, moves the delivery on
    /// and releases it. A failure of an endpoint failing since more than `disable_after`
    /// disables it (`webhook.disabled`).
    async fn record_attempt(
        &self,
        owner: &str,
        claimed: &Claimed,
        attempt: &Attempt,
        next: NextStep,
        disable_after: Duration,
    ) -> StoreResult<Recorded>;

    /// Gives back the leases `owner` holds on deliveries it did not attempt (shutting down).
    async fn release(&self, owner: &str, ids: &[DeliveryId]) -> StoreResult<()>;

    /// Deletes up to `limit` outbox events fanned out before `before`, and up to `limit`
    /// finished (succeeded or failed) deliveries that finished before `before` with their
    /// attempts; one bounded transaction, so the worker calls it again while it finds some.
    async fn purge(&self, before: Timestamp, limit: u32) -> StoreResult<Purged>;

    /// When the worker must look next, as far as the database knows: the earliest of the
    /// outbox events not fanned out and the pending deliveries of enabled endpoints (each at
    /// its next attempt, or its lease's expiry when that is later); None when nothing waits.
    /// It may lie in the past (due now). The worker sleeps until then when it has no wake-up
    /// sooner, so a scheduled retry or an expired lease is not left for the fallback poll.
    async fn next_due(&self) -> StoreResult<Option<Timestamp>>;

    async fn backlog(&self, now: Timestamp) -> StoreResult<Backlog>;

    /// Endpoints that are failing or were disabled by the server, across every org.
    async fn troubled_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>>;
}

/// One project's webhook endpoints and their deliveries, reached through
/// [`crate::ProjectScope::webhooks`].
#[async_trait]
pub trait WebhookScope: Send + Sync {
    /// Stores a new endpoint of a project of the org (`webhook.created`); `NotFound` when the
    /// project is not the org's, `Conflict` when the project already has `max` endpoints
    /// (counted under a per-project lock, so concurrent creations cannot pass the cap).
    async fn create_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret_sealed: &[u8],
        max: u32,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    /// The project's endpoints, oldest first.
    async fn list_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>>;

    async fn endpoint(&self, id: WebhookId) -> StoreResult<Option<WebhookEndpoint>>;

    /// Applies the patch (`webhook.updated`); enabling an endpoint clears why it was
    /// disabled and how long it had been failing. `NotFound` when there is no such endpoint.
    async fn update_endpoint(
        &self,
        id: WebhookId,
        patch: &EndpointPatch,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<WebhookEndpoint>;

    /// Deletes the endpoint softly (`webhook.deleted`); its pending deliveries are never
    /// sent. False when there is no such endpoint.
    async fn delete_endpoint(
        &self,
        id: WebhookId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;

    /// Makes `secret_sealed` the signing key; the one before keeps signing until
    /// `previous_until` (`webhook.secret_rotated`).
    async fn rotate_secret(
        &self,
        id: WebhookId,
        secret_sealed: &[u8],
        previous_until: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<WebhookEndpoint>;

    /// Queues a delivery of `webhook.test` to this one endpoint, due now (`webhook.tested`).
    async fn enqueue_test(
        &self,
        id: WebhookId,
        body: &str,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<Delivery>;

    /// The endpoint's delivery log, newest first.
    async fn deliveries(&self, id: WebhookId, q: &DeliveryQuery) -> StoreResult<Vec<DeliveryLog>>;

    /// Makes a delivery due now, whatever its state (`webhook.delivery_retried`); false when
    /// the endpoint has no such delivery.
    async fn retry_delivery(
        &self,
        id: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;

    /// Makes every failed delivery of the endpoint created since `since` due now
    /// (`webhook.recovered`); how many.
    async fn recover(
        &self,
        id: WebhookId,
        since: Timestamp,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<u64>;
}

/// What the backends implement; reached only through [`WebhookScope`].
#[async_trait]
pub(crate) trait ByProjectAccess: Send + Sync {
    async fn create_endpoint(
        &self,
        access: &OrgAccess,
        endpoint: &WebhookEndpoint,
        secret_sealed: &[u8],
        max: u32,
        ctx: &AuditContext,
    ) -> StoreResult<()>;

    async fn list_endpoints(
        &self,
        access: &OrgAccess,
        project: ProjectId,
    ) -> StoreResult<Vec<WebhookEndpoint>>;

    async fn endpoint(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
    ) -> StoreResult<Option<WebhookEndpoint>>;

    async fn update_endpoint(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        patch: &EndpointPatch,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<WebhookEndpoint>;

    async fn delete_endpoint(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;

    async fn rotate_secret(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        secret_sealed: &[u8],
        previous_until: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<WebhookEndpoint>;

    async fn enqueue_test(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        body: &str,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<Delivery>;

    async fn deliveries(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        q: &DeliveryQuery,
    ) -> StoreResult<Vec<DeliveryLog>>;

    async fn retry_delivery(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool>;

    async fn recover(
        &self,
        access: &OrgAccess,
        project: ProjectId,
        id: WebhookId,
        since: Timestamp,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<u64>;
}

#[async_trait]
impl<S: ByProjectAccess + ?Sized> WebhookScope for ProjectHandle<'_, S> {
    async fn create_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret_sealed: &[u8],
        max: u32,
        ctx: &AuditContext,
    ) -> StoreResult<()> {
        if endpoint.project_id != self.access.project_id() {
            return Err(crate::StoreError::NotFound);
        }
        self.store
            .create_endpoint(self.access.org(), endpoint, secret_sealed, max, ctx)
            .await
    }

    async fn list_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.store
            .list_endpoints(self.access.org(), self.access.project_id())
            .await
    }

    async fn endpoint(&self, id: WebhookId) -> StoreResult<Option<WebhookEndpoint>> {
        self.store
            .endpoint(self.access.org(), self.access.project_id(), id)
            .await
    }

    async fn update_endpoint(
        &self,
        id: WebhookId,
        patch: &EndpointPatch,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<WebhookEndpoint> {
        self.store
            .update_endpoint(
                self.access.org(),
                self.access.project_id(),
                id,
                patch,
                now,
                ctx,
            )
            .await
    }

    async fn delete_endpoint(
        &self,
        id: WebhookId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        self.store
            .delete_endpoint(self.access.org(), self.access.project_id(), id, now, ctx)
            .await
    }

    async fn rotate_secret(
        &self,
        id: WebhookId,
        secret_sealed: &[u8],
        previous_until: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<WebhookEndpoint> {
        self.store
            .rotate_secret(
                self.access.org(),
                self.access.project_id(),
                id,
                secret_sealed,
                previous_until,
                ctx,
            )
            .await
    }

    async fn enqueue_test(
        &self,
        id: WebhookId,
        body: &str,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<Delivery> {
        self.store
            .enqueue_test(
                self.access.org(),
                self.access.project_id(),
                id,
                body,
                now,
                ctx,
            )
            .await
    }

    async fn deliveries(&self, id: WebhookId, q: &DeliveryQuery) -> StoreResult<Vec<DeliveryLog>> {
        self.store
            .deliveries(self.access.org(), self.access.project_id(), id, q)
            .await
    }

    async fn retry_delivery(
        &self,
        id: WebhookId,
        delivery: DeliveryId,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<bool> {
        self.store
            .retry_delivery(
                self.access.org(),
                self.access.project_id(),
                id,
                delivery,
                now,
                ctx,
            )
            .await
    }

    async fn recover(
        &self,
        id: WebhookId,
        since: Timestamp,
        now: Timestamp,
        ctx: &AuditContext,
    ) -> StoreResult<u64> {
        self.store
            .recover(
                self.access.org(),
                self.access.project_id(),
                id,
                since,
                now,
                ctx,
            )
            .await
    }
}

/// The `Conflict` of a project at its cap of endpoints.
pub(crate) fn too_many_endpoints(max: u32) -> crate::StoreError {
    crate::StoreError::Conflict(format!("the project already has {max} webhook endpoints"))
}

/// Both backends write these audit events.
pub(crate) fn event(
    ctx: &AuditContext,
    org: OrgId,
    action: Action,
    id: WebhookId,
    details: serde_json::Value,
) -> AuditEvent {
    ctx.event(Some(org), action, format!("webhook:{id}"))
        .with_details(details)
}

pub(crate) fn created_event(ctx: &AuditContext, e: &WebhookEndpoint) -> AuditEvent {
    event(
        ctx,
        e.org_id,
        Action::WebhookCreated,
        e.id,
        json!({"project_id": e.project_id, "url": e.url, "events": e.events.names()}),
    )
}

pub(crate) fn disabled_event(org: OrgId, id: WebhookId, since: Timestamp) -> AuditEvent {
    event(
        &AuditContext {
            correlation_id: format!("webhook-worker-{}", Uuid::now_v7().simple()),
            ..AuditContext::default()
        },
        org,
        Action::WebhookDisabled,
        id,
        json!({"reason": "failing", "failing_since": since.unix_timestamp()}),
    )
    .failed()
}

/// The most of a response the log keeps.
pub const RESPONSE_SNIPPET: usize = 1024;

/// Why the server disables an endpoint.
pub(crate) const DISABLED_FAILING: &str = "failing";

pub(crate) fn to_u16(v: Option<i64>) -> Option<u16> {
    v.and_then(|v| u16::try_from(v).ok())
}

pub(crate) fn error_class(s: Option<&str>) -> Option<ErrorClass> {
    match s? {
        "status" => Some(ErrorClass::Status),
        "timeout" => Some(ErrorClass::Timeout),
        "connect" => Some(ErrorClass::Connect),
        _ => Some(ErrorClass::Other),
    }
}

/// The deliveries one outbox event fans out to among its org's enabled, live endpoints
/// (the rule is [`portcullis_core::webhook::hears`]), each due at `now`.
pub(crate) fn deliveries_for(
    record: &crate::OutboxRecord,
    endpoints: &[WebhookEndpoint],
    now: Timestamp,
) -> Vec<Delivery> {
    let event = &record.event;
    endpoints
        .iter()
        .filter(|e| {
            portcullis_core::webhook::hears(
                e.org_id,
                e.project_id,
                &e.events,
                e.created_at,
                event,
                record.created_at,
            )
        })
        .map(|e| Delivery {
            id: DeliveryId::new(),
            endpoint_id: e.id,
            event_id: record.id,
            event_type: event.event_type.clone(),
            body: portcullis_core::webhook::body(
                &event.event_type,
                record.created_at,
                &event.payload,
            ),
            created_at: record.created_at,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_status: None,
            finished_at: None,
        })
        .collect()
}
