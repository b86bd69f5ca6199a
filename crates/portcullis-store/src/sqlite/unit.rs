//! The SQLite unit of work: a `BEGIN IMMEDIATE` transaction on the one writer connection,
//! with the audit events and outbox rows it holds back inserted just before `COMMIT`.
//! SQLite has no row-level security; the unit's scope still bounds which of those rows it
//! may write.

use std::ops::{Deref, DerefMut};

use portcullis_core::{AuditEvent, OutboxEvent};
use sqlx::sqlite::SqliteConnection;
use sqlx::{Sqlite, Transaction};
use uuid::Uuid;

use super::SqliteStore;
use super::audit::insert_audit;
use super::outbox::{insert_outbox, managed_orgs};
use crate::unit::{LocalSink, Pending, Scope};
use crate::{Change, StoreResult};

/// One write transaction. Statements run on it through `&mut *unit`; dropping it without
/// [`Unit::commit`] rolls everything back, events and change notices included.
pub(super) struct Unit<'s> {
    tx: Transaction<'static, Sqlite>,
    pending: Pending,
    local: &'s LocalSink,
}

impl SqliteStore {
    /// Opens a unit for `scope`; it waits its turn for the writer connection.
    pub(super) async fn unit(&self, scope: Scope) -> StoreResult<Unit<'_>> {
        Ok(Unit {
            tx: self
                .write_wait
                .time(self.writer.begin_with("BEGIN IMMEDIATE"))
                .await?,
            pending: Pending::new(scope),
            local: &self.local,
        })
    }
}

impl Unit<'_> {
    /// Written with the change, just before the commit.
    pub(super) fn audit(&mut self, event: AuditEvent) {
        self.pending.audit(event);
    }

    /// Queued for delivery with the change, just before the commit; returns the row's id.
    pub(super) fn outbox(&mut self, event: OutboxEvent) -> Uuid {
        self.pending.outbox(event)
    }

    /// The unit made a webhook delivery due without an outbox row: the worker hears of it
    /// on commit, as it does of outbox rows.
    pub(super) fn webhooks_due(&mut self) {
        self.pending.webhooks_due();
    }

    /// Announced to the local sink once the unit has committed.
    pub(super) fn changed(&mut self, change: Change) {
        self.pending.changed(change);
    }

    /// Moves the rest of the unit into another scope, for a change that starts in a user's
    /// rows and continues in an org's (withdrawing consent to an org's client). Async only
    /// to read like PostgreSQL's, which must tell the database.
    pub(super) async fn rescope(&mut self, scope: Scope) -> StoreResult<()> {
        self.pending.rescope(scope);
        Ok(())
    }

    pub(super) async fn commit(self) -> StoreResult<()> {
        let Unit {
            mut tx,
            pending,
            local,
        } = self;
        let mut checked = pending.check()?;
        for event in &checked.audit {
            insert_audit(&mut tx, event).await?;
        }
        for queued in &checked.outbox {
            insert_outbox(&mut tx, queued).await?;
        }
        // A user's own sign-in or sign-out goes to the orgs that manage them.
        for user in checked.session_users() {
            for org in managed_orgs(&mut tx, user).await? {
                for queued in checked.session_rows(user, org) {
                    insert_outbox(&mut tx, &queued).await?;
                    checked.webhooks_due = true;
                }
            }
        }
        tx.commit().await?;
        local.deliver(checked.changes, checked.webhooks_due);
        Ok(())
    }
}

impl Deref for Unit<'_> {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for Unit<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}
