//! The unit of work: one tenant-scoped transaction in which a change, the audit events that
//! describe it, the outbox rows that announce it and the change notices caches need commit
//! together or not at all.
//! Each backend wraps its own transaction in a `Unit` (`sqlite/unit.rs`, `postgres/unit.rs`);
//! what they share is here: the scope a unit is opened in, what it holds back until commit,
//! and the store's local change sink, which hears of a change only once it has committed.

use std::sync::{Arc, PoisonError, RwLock};

use portcullis_core::{AuditEvent, OrgId, OutboxEvent, Timestamp, UserId};
use uuid::Uuid;

use crate::{Change, ChangeSink, StoreError, StoreResult};

/// Whose rows a unit may touch. PostgreSQL turns it into the row-level security context of
/// the transaction; on both backends it bounds which audit events and outbox rows the unit
/// may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// One org's rows: every call that holds an `OrgAccess`, and creating an org.
    Org(OrgId),
    /// A user's own memberships, and the orgs and projects of their active memberships.
    User(UserId),
    /// Everything: platform-wide reads and platform-admin operations.
    Platform,
    /// No tenant rows; only audit events outside any org may be written.
    Nobody,
}

impl Scope {
    /// PostgreSQL's insert policies (`audit_events_insert`, `outbox_events_tenant`), checked
    /// on both backends so that SQLite refuses what PostgreSQL would: an org's row only in
    /// that org's scope (or the platform's); an audit event of no org in any.
    fn admits(self, event_org: Option<OrgId>) -> bool {
        match (self, event_org) {
            (_, None) | (Scope::Platform, _) => true,
            (Scope::Org(scope), Some(org)) => scope == org,
            (Scope::User(_) | Scope::Nobody, Some(_)) => false,
        }
    }
}

/// An outbox row as a unit queues it: its id and time are fixed when it is queued.
#[derive(Debug)]
pub(crate) struct Queued {
    pub id: Uuid,
    pub created_at: Timestamp,
    pub event: OutboxEvent,
}

/// What a unit holds back until it commits: the audit events and outbox rows to insert just
/// before the commit, and the changes to announce.
#[derive(Debug)]
pub(crate) struct Pending {
    scope: Scope,
    audit: Vec<AuditEvent>,
    outbox: Vec<Queued>,
    changes: Vec<Change>,
    webhooks_due: bool,
}

/// A unit's pending rows, checked against its scope and ready to write.
pub(crate) struct Checked {
    pub audit: Vec<AuditEvent>,
    pub outbox: Vec<Queued>,
    pub changes: Vec<Change>,
    /// The webhook worker must hear of this unit once it commits: it queued outbox rows or
    /// made a delivery due. The backend sets it too when it writes managed members' session
    /// rows, which only it can find.
    pub webhooks_due: bool,
}

impl Pending {
    pub(crate) fn new(scope: Scope) -> Self {
        Self {
            scope,
            audit: Vec::new(),
            outbox: Vec::new(),
            changes: Vec::new(),
            webhooks_due: false,
        }
    }

    /// The unit moved into another context (PostgreSQL: its RLS settings were changed).
    pub(crate) fn rescope(&mut self, scope: Scope) {
        self.scope = scope;
    }

    /// Also queues the webhook event the change announces, if any
    /// ([`portcullis_core::webhook::from_audit`]): every audited change of an org reaches its
    /// subscribers from the same transaction, without each flow having to remember it.
    pub(crate) fn audit(&mut self, event: AuditEvent) {
        if let Some(announced) = portcullis_core::webhook::from_audit(&event) {
            self.outbox(announced);
        }
        self.audit.push(event);
    }

    /// Returns the id the row will have.
    pub(crate) fn outbox(&mut self, event: OutboxEvent) -> Uuid {
        let id = Uuid::now_v7();
        self.outbox.push(Queued {
            id,
            created_at: portcullis_core::now(),
            event,
        });
        id
    }

    /// The unit made a delivery due without an outbox row (a test send, a retry, an endpoint
    /// enabled): the webhook worker hears of it on commit, as of an outbox row.
    pub(crate) fn webhooks_due(&mut self) {
        self.webhooks_due = true;
    }

    /// Announced once per unit, however often the unit makes the change.
    pub(crate) fn changed(&mut self, change: Change) {
        if !self.changes.contains(&change) {
            self.changes.push(change);
        }
    }

    /// Refuses the whole unit when one of its rows lies outside its scope.
    pub(crate) fn check(self) -> StoreResult<Checked> {
        if let Some(e) = self.audit.iter().find(|e| !self.scope.admits(e.org_id)) {
            return Err(StoreError::OutOfScope(format!(
                "audit event {} of org {:?} in a unit scoped to {:?}",
                e.action, e.org_id, self.scope
            )));
        }
        if let Some(q) = self
            .outbox
            .iter()
            .find(|q| !self.scope.admits(Some(q.event.org_id)))
        {
            return Err(StoreError::OutOfScope(format!(
                "outbox event {} of org {} in a unit scoped to {:?}",
                q.event.event_type, q.event.org_id, self.scope
            )));
        }
        Ok(Checked {
            webhooks_due: self.webhooks_due || !self.outbox.is_empty(),
            audit: self.audit,
            outbox: self.outbox,
            changes: self.changes,
        })
    }
}

impl Checked {
    /// The users whose own sessions this unit starts or ends (sign-in, sign-out), each once:
    /// their events go to the orgs that manage them, which the backend looks up in the
    /// unit's transaction just before it commits.
    pub(crate) fn session_users(&self) -> Vec<UserId> {
        let mut out = Vec::new();
        for u in self
            .audit
            .iter()
            .filter_map(portcullis_core::webhook::personal_session_user)
        {
            if !out.contains(&u) {
                out.push(u);
            }
        }
        out
    }

    /// The outbox rows announcing `user`'s own session events to `org`, one that manages them.
    pub(crate) fn session_rows(&self, user: UserId, org: OrgId) -> Vec<Queued> {
        self.audit
            .iter()
            .filter(|e| portcullis_core::webhook::personal_session_user(e) == Some(user))
            .filter_map(|e| portcullis_core::webhook::announce_session(e, org))
            .map(|event| Queued {
                id: Uuid::now_v7(),
                created_at: portcullis_core::now(),
                event,
            })
            .collect()
    }
}

/// The sink of the process that holds the store: told of every change a unit commits, right
/// after the commit and never for a unit that failed.
#[derive(Default)]
pub(crate) struct LocalSink(RwLock<Option<Arc<dyn ChangeSink>>>);

impl LocalSink {
    pub(crate) fn set(&self, sink: Arc<dyn ChangeSink>) {
        // A poisoned lock only means a panic elsewhere; the slot itself is still sound.
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }

    pub(crate) fn deliver(&self, changes: Vec<Change>, webhooks_due: bool) {
        if changes.is_empty() && !webhooks_due {
            return;
        }
        let sink = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(sink) = sink {
            for change in changes {
                sink.changed(change);
            }
            if webhooks_due {
                sink.webhooks_due();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use portcullis_core::{Action, AuditContext, SessionId};

    use super::*;

    fn event(org: Option<OrgId>) -> AuditEvent {
        AuditContext::cli().event(org, Action::MemberAdded, "user:x")
    }

    #[test]
    fn events_of_no_org_fit_every_scope_and_an_orgs_only_its_own() {
        let org = OrgId::new();
        let user = UserId::new();
        for scope in [
            Scope::Org(org),
            Scope::User(user),
            Scope::Platform,
            Scope::Nobody,
        ] {
            assert!(scope.admits(None), "{scope:?}");
        }
        assert!(Scope::Org(org).admits(Some(org)));
        assert!(Scope::Platform.admits(Some(org)));
        assert!(!Scope::Org(OrgId::new()).admits(Some(org)));
        assert!(!Scope::User(user).admits(Some(org)));
        assert!(!Scope::Nobody.admits(Some(org)));
    }

    #[test]
    fn one_event_out_of_scope_refuses_the_unit() {
        let org = OrgId::new();
        let mut pending = Pending::new(Scope::Org(org));
        pending.audit(event(Some(org)));
        pending.audit(event(Some(OrgId::new())));
        assert!(matches!(pending.check(), Err(StoreError::OutOfScope(_))));
    }

    #[test]
    fn an_outbox_row_belongs_to_its_orgs_scope() {
        let org = OrgId::new();
        let row = || OutboxEvent {
            org_id: org,
            project_id: None,
            event_type: "member.added".into(),
            payload: serde_json::json!({}),
        };
        for scope in [Scope::Org(org), Scope::Platform] {
            let mut pending = Pending::new(scope);
            let id = pending.outbox(row());
            let checked = pending.check().unwrap();
            assert_eq!(checked.outbox.len(), 1);
            assert_eq!(checked.outbox[0].id, id);
        }
        for scope in [
            Scope::Org(OrgId::new()),
            Scope::User(UserId::new()),
            Scope::Nobody,
        ] {
            let mut pending = Pending::new(scope);
            pending.outbox(row());
            assert!(
                matches!(pending.check(), Err(StoreError::OutOfScope(_))),
                "{scope:?}"
            );
        }
    }

    #[test]
    fn a_change_is_announced_once_per_unit() {
        let mut pending = Pending::new(Scope::Nobody);
        let id = SessionId::new();
        pending.changed(Change::SessionRevoked(id));
        pending.changed(Change::TokensRevoked);
        pending.changed(Change::SessionRevoked(id));
        let checked = pending.check().unwrap();
        assert_eq!(
            checked.changes,
            vec![Change::SessionRevoked(id), Change::TokensRevoked]
        );
    }

    #[test]
    fn outbox_rows_or_a_due_delivery_wake_the_webhook_worker() {
        let org = OrgId::new();
        assert!(!Pending::new(Scope::Org(org)).check().unwrap().webhooks_due);
        let mut changed = Pending::new(Scope::Org(org));
        changed.changed(Change::OrgChanged(org));
        assert!(!changed.check().unwrap().webhooks_due);
        // An audited change of an org queues its event, and so wakes the worker.
        let mut audited = Pending::new(Scope::Org(org));
        audited.audit(event(Some(org)));
        let checked = audited.check().unwrap();
        assert_eq!(checked.outbox.len(), 1);
        assert!(checked.webhooks_due);
        let mut direct = Pending::new(Scope::Org(org));
        direct.webhooks_due();
        assert!(direct.check().unwrap().webhooks_due);
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Change>>, Mutex<u32>);

    impl ChangeSink for Recorder {
        fn changed(&self, change: Change) {
            self.0.lock().unwrap().push(change);
        }
        fn feed_up(&self, _up: bool) {}
        fn webhooks_due(&self) {
            *self.1.lock().unwrap() += 1;
        }
    }

    #[test]
    fn the_local_sink_hears_what_is_delivered_once_set() {
        let local = LocalSink::default();
        local.deliver(vec![Change::TokensRevoked], true);
        let recorder = Arc::new(Recorder::default());
        local.set(recorder.clone());
        local.deliver(Vec::new(), false);
        local.deliver(vec![Change::TokensRevoked], false);
        local.deliver(Vec::new(), true);
        assert_eq!(*recorder.0.lock().unwrap(), vec![Change::TokensRevoked]);
        assert_eq!(*recorder.1.lock().unwrap(), 1);
    }
}
