//! Webhooks in the store: endpoints scoped to their org and project, the worker's fan-out
//! (once per event, to subscribed endpoints of the event's reach), claims with leases (one
//! holder at a time; an expired lease is taken again) and attempts moving deliveries on.

use std::sync::Arc;
use std::time::Duration;

use portcullis_core::webhook::{DeliveryStatus, ErrorClass, Subscription, WebhookId};
use portcullis_core::{Action, OrgAccess, ProjectAccess, ProjectId, Timestamp};
use portcullis_store::webhooks::{
    Attempt, Delivery, DeliveryLog, DeliveryQuery, NextStep, WebhookEndpoint,
};
use portcullis_store::{Store, StoreResult, WebhookStore};

use super::{SignedUp, ctx, signup};

/// The calls of these tests: the project's through the project handle an org's access and
/// a project id make (any pairing, so a foreign one is tried too), the worker's as they are.
pub struct Hooks<'a>(pub &'a dyn Store);

impl<'a> std::ops::Deref for Hooks<'a> {
    type Target = dyn WebhookStore + 'a;

    fn deref(&self) -> &Self::Target {
        self.0.webhooks()
    }
}

impl Hooks<'_> {
    fn scoped(access: &OrgAccess, project: ProjectId) -> ProjectAccess {
        ProjectAccess::system(access.org_id(), project)
    }

    pub async fn create_endpoint(
        &self,
        access: &OrgAccess,
        e: &WebhookEndpoint,
        sealed: &[u8],
        max: u32,
        ctx: &portcullis_core::AuditContext,
    ) -> StoreResult<()> {
        let a = Self::scoped(access, e.project_id);
        let project = self.0.project(&a);
        project
            .webhooks()
            .create_endpoint(e, sealed, max, ctx)
            .await
    }

    pub async fn list_endpoints(
        &self,
        access: &OrgAccess,
        p: ProjectId,
    ) -> StoreResult<Vec<WebhookEndpoint>> {
        let a = Self::scoped(access, p);
        self.0.project(&a).webhooks().list_endpoints().await
    }

    pub async fn endpoint(
        &self,
        access: &OrgAccess,
        p: ProjectId,
        id: WebhookId,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let a = Self::scoped(access, p);
        self.0.project(&a).webhooks().endpoint(id).await
    }

    pub async fn enqueue_test(
        &self,
        access: &OrgAccess,
        p: ProjectId,
        id: WebhookId,
        body: &str,
        now: Timestamp,
        ctx: &portcullis_core::AuditContext,
    ) -> StoreResult<Delivery> {
        let a = Self::scoped(access, p);
        let project = self.0.project(&a);
        project.webhooks().enqueue_test(id, body, now, ctx).await
    }

    pub async fn deliveries(
        &self,
        access: &OrgAccess,
        p: ProjectId,
        id: WebhookId,
        q: &DeliveryQuery,
    ) -> StoreResult<Vec<DeliveryLog>> {
        let a = Self::scoped(access, p);
        self.0.project(&a).webhooks().deliveries(id, q).await
    }

    pub async fn recover(
        &self,
        access: &OrgAccess,
        p: ProjectId,
        id: WebhookId,
        since: Timestamp,
        now: Timestamp,
        ctx: &portcullis_core::AuditContext,
    ) -> StoreResult<u64> {
        let a = Self::scoped(access, p);
        let project = self.0.project(&a);
        project.webhooks().recover(id, since, now, ctx).await
    }
}

pub fn endpoint(s: &SignedUp, events: &[&str], at: Timestamp) -> WebhookEndpoint {
    WebhookEndpoint {
        id: WebhookId::new(),
        org_id: s.org.id,
        project_id: s.project.id,
        url: "https://hooks.example.com/x".into(),
        description: String::new(),
        events: Subscription::parse(&events.iter().map(|e| e.to_string()).collect::<Vec<_>>())
            .unwrap(),
        enabled: true,
        failing_since: None,
        disabled_reason: None,
        previous_secret_expires_at: None,
        created_at: at,
        updated_at: at,
    }
}

fn attempt(status: Option<u16>) -> Attempt {
    Attempt {
        at: portcullis_core::now(),
        status_code: status,
        duration_ms: 3,
        response: "ok".into(),
        error_class: status.filter(|s| *s >= 300).map(|_| ErrorClass::Status),
    }
}

fn log_query() -> DeliveryQuery {
    DeliveryQuery {
        limit: 50,
        ..DeliveryQuery::default()
    }
}

pub async fn fan_out_claims_and_leases(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    let hooks = Hooks(store.as_ref());
    super::outbox::drain(store.as_ref()).await;
    let start = portcullis_core::now();
    let all = endpoint(&alice, &["*"], start);
    let renames = endpoint(&alice, &["project.updated"], start);
    hooks
        .create_endpoint(&alice.access(), &all, b"sealed-1", 20, &ctx())
        .await
        .unwrap();
    hooks
        .create_endpoint(&alice.access(), &renames, b"sealed-2", 20, &ctx())
        .await
        .unwrap();
    // Bob's org cannot see or plant alice's endpoints.
    assert!(
        hooks
            .list_endpoints(&bob.access(), alice.project.id)
            .await
            .unwrap()
            .is_empty()
    );
    let planted = endpoint(&alice, &["*"], start);
    assert!(
        hooks
            .create_endpoint(&bob.access(), &planted, b"x", 20, &ctx())
            .await
            .is_err()
    );
    assert!(
        hooks
            .endpoint(&OrgAccess::system(bob.org.id), alice.project.id, all.id)
            .await
            .unwrap()
            .is_none()
    );

    // An org event (from an audited change) and a project event; bob's own event.
    let c = ctx();
    store
        .audit()
        .record_audit(&c.event(Some(alice.org.id), Action::MemberRemoved, "user:u1"))
        .await
        .unwrap();
    store
        .audit()
        .record_audit(&c.event(
            Some(alice.org.id),
            Action::ProjectUpdated,
            format!("project:{}", alice.project.id),
        ))
        .await
        .unwrap();
    store
        .audit()
        .record_audit(&c.event(Some(bob.org.id), Action::MemberRemoved, "user:u2"))
        .await
        .unwrap();
    let now = portcullis_core::now();
    assert_eq!(hooks.fan_out(now, 100).await.unwrap(), 3);
    // Fanned out once: a second pass finds nothing.
    assert_eq!(hooks.fan_out(now, 100).await.unwrap(), 0);
    let to_all = hooks
        .deliveries(&alice.access(), alice.project.id, all.id, &log_query())
        .await
        .unwrap();
    let to_renames = hooks
        .deliveries(&alice.access(), alice.project.id, renames.id, &log_query())
        .await
        .unwrap();
    let mut types: Vec<&str> = to_all
        .iter()
        .map(|l| l.delivery.event_type.as_str())
        .collect();
    types.sort();
    assert_eq!(types, ["member.removed", "project.updated"]);
    assert_eq!(to_renames.len(), 1);
    assert_eq!(to_renames[0].delivery.event_type, "project.updated");

    // Claims: one holder at a time.
    let lease = now + time::Duration::seconds(60);
    let first = hooks.claim("node-a", now, lease, 10).await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(
        hooks
            .claim("node-b", now, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(first[0].secrets.current.len(), 8);

    // One succeeds, one fails with a retry, one fails finally.
    let r = hooks
        .record_attempt(
            "node-a",
            &first[0],
            &attempt(Some(204)),
            NextStep::Succeeded,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert!(r.held && !r.disabled);
    let retry_at = now + time::Duration::seconds(30);
    hooks
        .record_attempt(
            "node-a",
            &first[1],
            &attempt(Some(500)),
            NextStep::RetryAt(retry_at),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    hooks
        .record_attempt(
            "node-a",
            &first[2],
            &attempt(Some(500)),
            NextStep::Failed,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    // The retry is not due before its time, then it is (lease released).
    assert!(
        hooks
            .claim("node-b", now, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = retry_at + time::Duration::seconds(1);
    let again = hooks
        .claim("node-b", later, later + time::Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.id, first[1].delivery.id);
    assert_eq!(again[0].delivery.attempts, 1);
    // node-b dies holding it: once the lease expires, node-c takes it, same id.
    let expired = later + time::Duration::seconds(61);
    let taken = hooks
        .claim("node-c", expired, expired + time::Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].delivery.id, first[1].delivery.id);
    // node-b's late result is recorded as an attempt but no longer moves the delivery.
    let late = hooks
        .record_attempt(
            "node-b",
            &again[0],
            &attempt(Some(204)),
            NextStep::Succeeded,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert!(!late.held);

    let mut all_logs = hooks
        .deliveries(&alice.access(), alice.project.id, all.id, &log_query())
        .await
        .unwrap();
    all_logs.extend(
        hooks
            .deliveries(&alice.access(), alice.project.id, renames.id, &log_query())
            .await
            .unwrap(),
    );
    let status_of = |id| {
        all_logs
            .iter()
            .find(|l| l.delivery.id == id)
            .unwrap()
            .delivery
            .status
    };
    assert_eq!(status_of(first[0].delivery.id), DeliveryStatus::Succeeded);
    assert_eq!(status_of(first[2].delivery.id), DeliveryStatus::Failed);
    assert_eq!(status_of(first[1].delivery.id), DeliveryStatus::Pending);
    let attempts_of = |id| {
        all_logs
            .iter()
            .find(|l| l.delivery.id == id)
            .unwrap()
            .attempts
            .len()
    };
    assert_eq!(attempts_of(first[1].delivery.id), 2);

    // Recover sends the failed one again.
    let n = hooks
        .recover(
            &alice.access(),
            alice.project.id,
            first[2].delivery.endpoint_id,
            start - time::Duration::seconds(1),
            expired,
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Bob cannot recover, retry or read alice's.
    assert!(
        hooks
            .recover(
                &bob.access(),
                alice.project.id,
                all.id,
                start,
                expired,
                &ctx()
            )
            .await
            .is_err()
    );
    assert!(
        hooks
            .deliveries(&bob.access(), alice.project.id, all.id, &log_query())
            .await
            .is_err()
    );
}

pub async fn failing_for_the_window_disables(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let hooks = Hooks(store.as_ref());
    let e = endpoint(&alice, &["*"], portcullis_core::now());
    hooks
        .create_endpoint(&alice.access(), &e, b"sealed", 20, &ctx())
        .await
        .unwrap();
    let now = portcullis_core::now();
    let d = hooks
        .enqueue_test(&alice.access(), alice.project.id, e.id, "{}", now, &ctx())
        .await
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Pending);
    let window = Duration::from_secs(10);
    let c = hooks
        .claim("n", now, now + time::Duration::seconds(60), 10)
        .await
        .unwrap();
    let mut a = attempt(Some(500));
    let r = hooks
        .record_attempt("n", &c[0], &a, NextStep::RetryAt(now), window)
        .await
        .unwrap();
    assert!(!r.disabled, "one failure does not disable");
    let c = hooks
        .claim("n", now, now + time::Duration::seconds(60), 10)
        .await
        .unwrap();
    a.at += time::Duration::seconds(11);
    let r = hooks
        .record_attempt("n", &c[0], &a, NextStep::RetryAt(a.at), window)
        .await
        .unwrap();
    assert!(r.disabled, "failing for longer than the window disables");
    let got = hooks
        .endpoint(&alice.access(), alice.project.id, e.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!got.enabled);
    assert_eq!(got.disabled_reason.as_deref(), Some("failing"));
    // A disabled endpoint's deliveries are not claimed.
    assert!(
        hooks
            .claim("n", a.at, a.at + time::Duration::seconds(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(hooks.troubled_endpoints().await.unwrap().len(), 1);
}

/// Retention: fanned-out events and finished deliveries (with their attempts) older than the
/// window go, in bounded batches; pending deliveries and events not yet fanned out stay.
pub async fn retention_deletes_old_rows_in_batches(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let hooks = Hooks(store.as_ref());
    let e = endpoint(&alice, &["*"], portcullis_core::now());
    hooks
        .create_endpoint(&alice.access(), &e, b"sealed", 20, &ctx())
        .await
        .unwrap();
    let now = portcullis_core::now();
    // The signup's events (and the endpoint's creation, which announces nothing) fan out.
    let fanned = hooks.fan_out(now, 1000).await.unwrap();
    assert!(fanned >= 1, "the signup queued events");
    // Three test deliveries: one succeeds, one fails for good, one waits for a retry.
    for _ in 0..3 {
        hooks
            .enqueue_test(&alice.access(), alice.project.id, e.id, "{}", now, &ctx())
            .await
            .unwrap();
    }
    let claimed = hooks
        .claim("n", now, now + time::Duration::seconds(60), 1000)
        .await
        .unwrap();
    let tests: Vec<_> = claimed
        .iter()
        .filter(|c| c.delivery.event_type == "webhook.test")
        .collect();
    assert_eq!(tests.len(), 3);
    let window = Duration::from_secs(3600);
    let retry = NextStep::RetryAt(now + time::Duration::hours(2));
    for (c, next) in tests
        .iter()
        .zip([NextStep::Succeeded, NextStep::Failed, retry])
    {
        hooks
            .record_attempt("n", c, &attempt(Some(200)), next, window)
            .await
            .unwrap();
    }
    let others: Vec<_> = claimed
        .iter()
        .filter(|c| c.delivery.event_type != "webhook.test")
        .map(|c| c.delivery.id)
        .collect();
    hooks.release("n", &others).await.unwrap();
    // A new event, not yet fanned out.
    store
        .outbox()
        .enqueue(
            &portcullis_core::OutboxEvent {
                org_id: alice.org.id,
                project_id: None,
                event_type: "member.added".into(),
                payload: serde_json::json!({}),
            },
            &[],
        )
        .await
        .unwrap();
    let log_len = || async {
        hooks
            .deliveries(&alice.access(), alice.project.id, e.id, &log_query())
            .await
            .unwrap()
            .len()
    };
    let before_purge = log_len().await;
    assert_eq!(before_purge, others.len() + 3);

    // Everything is younger than a window that ended an hour ago: nothing goes.
    let hour = time::Duration::hours(1);
    let p = hooks.purge(now - hour, 100).await.unwrap();
    assert_eq!((p.events, p.deliveries), (0, 0));
    assert_eq!(log_len().await, before_purge);

    // A window ending in an hour (all of it is old): one batch of one row of each kind…
    let later = portcullis_core::now() + hour;
    let p = hooks.purge(later, 1).await.unwrap();
    assert_eq!((p.events, p.deliveries), (1, 1));
    assert_eq!(log_len().await, before_purge - 1);
    // …then the rest of the finished ones: the two finished deliveries and every fanned-out
    // event; what is pending, and the event not yet fanned out, stay.
    let p = hooks.purge(later, 100).await.unwrap();
    assert_eq!(p.deliveries, 1);
    assert_eq!(p.events, u64::from(fanned) - 1);
    let left = hooks
        .deliveries(&alice.access(), alice.project.id, e.id, &log_query())
        .await
        .unwrap();
    assert_eq!(left.len(), others.len() + 1);
    assert!(
        left.iter()
            .all(|d| d.delivery.status == DeliveryStatus::Pending)
    );
    assert_eq!(hooks.backlog(later).await.unwrap().unfanned, 1);
    let p = hooks.purge(later, 100).await.unwrap();
    assert_eq!((p.events, p.deliveries), (0, 0));
}

/// Whether `got` is `want` as the database keeps it (to the microsecond).
fn same_time(got: Option<Timestamp>, want: Timestamp) -> bool {
    got.is_some_and(|g| (g - want).abs() < time::Duration::milliseconds(1))
}

pub async fn the_worker_hears_of_work_and_when_it_is_due(store: Arc<dyn Store>) {
    let heard = super::listen(store.as_ref());
    let hooks = Hooks(store.as_ref());
    assert_eq!(hooks.next_due().await.unwrap(), None);
    // A unit that queues outbox rows (sign-up: the new org's events) wakes the worker once.
    let alice = signup(store.as_ref(), "alice@example.com").await;
    assert_eq!(heard.webhooks_woken(), 1);
    assert!(hooks.next_due().await.unwrap().unwrap() <= portcullis_core::now());
    super::outbox::drain(store.as_ref()).await;
    assert_eq!(hooks.next_due().await.unwrap(), None);
    // The worker's own fan-out queues no outbox row, and reading wakes nothing.
    assert_eq!(heard.webhooks_woken(), 0);
    let start = portcullis_core::now();
    let e = endpoint(&alice, &["project.updated"], start);
    hooks
        .create_endpoint(&alice.access(), &e, b"sealed", 20, &ctx())
        .await
        .unwrap();
    hooks
        .list_endpoints(&alice.access(), alice.project.id)
        .await
        .unwrap();
    super::outbox::drain(store.as_ref()).await;
    heard.webhooks_woken();

    // A test send is a delivery due now, with no outbox row: it wakes the worker too.
    let now = portcullis_core::now();
    let test = hooks
        .enqueue_test(&alice.access(), alice.project.id, e.id, "{}", now, &ctx())
        .await
        .unwrap();
    assert!(heard.webhooks_woken() >= 1);
    assert!(same_time(hooks.next_due().await.unwrap(), now));
    // Claimed: due again when the lease expires, unless the attempt says otherwise.
    let lease = now + time::Duration::seconds(60);
    let claimed = hooks.claim("node-a", now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery.id, test.id);
    assert!(same_time(hooks.next_due().await.unwrap(), lease));
    let retry_at = now + time::Duration::seconds(30);
    hooks
        .record_attempt(
            "node-a",
            &claimed[0],
            &attempt(Some(500)),
            NextStep::RetryAt(retry_at),
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert!(same_time(hooks.next_due().await.unwrap(), retry_at));
    // Retrying it by hand makes it due now, and says so.
    heard.webhooks_woken();
    let retried_at = portcullis_core::now();
    let a = ProjectAccess::system(alice.org.id, alice.project.id);
    assert!(
        store
            .project(&a)
            .webhooks()
            .retry_delivery(e.id, test.id, retried_at, &ctx())
            .await
            .unwrap()
    );
    assert_eq!(heard.webhooks_woken(), 1);
    assert!(same_time(hooks.next_due().await.unwrap(), retried_at));
    // A disabled endpoint's deliveries wait for nobody.
    let off = portcullis_store::webhooks::EndpointPatch {
        enabled: Some(false),
        ..Default::default()
    };
    store
        .project(&a)
        .webhooks()
        .update_endpoint(e.id, &off, portcullis_core::now(), &ctx())
        .await
        .unwrap();
    assert_eq!(hooks.next_due().await.unwrap(), None);
    assert_eq!(heard.webhooks_woken(), 0);
    // Enabling it again wakes the worker: its pending deliveries are due.
    let on = portcullis_store::webhooks::EndpointPatch {
        enabled: Some(true),
        ..Default::default()
    };
    store
        .project(&a)
        .webhooks()
        .update_endpoint(e.id, &on, portcullis_core::now(), &ctx())
        .await
        .unwrap();
    assert_eq!(heard.webhooks_woken(), 1);
    assert!(same_time(hooks.next_due().await.unwrap(), retried_at));
}
