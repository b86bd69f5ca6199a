//! The outbox: events queued for delivery outside the database (webhooks), each in the unit
//! of work of the change it announces. Nothing delivers them yet; the webhook worker will
//! read what is [`OutboxStore::due`].

use async_trait::async_trait;
use portcullis_core::{AuditEvent, OutboxEvent, Timestamp};
use uuid::Uuid;

use crate::StoreResult;

/// An outbox row: the event and where its delivery stands.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRecord {
    /// UUIDv7: rows sort by when they were queued.
    pub id: Uuid,
    pub event: OutboxEvent,
    pub created_at: Timestamp,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues `event` on its own, with the audit events that describe it, all or nothing.
    /// For events that are the whole change (a test delivery an admin asks for); a change
    /// that has events of its own queues them in its own unit.
    async fn enqueue(&self, event: &OutboxEvent, also: &[AuditEvent]) -> StoreResult<Uuid>;

    /// Undelivered events due at `now`, longest waiting first, across every org: what the
    /// delivery worker works through.
    async fn due(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<OutboxRecord>>;
}
