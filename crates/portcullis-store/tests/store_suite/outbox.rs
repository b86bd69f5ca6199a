//! The outbox: events queued with their change, and the delivery worker's read of what is
//! due. Every audited change of an org in the webhook catalogue queues its event too (a
//! signup's `user.created` and `member.added`); these tests first let the webhook worker's
//! fan-out take those, so that only their own rows are due.

use std::sync::Arc;

use portcullis_core::{Action, AuditQuery, OutboxEvent};
use portcullis_store::{Store, StoreError};
use serde_json::json;
use time::Duration;

use super::{ctx, signup};

/// Takes every due row (as the webhook worker does; no endpoint exists, so nothing more).
pub async fn drain(store: &dyn Store) {
    store
        .webhooks()
        .fan_out(portcullis_core::now(), 1000)
        .await
        .unwrap();
    assert!(
        store
            .outbox()
            .due(portcullis_core::now(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn queued_events_are_due_oldest_first(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    drain(store.as_ref()).await;
    let first = OutboxEvent {
        org_id: alice.org.id,
        project_id: Some(alice.project.id),
        event_type: "member.added".into(),
        payload: json!({"user_id": alice.user.id, "role": "owner", "nested": {"n": 1}}),
    };
    let second = OutboxEvent {
        org_id: bob.org.id,
        project_id: None,
        event_type: "org.updated".into(),
        payload: json!([1, "two"]),
    };
    // Not in the webhook catalogue: it announces nothing of its own.
    let described = ctx().event(Some(alice.org.id), Action::OrgCreated, "org:x");
    let id1 = store
        .outbox()
        .enqueue(&first, std::slice::from_ref(&described))
        .await
        .unwrap();
    let id2 = store.outbox().enqueue(&second, &[]).await.unwrap();
    assert!(id1 < id2, "ids are time-ordered");

    let due = store
        .outbox()
        .due(portcullis_core::now(), 10)
        .await
        .unwrap();
    assert_eq!(due.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id1, id2]);
    assert_eq!(due[0].event, first);
    assert_eq!(due[1].event, second);
    assert_eq!(due[0].attempts, 0);
    assert_eq!(due[0].delivered_at, None);
    assert_eq!(due[0].next_attempt_at, due[0].created_at);

    // The worker takes a batch at a time, and nothing is due before it was queued.
    let batch = store.outbox().due(portcullis_core::now(), 1).await.unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].id, id1);
    let earlier = store
        .outbox()
        .due(due[0].created_at - Duration::seconds(1), 10)
        .await
        .unwrap();
    assert!(earlier.is_empty(), "{earlier:?}");

    // The audit event was written with the row.
    let events = store
        .org(&alice.access())
        .audit()
        .query_audit(&AuditQuery {
            correlation_id: Some(described.correlation_id.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(events, vec![described]);
}

pub async fn a_failed_write_queues_nothing(store: Arc<dyn Store>) {
    let alice = signup(store.as_ref(), "alice@example.com").await;
    let bob = signup(store.as_ref(), "bob@example.com").await;
    drain(store.as_ref()).await;
    let event = OutboxEvent {
        org_id: alice.org.id,
        project_id: None,
        event_type: "member.added".into(),
        payload: json!({}),
    };

    // An audit event that cannot be written (its id is taken) fails the whole unit.
    let taken = ctx().event(Some(alice.org.id), Action::OrgCreated, "org:x");
    store.audit().record_audit(&taken).await.unwrap();
    let e = store
        .outbox()
        .enqueue(&event, std::slice::from_ref(&taken))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");

    // So does an event of another org: both backends refuse it, as row-level security does.
    let foreign = ctx().event(Some(bob.org.id), Action::MemberAdded, "user:y");
    let e = store
        .outbox()
        .enqueue(&event, std::slice::from_ref(&foreign))
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::OutOfScope(_)), "{e:?}");

    let due = store
        .outbox()
        .due(portcullis_core::now(), 10)
        .await
        .unwrap();
    assert!(due.is_empty(), "{due:?}");
    let events = store
        .org(&bob.access())
        .audit()
        .query_audit(&AuditQuery {
            correlation_id: Some(foreign.correlation_id.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
}
