//! The PostgreSQL unit of work: a transaction whose first statement sets the row-level
//! security context of its scope, with the audit events and outbox rows it holds back
//! inserted and its changes (and, when it queued webhook work, a wake-up for every node's
//! worker) `pg_notify`'d (delivered to other nodes on commit) just before `COMMIT`.

use std::ops::{Deref, DerefMut};

use portcullis_core::{AuditEvent, OutboxEvent};
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Postgres, Transaction};
use uuid::Uuid;

use super::PgStore;
use super::audit::insert_audit;
use super::outbox::{insert_outbox, managed_orgs};
use crate::unit::{LocalSink, Pending, Scope};
use crate::{Change, StoreResult};

/// One transaction. Statements run on it through `&mut *unit`; dropping it without
/// [`Unit::commit`] rolls everything back, events and change notices included.
pub(super) struct Unit<'s> {
    tx: Transaction<'static, Postgres>,
    pending: Pending,
    local: &'s LocalSink,
}

/// The three transaction-local settings the row-level security policies read.
fn settings(scope: Scope) -> (String, String, &'static str) {
    match scope {
        Scope::Org(id) => (id.to_string(), String::new(), ""),
        Scope::User(id) => (String::new(), id.to_string(), ""),
        Scope::Platform => (String::new(), String::new(), "on"),
        Scope::Nobody => (String::new(), String::new(), ""),
    }
}

/// Moves an open unit into another scope: one statement, with bind parameters (`SET LOCAL`
/// cannot take them); `true` makes each setting end with the transaction, so a pooled
/// connection never carries it into the next.
async fn set_scope(conn: &mut PgConnection, scope: Scope) -> StoreResult<()> {
    let (org_id, user_id, platform) = settings(scope);
    sqlx::query(
        "SELECT set_config('app.org_id', $1, true), set_config('app.user_id', $2, true), \
         set_config('app.platform', $3, true)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(platform)
    .execute(conn)
    .await?;
    Ok(())
}

/// `BEGIN` and the settings of `scope` as one simple query: one round trip where `BEGIN`
/// then [`set_scope`] took two, on every unit. Formatting values into SQL is safe here only
/// because they are ours: UUIDs as `Uuid`'s `Display` writes them (hex digits and dashes)
/// and the constants of [`settings`], never a caller's text.
fn begin_in_scope(scope: Scope) -> String {
    let (org_id, user_id, platform) = settings(scope);
    format!(
        "BEGIN; SELECT set_config('app.org_id', '{org_id}', true), \
         set_config('app.user_id', '{user_id}', true), set_config('app.platform', '{platform}', true)"
    )
}

impl PgStore {
    /// Opens a unit whose row-level security context is `scope`.
    pub(super) async fn unit(&self, scope: Scope) -> StoreResult<Unit<'_>> {
        let tx = self
            .acquire_wait
            .time(self.pool.begin_with(AssertSqlSafe(begin_in_scope(scope))))
            .await?;
        Ok(Unit {
            tx,
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

    /// Announced to other nodes on commit (`pg_notify` inside the transaction) and to the
    /// local sink once the unit has committed.
    pub(super) fn changed(&mut self, change: Change) {
        self.pending.changed(change);
    }

    /// Moves the rest of the unit into another context, for a change that starts in a
    /// user's rows and continues in an org's (withdrawing consent to an org's client).
    pub(super) async fn rescope(&mut self, scope: Scope) -> StoreResult<()> {
        set_scope(&mut self.tx, scope).await?;
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
        let users = checked.session_users();
        if !users.is_empty() {
            // The orgs that manage a user are not the unit's (sign-in runs in no org's
            // context): look them up and write their rows as the platform, last, after this
            // unit's own rows were checked against its scope and written.
            sqlx::query("SELECT set_config('app.platform', 'on', true)")
                .execute(&mut *tx)
                .await?;
        }
        for user in users {
            for org in managed_orgs(&mut tx, user).await? {
                for queued in checked.session_rows(user, org) {
                    insert_outbox(&mut tx, &queued).await?;
                    checked.webhooks_due = true;
                }
            }
        }
        let (channels, payloads) = super::listener::notices(&checked.changes, checked.webhooks_due);
        if !channels.is_empty() {
            // Every notice of the unit in one statement: one round trip however many.
            sqlx::query("SELECT pg_notify(n.channel, n.payload) FROM unnest($1::text[], $2::text[]) AS n(channel, payload)")
                .bind(channels)
                .bind(payloads)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        local.deliver(checked.changes, checked.webhooks_due);
        Ok(())
    }
}

impl Deref for Unit<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Unit<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}
